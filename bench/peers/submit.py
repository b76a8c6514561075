"""The submit peer: validate two fields by hand, insert one row with SQLAlchemy Core, publish one
persistent message with kombu and publisher confirms, answer 202. Served by gunicorn with the
web settings Hopper uses (2 processes of 16 threads).

    gunicorn -k gthread -w 2 --threads 16 'bench.peers.submit:create_app()'
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import Flask, request
from kombu import Connection
from kombu.pools import producers
from sqlalchemy import create_engine, insert

from bench.peers.schema import QUEUE, jobs, queue


def create_app() -> Flask:
    engine = create_engine(os.environ["DATABASE_URL"], pool_size=16, max_overflow=0)
    broker = Connection(os.environ["BROKER_URL"], transport_options={"confirm_publish": True})
    peer_queue = queue()
    app = Flask(__name__)

    @app.post("/jobs")
    def submit() -> Any:
        body = request.get_json(silent=True)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("type"), str)
            or not isinstance(body.get("payload"), dict)
        ):
            return {"title": "invalid job"}, 422
        job_id = uuid.uuid4().hex
        with engine.begin() as connection:
            connection.execute(
                insert(jobs).values(id=job_id, type=body["type"], payload=body["payload"])
            )
        with producers[broker].acquire(block=True) as producer:
            producer.publish(
                {"id": job_id},
                exchange=peer_queue.exchange,
                routing_key=QUEUE,
                declare=[peer_queue],
                delivery_mode=2,
                serializer="json",
                retry=False,
            )
        return {"id": job_id, "status": "queued"}, 202

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    return app
