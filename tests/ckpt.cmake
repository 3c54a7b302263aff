# Checkpoint area: safetensors reader/writer and HF config.json.
pb_add_c_test(test_safetensors SOURCES ${CMAKE_SOURCE_DIR}/tests/test_safetensors.c LABELS fast)
pb_add_c_test(test_config SOURCES ${CMAKE_SOURCE_DIR}/tests/test_config.c LABELS fast)
