# Empty dependencies file for test_data_vtab_mini.
# This may be replaced when dependencies are built.
