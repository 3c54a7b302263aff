# Empty compiler generated dependencies file for test_data_text.
# This may be replaced when dependencies are built.
