file(REMOVE_RECURSE
  "CMakeFiles/test_gemm_providers.dir/test_gemm_providers.c.o"
  "CMakeFiles/test_gemm_providers.dir/test_gemm_providers.c.o.d"
  "test_gemm_providers"
  "test_gemm_providers.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_gemm_providers.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
