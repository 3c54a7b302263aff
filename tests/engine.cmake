# Engine tests (owned by the engine area). All pure C: label fast.
pb_add_c_test(test_ops_grad SOURCES ${CMAKE_SOURCE_DIR}/tests/test_ops_grad.c LABELS fast)
pb_add_c_test(test_ops_misc SOURCES ${CMAKE_SOURCE_DIR}/tests/test_ops_misc.c LABELS fast)
# Micro-benchmark of one ViT layer on the engine (not a test): build/tests/ops_bench [small|base] [threads] [reps]
add_executable(ops_bench ${CMAKE_SOURCE_DIR}/bench/ops_bench.c)
target_link_libraries(ops_bench PRIVATE peftbench_core)
