file(REMOVE_RECURSE
  "CMakeFiles/test_methods_model.dir/test_methods_model.c.o"
  "CMakeFiles/test_methods_model.dir/test_methods_model.c.o.d"
  "test_methods_model"
  "test_methods_model.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_methods_model.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
