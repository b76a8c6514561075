"""What the OpenAPI document says is what the API enforces, case by case: jobs typed by their
`type` from the registry, the cursor's exact form, strict booleans, no unknown query
parameters, and `/v1/jobs/batch` as the batch resource alone."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
import pytest
from flask.testing import FlaskClient

from api.app import create_app
from domain.job_types import JobType
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.factories import TenantKeys
from tests.services import real_env


def _spec(client: FlaskClient) -> dict[str, Any]:
    spec: dict[str, Any] = client.get("/openapi.json").get_json()
    return spec


def test_a_job_to_submit_is_one_of_the_registered_types(client: FlaskClient) -> None:
    spec = _spec(client)
    schemas = spec["components"]["schemas"]
    job = schemas["JobCreate"]
    mapping = job["discriminator"]["mapping"]
    assert job["discriminator"]["propertyName"] == "type"
    assert {"echo", "fail", "hash", "sleep", "stubborn"} <= set(mapping)
    assert [branch["$ref"] for branch in job["oneOf"]] == list(mapping.values())
    echo = schemas["EchoJob"]
    assert echo["properties"]["type"] == {"type": "string", "enum": ["echo"]}
    assert echo["required"] == ["type", "payload"]
    assert echo["additionalProperties"] is False
    payload_ref = echo["properties"]["payload"]["allOf"][0]["$ref"]
    assert schemas[payload_ref.rsplit("/", 1)[1]]["required"] == ["message"]
    batch_items = schemas["JobBatch"]["properties"]["jobs"]["items"]
    assert batch_items == {"$ref": "#/components/schemas/JobCreate"}


def test_a_type_registered_later_appears_in_the_document_by_itself(
    migrated_database: str,
) -> None:
    class PingPayload(ma.Schema):
        host = ma.fields.String(required=True)

    container = bootstrap(Settings.from_env(real_env()))
    container.registry.register(
        JobType(
            name="net.ping",
            description="Pings a host.",
            queue="default",
            payload_schema=PingPayload,
            result_schema=PingPayload,
            handler=lambda payload, ctx: payload,
        )
    )
    app = create_app(container)
    try:
        schemas = _spec(app.test_client())["components"]["schemas"]
    finally:
        container.engine.dispose()
    mapping = schemas["JobCreate"]["discriminator"]["mapping"]
    assert mapping["net.ping"] == "#/components/schemas/NetPingJob"
    assert schemas["NetPingJob"]["properties"]["type"]["enum"] == ["net.ping"]
    assert schemas["NetPingPayload"]["required"] == ["host"]


def test_a_job_of_an_unknown_type_is_refused(client: FlaskClient, tenant: TenantKeys) -> None:
    response = client.post(
        "/v1/jobs", json={"type": "nope", "payload": {}}, headers=tenant.headers("submitter")
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["type"]


def test_cursors_have_the_documented_form(client: FlaskClient, tenant: TenantKeys) -> None:
    for _ in range(3):
        client.post(
            "/v1/jobs",
            json={"type": "echo", "payload": {"message": "page"}},
            headers=tenant.headers("submitter"),
        )
    page = client.get("/v1/jobs?limit=1", headers=tenant.headers("reader")).get_json()
    parameters = _spec(client)["paths"]["/v1/jobs"]["get"]["parameters"]
    pattern = next(p for p in parameters if p["name"] == "cursor")["schema"]["pattern"]
    assert re.fullmatch(pattern, page["next_cursor"])
    for refused in ["0", page["next_cursor"].upper(), page["next_cursor"] + "0", "8" + "0" * 25]:
        response = client.get(f"/v1/jobs?cursor={refused}", headers=tenant.headers("reader"))
        assert response.status_code == 422, refused
        assert response.get_json()["errors"][0]["field"] == "query.cursor"


@pytest.mark.parametrize("value", [1, 0, "true", "false", None])
def test_enabled_is_a_json_boolean(client: FlaskClient, tenant: TenantKeys, value: Any) -> None:
    response = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "enabled": value},
        headers=tenant.headers("admin"),
    )
    assert response.status_code == 422, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == ["enabled"]


def test_a_query_parameter_the_route_does_not_take_is_refused(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    response = client.get("/v1/jobs?stauts=failed", headers=tenant.headers("reader"))
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["query.stauts"]
    assert client.get("/v1/jobs?status=failed", headers=tenant.headers("reader")).status_code == 200


def test_the_batch_resource_takes_post_alone(client: FlaskClient, tenant: TenantKeys) -> None:
    response = client.get("/v1/jobs/batch", headers=tenant.headers("reader"))
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    spec = _spec(client)
    parameter = spec["paths"]["/v1/jobs/{job_id}"]["parameters"][0]
    assert parameter["schema"]["not"] == {"enum": ["batch"]}
    assert "405" in spec["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]


def test_text_in_the_document_may_not_hold_nul(client: FlaskClient, tenant: TenantKeys) -> None:
    schemas = _spec(client)["components"]["schemas"]
    pattern = schemas["EchoPayload"]["properties"]["message"]["pattern"]
    assert re.fullmatch(pattern, "fine") and not re.fullmatch(pattern, "a\x00b")
    response = client.post(
        "/v1/jobs",
        json={"type": "echo", "payload": {"message": "a\x00b"}},
        headers=tenant.headers("submitter"),
    )
    assert response.status_code == 400


def test_metadata_bounds_are_object_keywords(client: FlaskClient) -> None:
    metadata = _spec(client)["components"]["schemas"]["EchoJob"]["properties"]["metadata"]
    assert metadata["maxProperties"] == 16
    assert "maxLength" not in metadata
    assert metadata["propertyNames"]["maxLength"] == 40


def test_the_job_types_list_gives_the_payload_schema_the_document_gives(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    listed = client.get("/v1/job-types", headers=tenant.headers("reader")).get_json()["data"]
    echo = next(t for t in listed if t["name"] == "echo")
    assert echo["payload_schema"] == _spec(client)["components"]["schemas"]["EchoPayload"]
