file(REMOVE_RECURSE
  "CMakeFiles/test_cpu_bf16.dir/test_cpu_bf16.c.o"
  "CMakeFiles/test_cpu_bf16.dir/test_cpu_bf16.c.o.d"
  "test_cpu_bf16"
  "test_cpu_bf16.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_cpu_bf16.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
