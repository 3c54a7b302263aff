file(REMOVE_RECURSE
  "CMakeFiles/test_ops_grad.dir/test_ops_grad.c.o"
  "CMakeFiles/test_ops_grad.dir/test_ops_grad.c.o.d"
  "test_ops_grad"
  "test_ops_grad.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_ops_grad.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
