file(REMOVE_RECURSE
  "CMakeFiles/test_harness_train.dir/test_harness_train.c.o"
  "CMakeFiles/test_harness_train.dir/test_harness_train.c.o.d"
  "test_harness_train"
  "test_harness_train.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_harness_train.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
