file(REMOVE_RECURSE
  "CMakeFiles/peftbench_cuda_stub.dir/engine/cuda/cuda_stub.c.o"
  "CMakeFiles/peftbench_cuda_stub.dir/engine/cuda/cuda_stub.c.o.d"
  "libpeftbench_cuda_stub.a"
  "libpeftbench_cuda_stub.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/peftbench_cuda_stub.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
