file(REMOVE_RECURSE
  "CMakeFiles/fx_format.dir/src/format/reader.c.o"
  "CMakeFiles/fx_format.dir/src/format/reader.c.o.d"
  "libfx_format.a"
  "libfx_format.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fx_format.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
