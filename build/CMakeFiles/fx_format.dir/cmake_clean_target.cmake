file(REMOVE_RECURSE
  "libfx_format.a"
)
