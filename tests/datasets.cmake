# Dataset tests (owned by the datasets area).
pb_add_c_test(test_data_metrics SOURCES ${CMAKE_SOURCE_DIR}/tests/test_data_metrics.c LABELS fast)
pb_add_c_test(test_data_images SOURCES ${CMAKE_SOURCE_DIR}/tests/test_data_images.c LABELS fast)
pb_add_c_test(test_data_text SOURCES ${CMAKE_SOURCE_DIR}/tests/test_data_text.c LABELS fast)
pb_add_c_test(test_data_vtab_mini SOURCES ${CMAKE_SOURCE_DIR}/tests/test_data_vtab_mini.c LABELS fast)
# Runs Rscript twice (about 1.5 s each) over the Debian R packages r-cran-janeaustenr / r-cran-modeldata.
pb_add_c_test(test_data_glue_mini SOURCES ${CMAKE_SOURCE_DIR}/tests/test_data_glue_mini.c LABELS fast)

# Prints token ids for the reference comparison in tests/ref/ref_tokenizer.py.
add_executable(pb_tokdump ${CMAKE_SOURCE_DIR}/tests/tools_tokdump.c)
target_link_libraries(pb_tokdump PRIVATE peftbench_core)
if(PB_PYTHON)
  add_test(NAME ref_tokenizer COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_tokenizer.py
           $<TARGET_FILE:pb_tokdump>)
  set_tests_properties(ref_tokenizer PROPERTIES LABELS ref)
  add_test(NAME ref_resize COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_data_resize.py
           $<TARGET_FILE:pb_tokdump>)
  set_tests_properties(ref_resize PROPERTIES LABELS ref)
endif()
# `peftbench data build glue-mini` at the CLI (needs the R packages of make deps).
add_test(NAME test_glue_mini_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_glue_mini_cli.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_glue_mini_cli PROPERTIES LABELS "fast" TIMEOUT 120)
