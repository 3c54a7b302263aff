# Empty dependencies file for test_cuda_train.
# This may be replaced when dependencies are built.
