"""``hopper encryption reencrypt``: after a new key is put first in HOPPER_ENCRYPTION_KEYS, move
every stored secret under it, so the old key can then be removed."""

from __future__ import annotations

from sqlalchemy import select

from domain.webhooks.model import Endpoint
from hopper.bootstrap import Container

BATCH = 200


def reencrypt_secrets(container: Container) -> int:
    done, after = 0, ""
    while True:
        with container.uow() as uow:
            query = select(Endpoint).where(Endpoint.id > after).order_by(Endpoint.id).limit(BATCH)
            batch = list(uow.session.scalars(query))
            if not batch:
                return done
            for endpoint in batch:
                endpoint.secret_ciphertext = container.box.reseal(endpoint.secret_ciphertext)
                if endpoint.previous_secret_ciphertext:
                    endpoint.previous_secret_ciphertext = container.box.reseal(
                        endpoint.previous_secret_ciphertext
                    )
            uow.commit()
            done += len(batch)
            after = batch[-1].id
