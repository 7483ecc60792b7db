CMakeFiles/fx_store.dir/src/store/placeholder.c.o: \
 /work/main/src/store/placeholder.c /usr/include/stdc-predef.h
