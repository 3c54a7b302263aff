# Engine tests (owned by the engine area). All pure C: label fast.
pb_add_c_test(test_ops_grad SOURCES ${CMAKE_SOURCE_DIR}/tests/test_ops_grad.c LABELS fast)
pb_add_c_test(test_ops_misc SOURCES ${CMAKE_SOURCE_DIR}/tests/test_ops_misc.c LABELS fast)
# Micro-benchmark of one ViT layer on the engine (not a test): build/tests/ops_bench [small|base] [threads] [reps]
add_executable(ops_bench ${CMAKE_SOURCE_DIR}/bench/ops_bench.c)
target_link_libraries(ops_bench PRIVATE peftbench_core)
# Against the real PyTorch/transformers peers (needs tests/ref/requirements.txt installed).
if(PB_PYTHON)
  add_executable(test_ops_torch ${CMAKE_SOURCE_DIR}/tests/test_ops_torch.c)
  target_link_libraries(test_ops_torch PRIVATE peftbench_core)
  add_test(NAME test_ops_torch COMMAND test_ops_torch ${PB_PYTHON} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_ops_torch PROPERTIES LABELS "ref")
endif()
# GEMM providers (OpenBLAS, oneDNN): ISA vs /proc/cpuinfo, no generic kernel, every provider vs a
# double replica on every call path, determinism, PB_GEMM selection, the op profiler.
pb_add_c_test(test_gemm_providers SOURCES ${CMAKE_SOURCE_DIR}/tests/test_gemm_providers.c LABELS fast)
add_test(NAME test_system_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_system_cli.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_system_cli PROPERTIES LABELS "fast" TIMEOUT 300)
# The bf16 compute mode (PB_CPU_MATH=bf16): rounding, GEMMs vs replicas, determinism, a short
# training run vs FP32. Skips (77) without oneDNN or without AVX512_BF16 / AMX-BF16.
pb_add_c_test(test_cpu_bf16 SOURCES ${CMAKE_SOURCE_DIR}/tests/test_cpu_bf16.c LABELS fast)
set_tests_properties(test_cpu_bf16 PROPERTIES SKIP_RETURN_CODE 77)
