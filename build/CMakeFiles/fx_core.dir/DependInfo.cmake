
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/core/error.c" "CMakeFiles/fx_core.dir/src/core/error.c.o" "gcc" "CMakeFiles/fx_core.dir/src/core/error.c.o.d"
  "/work/main/src/core/log.c" "CMakeFiles/fx_core.dir/src/core/log.c.o" "gcc" "CMakeFiles/fx_core.dir/src/core/log.c.o.d"
  "/work/main/src/core/mem.c" "CMakeFiles/fx_core.dir/src/core/mem.c.o" "gcc" "CMakeFiles/fx_core.dir/src/core/mem.c.o.d"
  "/work/main/src/core/util.c" "CMakeFiles/fx_core.dir/src/core/util.c.o" "gcc" "CMakeFiles/fx_core.dir/src/core/util.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
