file(REMOVE_RECURSE
  "CMakeFiles/test_cuda_train.dir/test_cuda_train.c.o"
  "CMakeFiles/test_cuda_train.dir/test_cuda_train.c.o.d"
  "test_cuda_train"
  "test_cuda_train.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_cuda_train.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
