file(REMOVE_RECURSE
  "CMakeFiles/test_data_images.dir/test_data_images.c.o"
  "CMakeFiles/test_data_images.dir/test_data_images.c.o.d"
  "test_data_images"
  "test_data_images.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_data_images.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
