# Empty compiler generated dependencies file for test_harness_train.
# This may be replaced when dependencies are built.
