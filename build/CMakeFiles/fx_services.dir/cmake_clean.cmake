file(REMOVE_RECURSE
  "CMakeFiles/fx_services.dir/src/services/placeholder.c.o"
  "CMakeFiles/fx_services.dir/src/services/placeholder.c.o.d"
  "libfx_services.a"
  "libfx_services.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fx_services.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
