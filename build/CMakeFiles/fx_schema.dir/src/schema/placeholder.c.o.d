CMakeFiles/fx_schema.dir/src/schema/placeholder.c.o: \
 /work/main/src/schema/placeholder.c /usr/include/stdc-predef.h
