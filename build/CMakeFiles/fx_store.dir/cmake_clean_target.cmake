file(REMOVE_RECURSE
  "libfx_store.a"
)
