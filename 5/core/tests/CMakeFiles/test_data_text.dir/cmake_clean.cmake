file(REMOVE_RECURSE
  "CMakeFiles/test_data_text.dir/test_data_text.c.o"
  "CMakeFiles/test_data_text.dir/test_data_text.c.o.d"
  "test_data_text"
  "test_data_text.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_data_text.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
