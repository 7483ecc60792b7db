file(REMOVE_RECURSE
  "CMakeFiles/fx_bus.dir/src/bus/placeholder.c.o"
  "CMakeFiles/fx_bus.dir/src/bus/placeholder.c.o.d"
  "libfx_bus.a"
  "libfx_bus.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fx_bus.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
