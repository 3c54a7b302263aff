file(REMOVE_RECURSE
  "CMakeFiles/peftbench_synth.dir/peftbench_synth.c.o"
  "CMakeFiles/peftbench_synth.dir/peftbench_synth.c.o.d"
  "peftbench_synth"
  "peftbench_synth.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/peftbench_synth.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
