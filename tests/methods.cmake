# Methods tests (owned by the methods area).
# test_methods: every adapter at the linear level vs double replicas + finite differences.
pb_add_c_test(test_methods SOURCES ${CMAKE_SOURCE_DIR}/tests/test_methods.c LABELS fast)
