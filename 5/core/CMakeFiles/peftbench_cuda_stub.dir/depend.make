# Empty dependencies file for peftbench_cuda_stub.
# This may be replaced when dependencies are built.
