"""Queue and task names, in one place. The Procfile and docker-compose job workers listen to
exactly ``JOB_QUEUES``, the ``http`` workers to ``HTTP`` and the delivery workers to
``WEBHOOKS`` (a test checks it)."""

from domain.model import Priority

DEFAULT = "default"
LONG = "long"
WEBHOOKS = "webhooks"
HTTP = "http"
JOB_QUEUES = (DEFAULT, LONG)  # the prefork pool's
THREADED_QUEUES = (HTTP, WEBHOOKS)  # each a thread pool of its own: they wait on the network
ALL_QUEUES = (*JOB_QUEUES, *THREADED_QUEUES)

RUN_JOB_TASK = "hopper.run_job"
DELIVER_WEBHOOK_TASK = "hopper.deliver_webhook"

# RabbitMQ priorities: a message without one counts as the lowest, so every message sets one.
MAX_PRIORITY = 9
PRIORITY_VALUES = {Priority.HIGH: 9, Priority.NORMAL: 5, Priority.LOW: 1}

# Why a queued job waits, as its `waiting_for` says and `hopper_jobs_waiting{queue,reason}` and
# `GET /v1/queues` count it (domain.dispatch.waiting): `capacity` (nothing holds it: it waits for
# a place in its queue's window or a worker), `run_at` (not yet due: its submitter asked for
# later), `backoff` (not yet due: a failed attempt's retry), `paused` (in a queue paused for its
# tenant), `concurrency` and `rate` (held by its concurrency or rate key).
WAITING_REASONS = ("capacity", "run_at", "backoff", "paused", "concurrency", "rate")
