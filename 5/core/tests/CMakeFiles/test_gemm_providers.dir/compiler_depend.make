# Empty compiler generated dependencies file for test_gemm_providers.
# This may be replaced when dependencies are built.
