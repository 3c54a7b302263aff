# Engine tests (owned by the engine area). All pure C: label fast.
pb_add_c_test(test_ops_grad SOURCES ${CMAKE_SOURCE_DIR}/tests/test_ops_grad.c LABELS fast)
pb_add_c_test(test_ops_misc SOURCES ${CMAKE_SOURCE_DIR}/tests/test_ops_misc.c LABELS fast)
