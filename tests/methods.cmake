# Methods tests (owned by the methods area).
# test_methods: every adapter at the linear level vs double replicas + finite differences.
pb_add_c_test(test_methods SOURCES ${CMAKE_SOURCE_DIR}/tests/test_methods.c LABELS fast)
# test_adalora: AdaLoRA's adapter and orth regulariser vs finite differences, merge, the allocator.
pb_add_c_test(test_adalora SOURCES ${CMAKE_SOURCE_DIR}/tests/test_adalora.c LABELS fast)

# The method table: docs/methods.md's reference section = `peftbench methods --markdown`;
# methods --json complete; CLI options validated by the descriptors.
add_test(NAME test_methods_doc COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_methods_doc.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_methods_doc PROPERTIES LABELS "fast" TIMEOUT 60)

# Model-level pieces need models/ (pb_model_create etc.).
if(EXISTS ${CMAKE_SOURCE_DIR}/models/model.c)
  # test_methods_model: trainable counts (ViT-B/L, RoBERTa), step-0 identity and merge on a model.
  pb_add_c_test(test_methods_model SOURCES ${CMAKE_SOURCE_DIR}/tests/test_methods_model.c LABELS fast)
  # test_peft_io: PEFT export -> import -> export of every method with a PEFT type (same logits,
  # same tensors bit for bit) and the import's error paths (bad configs, keys, shapes, values).
  pb_add_c_test(test_peft_io SOURCES ${CMAKE_SOURCE_DIR}/tests/test_peft_io.c LABELS fast)
  # time_methods_init: SVD init timing program (not a test): build/tests/time_methods_init vit-b16 2
  add_executable(time_methods_init ${CMAKE_SOURCE_DIR}/tests/time_methods_init.c)
  target_link_libraries(time_methods_init PRIVATE peftbench_core)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/models/model.c)
  # Same program, counts needing SVDs of ViT-B/L matrices (about 75 s single-threaded).
  add_test(NAME test_methods_model_slow COMMAND test_methods_model slow WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_methods_model_slow PROPERTIES LABELS slow)
endif()
# Reference cross-checks against the real peers (label ref; tests/ref/requirements.txt):
# ref_methods: lora / pissa vs PyPI peft, svfit / aoft vs PyTorch modules written from the
# formulas, head vs transformers, merge + from_pretrained of merged saves (about 30 s).
# ref_peft_export: peftbench's PEFT export loads in peft.PeftModel.from_pretrained, and every PEFT type
# peft saves imports into peftbench with peft's logits and gradients (about 60 s).
if(PB_PYTHON AND EXISTS ${CMAKE_SOURCE_DIR}/models/model.c)
  add_test(NAME methods_ref_peers
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_methods.py $<TARGET_FILE:peftbench>)
  set_tests_properties(methods_ref_peers PROPERTIES LABELS ref TIMEOUT 300)
  add_test(NAME methods_ref_peft_export
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_peft_export.py $<TARGET_FILE:peftbench>)
  set_tests_properties(methods_ref_peft_export PROPERTIES LABELS ref TIMEOUT 300)
  # ref_adalora: AdaLoRA vs peft step by step through a masking schedule, merge, export (about 10 s).
  add_test(NAME methods_ref_adalora
           COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_adalora.py $<TARGET_FILE:peftbench>)
  set_tests_properties(methods_ref_adalora PROPERTIES LABELS ref TIMEOUT 300)
endif()
