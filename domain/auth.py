"""API keys: their format, hashing, and the principal an authenticated request acts as."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from domain.model import Role

KEY_PREFIX = "hop_"
_ALPHABET = string.ascii_letters + string.digits
_BODY_LENGTH = 40  # about 238 bits of entropy


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    role: Role

    def can(self, required: Role) -> bool:
        return self.role.allows(required)


def generate_key() -> str:
    """A new secret key: a recognisable prefix (so secret scanners find leaked ones) and 40 random
    base62 characters."""
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LENGTH))


def hash_key(key: str) -> str:
    # Keys carry ~238 bits of entropy, so a fast hash is enough; a slow KDF would buy nothing.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 8]


def well_formed(key: str) -> bool:
    body = key[len(KEY_PREFIX) :]
    return (
        key.startswith(KEY_PREFIX)
        and len(body) == _BODY_LENGTH
        and all(c in _ALPHABET for c in body)
    )


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as its bearer token (compared in
    constant time)."""
    return hmac.compare_digest((header or "").encode(), f"Bearer {token}".encode())
