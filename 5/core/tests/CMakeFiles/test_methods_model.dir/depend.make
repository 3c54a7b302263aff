# Empty dependencies file for test_methods_model.
# This may be replaced when dependencies are built.
