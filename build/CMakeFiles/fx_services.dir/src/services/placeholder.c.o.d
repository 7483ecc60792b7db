CMakeFiles/fx_services.dir/src/services/placeholder.c.o: \
 /work/main/src/services/placeholder.c /usr/include/stdc-predef.h
