file(REMOVE_RECURSE
  "CMakeFiles/fx_schema.dir/src/schema/placeholder.c.o"
  "CMakeFiles/fx_schema.dir/src/schema/placeholder.c.o.d"
  "libfx_schema.a"
  "libfx_schema.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fx_schema.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
