file(REMOVE_RECURSE
  "CMakeFiles/test_data_vtab_mini.dir/test_data_vtab_mini.c.o"
  "CMakeFiles/test_data_vtab_mini.dir/test_data_vtab_mini.c.o.d"
  "test_data_vtab_mini"
  "test_data_vtab_mini.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_data_vtab_mini.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
