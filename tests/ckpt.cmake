# Checkpoint area: safetensors reader/writer and HF config.json.
pb_add_c_test(test_safetensors SOURCES ${CMAKE_SOURCE_DIR}/tests/test_safetensors.c LABELS fast)
pb_add_c_test(test_config SOURCES ${CMAKE_SOURCE_DIR}/tests/test_config.c LABELS fast)
# Cross-checks against the real safetensors / transformers packages (label ref).
add_test(NAME ref_safetensors
  COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/st_fixtures.py safetensors
          $<TARGET_FILE:test_safetensors> ${CMAKE_BINARY_DIR}/ref_safetensors_work)
set_tests_properties(ref_safetensors PROPERTIES LABELS ref)
add_test(NAME ref_config
  COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/st_fixtures.py config
          $<TARGET_FILE:test_config> ${CMAKE_BINARY_DIR}/ref_config_work)
set_tests_properties(ref_config PROPERTIES LABELS ref)
