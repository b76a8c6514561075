"""Queue controls: what waits in each queue and why, and pausing a queue for a tenant or for
every tenant."""
