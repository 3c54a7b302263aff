# Tokenizer training (issue 14, part 2): `peftbench tokenizer train|encode`.
# Hand-worked merges, file formats, encoder round trip, bad input (pure C).
pb_add_c_test(test_bpe_train SOURCES ${CMAKE_SOURCE_DIR}/tests/test_bpe_train.c LABELS fast)
