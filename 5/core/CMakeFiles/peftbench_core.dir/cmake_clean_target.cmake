file(REMOVE_RECURSE
  "libpeftbench_core.a"
)
