# models: ViT / RoBERTa, load/save, info, trace.
pb_add_c_test(test_models SOURCES ${CMAKE_SOURCE_DIR}/tests/test_models.c LABELS fast)
if(PB_PYTHON)
  add_test(NAME models_ref_parity
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_models.py $<TARGET_FILE:peftbench>)
  set_tests_properties(models_ref_parity PROPERTIES LABELS ref TIMEOUT 600)
  add_test(NAME models_ref_counts
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_counts.py $<TARGET_FILE:peftbench>)
  set_tests_properties(models_ref_counts PROPERTIES LABELS ref TIMEOUT 300)
endif()
# masked-LM head (models/mlm.h): C tests, and the transformers RobertaForMaskedLM cross-check
pb_add_c_test(test_mlm SOURCES ${CMAKE_SOURCE_DIR}/tests/test_mlm.c LABELS fast)
add_executable(pb_mlm_trace ${CMAKE_SOURCE_DIR}/tests/tools_mlm_trace.c)
target_link_libraries(pb_mlm_trace PRIVATE peftbench_core)
if(PB_PYTHON)
  add_test(NAME models_ref_mlm
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_mlm.py $<TARGET_FILE:pb_mlm_trace>)
  set_tests_properties(models_ref_mlm PROPERTIES LABELS ref TIMEOUT 600)
endif()
if(PB_PYTHON)
  # masked-LM pretraining stage end to end (harness/pretrain_mlm.c): loss falls, cache reused,
  # the cached checkpoint loads in transformers
  add_test(NAME models_ref_mlm_pretrain
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_mlm_pretrain.py $<TARGET_FILE:peftbench>
                   $<TARGET_FILE:pb_mlm_trace>)
  set_tests_properties(models_ref_mlm_pretrain PROPERTIES LABELS ref TIMEOUT 600)
endif()
if(PB_PYTHON AND PB_HAVE_CUDA)
  # the same cross-check on a GPU (label cuda; skipped with 77 without one); its emulated twin is
  # models_ref_mlm_cudaemu (tests/cudaemu.cmake)
  add_test(NAME models_ref_mlm_cuda
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_mlm.py $<TARGET_FILE:pb_mlm_trace> --device cuda)
  set_tests_properties(models_ref_mlm_cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
