# Harness tests: suite parsing/grid (pure C), and CLI behaviour (resume after SIGKILL, shards,
# plots, check) on tiny synthetic suites.
pb_add_c_test(test_harness_suite SOURCES ${CMAKE_SOURCE_DIR}/tests/test_harness_suite.c LABELS fast)
add_test(NAME test_harness_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_harness_cli.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_harness_cli PROPERTIES LABELS "fast" TIMEOUT 120)
