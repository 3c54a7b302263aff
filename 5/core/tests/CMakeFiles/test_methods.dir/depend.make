# Empty dependencies file for test_methods.
# This may be replaced when dependencies are built.
