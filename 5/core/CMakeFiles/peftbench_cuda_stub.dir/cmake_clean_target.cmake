file(REMOVE_RECURSE
  "libpeftbench_cuda_stub.a"
)
