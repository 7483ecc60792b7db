file(REMOVE_RECURSE
  "CMakeFiles/fluxo.dir/app/main.c.o"
  "CMakeFiles/fluxo.dir/app/main.c.o.d"
  "fluxo"
  "fluxo.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fluxo.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
