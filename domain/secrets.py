"""Secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) under keys from
``HOPPER_ENCRYPTION_KEYS``, newest first. Every listed key decrypts; the newest encrypts, so the
encryption key itself can be rotated and old ciphertexts re-encrypted (`hopper encryption
reencrypt`)."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# What every representation, log line and webhook body shows in place of a secret value.
REDACTED = "[redacted]"


class SecretBox:
    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._box = MultiFernet([Fernet(key.encode()) for key in keys])

    def seal(self, plaintext: str) -> str:
        return self._box.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._box.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("no configured key opens this secret") from None

    def reseal(self, ciphertext: str) -> str:
        """The same secret under the newest key."""
        return self._box.rotate(ciphertext.encode()).decode()


def valid_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def generate_key() -> str:
    return Fernet.generate_key().decode()


def local_key(path: Path) -> str:
    """The embedded default's key: made once under var/, readable by its owner only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
