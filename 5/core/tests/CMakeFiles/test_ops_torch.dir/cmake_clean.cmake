file(REMOVE_RECURSE
  "CMakeFiles/test_ops_torch.dir/test_ops_torch.c.o"
  "CMakeFiles/test_ops_torch.dir/test_ops_torch.c.o.d"
  "test_ops_torch"
  "test_ops_torch.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_ops_torch.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
