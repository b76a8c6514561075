"""``hopper encryption reencrypt``: after a new key is put first in HOPPER_ENCRYPTION_KEYS, move
every stored secret under it (webhook secrets, the answers kept for idempotency keys, `http`
target secrets, and the sealed payload fields of jobs and schedules), so the old key can then
be removed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, tuple_

from domain.http_targets.model import TargetSettings
from domain.model import IdempotencyRecord, Job
from domain.schedules.model import Schedule
from domain.secrets import SecretBox
from domain.webhooks.model import Endpoint
from hopper.bootstrap import Container

BATCH = 200


def reencrypt_secrets(container: Container) -> int:
    box = container.box
    endpoints = _in_batches(container, Endpoint, (Endpoint.id,), (), lambda e: _rotating(box, e))
    answers = _in_batches(
        container,
        IdempotencyRecord,
        (IdempotencyRecord.tenant_id, IdempotencyRecord.route, IdempotencyRecord.key),
        (IdempotencyRecord.response_body.is_not(None),),
        lambda r: setattr(r, "response_body", box.reseal(r.response_body)),
    )
    targets = _in_batches(
        container,
        TargetSettings,
        (TargetSettings.tenant_id,),
        (TargetSettings.secret_ciphertext.is_not(None),),
        lambda t: _rotating(box, t),
    )
    jobs = _in_batches(
        container,
        Job,
        (Job.id,),
        (Job.sealed.is_not(None),),
        lambda j: setattr(j, "sealed", box.reseal(j.sealed)),
    )
    schedules = _in_batches(
        container,
        Schedule,
        (Schedule.id,),
        (Schedule.sealed.is_not(None),),
        lambda s: setattr(s, "sealed", box.reseal(s.sealed)),
    )
    return endpoints + answers + targets + jobs + schedules


def _rotating(box: SecretBox, row: Endpoint | TargetSettings) -> None:
    """A signing secret, and the previous one while it still signs beside it."""
    if row.secret_ciphertext:
        row.secret_ciphertext = box.reseal(row.secret_ciphertext)
    if row.previous_secret_ciphertext:
        row.previous_secret_ciphertext = box.reseal(row.previous_secret_ciphertext)


def _in_batches(
    container: Container,
    model: type[Any],
    key: tuple[Any, ...],
    where: tuple[Any, ...],
    reseal: Callable[[Any], None],
) -> int:
    """Reseal every row, a transaction a batch, walking the rows in ``key`` order."""
    done, after = 0, None
    while True:
        with container.uow() as uow:
            query = select(model).where(*where).order_by(*key).limit(BATCH)
            if after is not None:
                query = query.where(tuple_(*key) > tuple_(*after))
            batch = list(uow.session.scalars(query))
            if not batch:
                return done
            for row in batch:
                reseal(row)
            uow.commit()
            done += len(batch)
            after = tuple(getattr(batch[-1], column.key) for column in key)
