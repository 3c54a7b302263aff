# Empty compiler generated dependencies file for test_cpu_bf16.
# This may be replaced when dependencies are built.
