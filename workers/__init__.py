"""The worker side: the Celery app, its tasks, the scheduler loop, and the broker publisher."""
