"""HTTP-target jobs' per-tenant settings: the signing secret and the private-host allow-list."""
