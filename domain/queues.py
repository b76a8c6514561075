"""Queue and task names, in one place. The Procfile and docker-compose workers listen to exactly
``ALL_QUEUES`` (a test checks it)."""

from domain.model import Priority

DEFAULT = "default"
LONG = "long"
ALL_QUEUES = (DEFAULT, LONG)

RUN_JOB_TASK = "hopper.run_job"

# RabbitMQ priorities: a message without one counts as the lowest, so every message sets one.
MAX_PRIORITY = 9
PRIORITY_VALUES = {Priority.HIGH: 9, Priority.NORMAL: 5, Priority.LOW: 1}
