file(REMOVE_RECURSE
  "libfx_bus.a"
)
