file(REMOVE_RECURSE
  "CMakeFiles/pb_tokdump.dir/tools_tokdump.c.o"
  "CMakeFiles/pb_tokdump.dir/tools_tokdump.c.o.d"
  "pb_tokdump"
  "pb_tokdump.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/pb_tokdump.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
