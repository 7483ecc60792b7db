CMakeFiles/fx_bus.dir/src/bus/placeholder.c.o: \
 /work/main/src/bus/placeholder.c /usr/include/stdc-predef.h
