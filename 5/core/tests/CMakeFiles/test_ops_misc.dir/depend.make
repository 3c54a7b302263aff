# Empty dependencies file for test_ops_misc.
# This may be replaced when dependencies are built.
