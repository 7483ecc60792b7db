file(REMOVE_RECURSE
  "libfx_services.a"
)
