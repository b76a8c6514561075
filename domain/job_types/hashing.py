"""``hash``: the digest of a string, a CPU-bound diagnostic."""

import hashlib

import marshmallow as ma

from domain import queues
from domain.context import JobContext
from domain.job_types.registry import JobType

MAX_DATA_BYTES = 512 * 1024


def _fits(data: str) -> None:
    if len(data.encode("utf-8", "surrogatepass")) > MAX_DATA_BYTES:
        raise ma.ValidationError("Longer than 512 KiB of UTF-8.")


class HashPayload(ma.Schema):
    data = ma.fields.String(required=True, validate=_fits)
    algorithm = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["sha256", "sha512", "blake2b"])
    )


class HashResult(ma.Schema):
    digest = ma.fields.String(required=True)


def run(payload: dict, ctx: JobContext) -> dict:
    digest = hashlib.new(payload["algorithm"], payload["data"].encode("utf-8", "surrogatepass"))
    return {"digest": digest.hexdigest()}


JOB_TYPE = JobType(
    name="hash",
    description="Returns the hex digest of `data` under `algorithm`.",
    queue=queues.DEFAULT,
    payload_schema=HashPayload,
    result_schema=HashResult,
    handler=run,
    default_timeout_seconds=60,
)
