file(REMOVE_RECURSE
  "libfx_core.a"
)
