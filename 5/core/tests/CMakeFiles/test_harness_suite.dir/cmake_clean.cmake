file(REMOVE_RECURSE
  "CMakeFiles/test_harness_suite.dir/test_harness_suite.c.o"
  "CMakeFiles/test_harness_suite.dir/test_harness_suite.c.o.d"
  "test_harness_suite"
  "test_harness_suite.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_harness_suite.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
