file(REMOVE_RECURSE
  "CMakeFiles/fx_core.dir/src/core/error.c.o"
  "CMakeFiles/fx_core.dir/src/core/error.c.o.d"
  "CMakeFiles/fx_core.dir/src/core/log.c.o"
  "CMakeFiles/fx_core.dir/src/core/log.c.o.d"
  "CMakeFiles/fx_core.dir/src/core/mem.c.o"
  "CMakeFiles/fx_core.dir/src/core/mem.c.o.d"
  "CMakeFiles/fx_core.dir/src/core/util.c.o"
  "CMakeFiles/fx_core.dir/src/core/util.c.o.d"
  "libfx_core.a"
  "libfx_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fx_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
