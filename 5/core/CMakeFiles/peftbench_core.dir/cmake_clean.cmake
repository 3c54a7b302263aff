file(REMOVE_RECURSE
  "libpeftbench_core.a"
  "libpeftbench_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/peftbench_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
