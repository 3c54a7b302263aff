# Tokenizer training (issue 14, part 2): `peftbench tokenizer train|encode`.
# Hand-worked merges, file formats, encoder round trip, bad input (pure C).
pb_add_c_test(test_bpe_train SOURCES ${CMAKE_SOURCE_DIR}/tests/test_bpe_train.c LABELS fast)
# The CLI on Debian's licence texts (base-files): outputs, determinism, encode, bad input.
add_test(NAME test_tokenizer_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_tokenizer_cli.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_tokenizer_cli PROPERTIES LABELS "fast" TIMEOUT 120)
if(PB_PYTHON)
  # Trained files vs the peers: transformers RobertaTokenizer / tokenizers encode a held-out sample
  # identically; tokenizers' ByteLevelBPETokenizer.train gives the same merges.txt and vocabulary.
  add_test(NAME ref_bpe_train COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_bpe_train.py
           $<TARGET_FILE:peftbench>)
  set_tests_properties(ref_bpe_train PROPERTIES LABELS ref TIMEOUT 300)
endif()
