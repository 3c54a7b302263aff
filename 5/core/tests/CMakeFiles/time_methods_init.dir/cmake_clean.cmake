file(REMOVE_RECURSE
  "CMakeFiles/time_methods_init.dir/time_methods_init.c.o"
  "CMakeFiles/time_methods_init.dir/time_methods_init.c.o.d"
  "time_methods_init"
  "time_methods_init.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/time_methods_init.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
