file(REMOVE_RECURSE
  "CMakeFiles/fx_store.dir/src/store/placeholder.c.o"
  "CMakeFiles/fx_store.dir/src/store/placeholder.c.o.d"
  "libfx_store.a"
  "libfx_store.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fx_store.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
