file(REMOVE_RECURSE
  "CMakeFiles/test_data_metrics.dir/test_data_metrics.c.o"
  "CMakeFiles/test_data_metrics.dir/test_data_metrics.c.o.d"
  "test_data_metrics"
  "test_data_metrics.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_data_metrics.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
