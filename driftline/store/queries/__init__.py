"""Named, tenant-scoped reads and writes: every function takes the tenant as an argument."""
