"""Roles, API keys and principals: ``domain.model.tenant`` and ``domain.auth``."""

from __future__ import annotations

import hashlib
import string
from datetime import timedelta

import pytest

from domain.auth import (
    KEY_PREFIX,
    Principal,
    display_prefix,
    generate_key,
    hash_key,
    same_hash,
    well_formed,
)
from domain.ids import new_id
from domain.model import ApiKey, Role
from tests.unit.builders import NOW

BASE62 = set(string.ascii_letters + string.digits)
R, S, A = Role.READER, Role.SUBMITTER, Role.ADMIN


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [
        (R, R, True),
        (R, S, False),
        (R, A, False),
        (S, R, True),
        (S, S, True),
        (S, A, False),
        (A, R, True),
        (A, S, True),
        (A, A, True),
    ],
)
def test_role_allows_its_own_level_and_below(held: Role, required: Role, allowed: bool) -> None:
    assert held.allows(required) is allowed


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [(R, S, False), (S, S, True), (A, S, True), (S, A, False), (R, R, True)],
)
def test_principal_can_follows_its_role(held: Role, required: Role, allowed: bool) -> None:
    principal = Principal(tenant_id=new_id("ten"), key_id=new_id("key"), role=held)
    assert principal.can(required) is allowed


def test_roles_are_the_contract_names() -> None:
    assert [str(r) for r in Role] == ["reader", "submitter", "admin"]
    assert Role("admin") is Role.ADMIN


def _key(**overrides: object) -> ApiKey:
    values: dict[str, object] = {
        "id": new_id("key"),
        "tenant_id": new_id("ten"),
        "name": "ci",
        "role": "reader",
        "prefix": "hop_abcdefgh",
        "key_hash": "0" * 64,
        "created_at": NOW,
        "expires_at": None,
        "last_used_at": None,
        "revoked_at": None,
    }
    values.update(overrides)
    return ApiKey(**values)


def test_api_key_without_expiry_or_revocation_is_usable() -> None:
    assert _key().usable_at(NOW)
    assert _key().usable_at(NOW + timedelta(days=3650))


def test_api_key_is_usable_until_it_expires_and_not_at_the_instant() -> None:
    key = _key(expires_at=NOW + timedelta(hours=1))
    assert key.usable_at(NOW)
    assert key.usable_at(NOW + timedelta(minutes=59, seconds=59))
    assert not key.usable_at(NOW + timedelta(hours=1))
    assert not key.usable_at(NOW + timedelta(hours=2))


def test_revoked_api_key_is_never_usable() -> None:
    assert not _key(revoked_at=NOW).usable_at(NOW - timedelta(days=1))
    assert not _key(revoked_at=NOW, expires_at=NOW + timedelta(days=1)).usable_at(NOW)


def test_generated_key_has_prefix_length_and_base62_body() -> None:
    key = generate_key()
    assert KEY_PREFIX == "hop_"
    assert key.startswith("hop_")
    assert len(key) == len("hop_") + 40
    assert set(key[4:]) <= BASE62
    assert well_formed(key)


def test_generated_keys_are_unique_and_use_the_whole_alphabet() -> None:
    keys = [generate_key() for _ in range(300)]
    assert len(set(keys)) == len(keys)
    seen = set("".join(k[4:] for k in keys))
    # 12,000 draws from 62 symbols: every symbol shows up (a miss has odds below 1e-80).
    assert seen == BASE62


def test_hash_key_is_hex_sha256_and_deterministic() -> None:
    key = generate_key()
    digest = hash_key(key)
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")
    assert hash_key(key) == digest
    assert hash_key(generate_key()) != digest


def test_hash_key_survives_lone_surrogates() -> None:
    assert len(hash_key("hop_\ud800")) == 64


def test_same_hash_compares_exactly() -> None:
    digest = hash_key("hop_x")
    assert same_hash(digest, hash_key("hop_x"))
    assert not same_hash(digest, hash_key("hop_y"))


def test_display_prefix_shows_the_prefix_and_eight_characters() -> None:
    key = "hop_" + "AbCdEfGh" + "x" * 32
    assert display_prefix(key) == "hop_AbCdEfGh"
    assert len(display_prefix(generate_key())) == 12


@pytest.mark.parametrize(
    "key",
    [
        "",
        "hop_",
        "hop_" + "a" * 39,
        "hop_" + "a" * 41,
        "HOP_" + "a" * 40,
        "pfx_" + "a" * 40,
        "hop" + "a" * 41,
        "hop_" + "a" * 39 + "-",
        "hop_" + "a" * 39 + "_",
        "hop_" + "a" * 39 + " ",
        "hop_" + "a" * 39 + "é",
        "hop_" + "a" * 39 + "\u0661",  # a non-ASCII digit
        " hop_" + "a" * 40,
    ],
)
def test_well_formed_refuses_anything_but_the_exact_format(key: str) -> None:
    assert not well_formed(key)


def test_well_formed_accepts_the_exact_format() -> None:
    assert well_formed("hop_" + "aZ09" * 10)
