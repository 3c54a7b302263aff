file(REMOVE_RECURSE
  "CMakeFiles/test_ops_misc.dir/test_ops_misc.c.o"
  "CMakeFiles/test_ops_misc.dir/test_ops_misc.c.o.d"
  "test_ops_misc"
  "test_ops_misc.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_ops_misc.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
