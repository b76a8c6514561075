"""The app factory."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_swagger_ui import get_swaggerui_blueprint
from werkzeug.middleware.proxy_fix import ProxyFix

from api import auth, body, hygiene, idempotency, problems, rate_limits, read_routing
from api.audit.routes import blp as audit_blp
from api.http_targets.routes import blp as http_targets_blp
from api.job_types.routes import blp as job_types_blp
from api.jobs.routes import JobIdConverter, job_id_parameter
from api.jobs.routes import blp as jobs_blp
from api.keys.routes import blp as keys_blp
from api.limits.routes import blp as limits_blp
from api.meta import instruments
from api.meta.routes import blp as meta_blp
from api.openapi import HopperApi
from api.queues.routes import blp as queues_blp
from api.schedules.routes import blp as schedules_blp
from api.webhooks.routes import blp as webhooks_blp

API_VERSION = "1.0.0"


def create_app(container: Any) -> Flask:
    app = Flask("hopper")
    app.config.update(
        API_TITLE="Hopper",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "Submit jobs over HTTP; poll for results or receive webhooks."},
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
        },
        MAX_CONTENT_LENGTH=container.settings.max_batch_body_bytes,
    )
    app.extensions["hopper"] = container
    app.json.sort_keys = False  # type: ignore[attr-defined]  # fields in the schema's order
    api = HopperApi(app)
    app.url_map.converters["job_id"] = JobIdConverter
    api.register_converter(JobIdConverter, job_id_parameter)
    blueprints = (
        jobs_blp,
        job_types_blp,
        queues_blp,
        limits_blp,
        webhooks_blp,
        http_targets_blp,
        schedules_blp,
        keys_blp,
        audit_blp,
        meta_blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    # validatorUrl None: the page must not call an outside validator service.
    docs = get_swaggerui_blueprint(
        "/docs", "/openapi.json", config={"app_name": "Hopper", "validatorUrl": None}
    )
    app.register_blueprint(docs)
    app.before_request(hygiene.assign_request_id)
    app.before_request(hygiene.preflight)  # CORS preflights: before authentication
    app.before_request(auth.authenticate)
    rate_limits.init(app, container.settings.redis_url)  # its check runs here: after auth
    read_routing.init(app)  # after authentication: it reads the key
    app.before_request(body.check_body)
    app.before_request(idempotency.begin)
    # after_request hooks run last-registered first: hygiene.finish closes the request's log.
    app.after_request(hygiene.finish)
    app.after_request(instruments.observe_request)
    app.after_request(idempotency.finish)
    app.teardown_request(idempotency.reset)
    problems.register(app)
    auth.check_routes(app)
    _trust_proxies(app, container.settings.trusted_proxy_hops)
    return app


def _trust_proxies(app: Flask, hops: int) -> None:
    """Behind ``hops`` proxies, the client's address, scheme and host are the ones the outermost
    of them saw (the address for per-address limits and the audit trail). With none,
    ``X-Forwarded-*`` is never read: any client could write it."""
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
