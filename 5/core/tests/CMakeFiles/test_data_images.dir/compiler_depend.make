# Empty compiler generated dependencies file for test_data_images.
# This may be replaced when dependencies are built.
