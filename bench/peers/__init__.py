"""The bare peers the benchmark measures Hopper against: the simplest honest version of each
hot path, built from the same parts (Flask under gunicorn, SQLAlchemy Core on PostgreSQL, kombu
with publisher confirms on RabbitMQ, Celery prefork) and nothing else."""
