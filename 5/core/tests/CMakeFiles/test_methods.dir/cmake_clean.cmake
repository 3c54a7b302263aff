file(REMOVE_RECURSE
  "CMakeFiles/test_methods.dir/test_methods.c.o"
  "CMakeFiles/test_methods.dir/test_methods.c.o.d"
  "test_methods"
  "test_methods.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_methods.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
