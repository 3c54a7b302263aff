file(REMOVE_RECURSE
  "CMakeFiles/peftbench.dir/harness/main.c.o"
  "CMakeFiles/peftbench.dir/harness/main.c.o.d"
  "peftbench"
  "peftbench.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/peftbench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
