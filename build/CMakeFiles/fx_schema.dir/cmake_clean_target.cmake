file(REMOVE_RECURSE
  "libfx_schema.a"
)
