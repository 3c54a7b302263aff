file(REMOVE_RECURSE
  "CMakeFiles/ops_bench.dir/__/bench/ops_bench.c.o"
  "CMakeFiles/ops_bench.dir/__/bench/ops_bench.c.o.d"
  "ops_bench"
  "ops_bench.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/ops_bench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
