"""``AccessService`` through the fake unit of work: tenants, keys, authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.auth import display_prefix, hash_key, well_formed
from domain.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from domain.model import Role
from tests.unit.fakes import FakeWiring, row_state


def test_create_tenant(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("  Acme Corp  ")
    assert tenant.id.startswith("ten_")
    assert tenant.name == "Acme Corp"
    assert tenant.created_at == wiring.store.now
    assert wiring.store.tenants[tenant.id].name == "Acme Corp"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_create_tenant_refuses_a_bad_name(wiring: FakeWiring, name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        wiring.access.create_tenant(name)
    assert [e.field for e in caught.value.errors] == ["name"]
    assert wiring.store.tenants == {}


def test_create_tenant_accepts_200_characters(wiring: FakeWiring) -> None:
    assert wiring.access.create_tenant("x" * 200).name == "x" * 200


def test_a_tenant_name_is_unique(wiring: FakeWiring) -> None:
    wiring.access.create_tenant("acme")
    with pytest.raises(Conflict, match="acme"):
        wiring.access.create_tenant(" acme ")
    assert len(wiring.store.tenants) == 1


def test_find_tenant_by_id_or_name(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("acme")
    assert wiring.access.find_tenant(tenant.id).id == tenant.id
    assert wiring.access.find_tenant("acme").id == tenant.id
    with pytest.raises(NotFound):
        wiring.access.find_tenant("nobody")
    with pytest.raises(NotFound):
        wiring.access.find_tenant("ten_01jd4b2v6v3cz8f0f2m9k7q1xw")


def test_create_key_stores_only_a_hash(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("acme")

    new = wiring.access.create_key(tenant.id, "deploy", Role.SUBMITTER)

    assert well_formed(new.secret)
    record = wiring.store.keys[new.record.id]
    assert record.id.startswith("key_")
    assert record.tenant_id == tenant.id
    assert record.name == "deploy"
    assert record.role == "submitter"
    assert record.prefix == display_prefix(new.secret)
    assert record.key_hash == hash_key(new.secret)
    assert record.created_at == wiring.store.now
    assert record.expires_at is None
    assert record.revoked_at is None
    assert new.secret not in {str(v) for v in row_state(record).values()}


def test_create_key_for_an_unknown_tenant_is_not_found(wiring: FakeWiring) -> None:
    with pytest.raises(NotFound):
        wiring.access.create_key("ten_01jd4b2v6v3cz8f0f2m9k7q1xw", "k", Role.ADMIN)
    assert wiring.store.keys == {}


@pytest.mark.parametrize("role", list(Role))
def test_authenticate_gives_the_principal_of_the_key(wiring: FakeWiring, role: Role) -> None:
    tenant = wiring.access.create_tenant("acme")
    new = wiring.access.create_key(tenant.id, "k", role)

    principal = wiring.access.authenticate(new.secret)

    assert principal.tenant_id == tenant.id
    assert principal.key_id == new.record.id
    assert principal.role is role


@pytest.mark.parametrize("presented", ["", "Bearer x", "hop_short", "hop_" + "!" * 40])
def test_authenticate_refuses_a_malformed_key(wiring: FakeWiring, presented: str) -> None:
    with pytest.raises(AuthenticationFailed):
        wiring.access.authenticate(presented)


def test_authenticate_refuses_an_unknown_key(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("acme")
    new = wiring.access.create_key(tenant.id, "k", Role.ADMIN)
    forged = new.secret[:-1] + ("a" if new.secret[-1] != "a" else "b")
    with pytest.raises(AuthenticationFailed):
        wiring.access.authenticate(forged)


def test_authenticate_refuses_a_revoked_key(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("acme")
    new = wiring.access.create_key(tenant.id, "k", Role.ADMIN)
    wiring.store.keys[new.record.id].revoked_at = wiring.store.now
    with pytest.raises(AuthenticationFailed):
        wiring.access.authenticate(new.secret)


def test_authenticate_honours_the_expiry(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("acme")
    expires = wiring.store.now + timedelta(hours=1)
    new = wiring.access.create_key(tenant.id, "k", Role.READER, expires_at=expires)

    assert wiring.access.authenticate(new.secret).role is Role.READER
    wiring.store.advance(3600)
    with pytest.raises(AuthenticationFailed):
        wiring.access.authenticate(new.secret)


def test_keys_of_two_tenants_act_for_their_own_tenant(wiring: FakeWiring) -> None:
    acme = wiring.access.create_tenant("acme")
    globex = wiring.access.create_tenant("globex")
    a = wiring.access.create_key(acme.id, "k", Role.ADMIN)
    g = wiring.access.create_key(globex.id, "k", Role.ADMIN)
    assert wiring.access.authenticate(a.secret).tenant_id == acme.id
    assert wiring.access.authenticate(g.secret).tenant_id == globex.id


def test_a_key_is_authenticated_from_the_cache_until_a_change_is_heard(
    wiring: FakeWiring,
) -> None:
    tenant = wiring.access.create_tenant("acme")
    new = wiring.access.create_key(tenant.id, "k", Role.READER)
    assert wiring.access.authenticate(new.secret).role is Role.READER
    # Revoked behind the service's back: the row is not read again while the entry is fresh.
    wiring.store.keys[new.record.id].revoked_at = wiring.store.now
    assert wiring.access.authenticate(new.secret).role is Role.READER
    wiring.key_cache.clear()  # what hearing of the change does
    with pytest.raises(AuthenticationFailed):
        wiring.access.authenticate(new.secret)


def test_a_key_revoked_through_this_process_is_refused_here_at_once(wiring: FakeWiring) -> None:
    tenant = wiring.access.create_tenant("acme")
    admin = wiring.access.create_key(tenant.id, "admin", Role.ADMIN)
    doomed = wiring.access.create_key(tenant.id, "doomed", Role.READER)
    acting = wiring.access.authenticate(admin.secret)
    assert wiring.access.authenticate(doomed.secret).role is Role.READER
    wiring.access.revoke_key(acting, doomed.record.id)
    with pytest.raises(AuthenticationFailed):
        wiring.access.authenticate(doomed.secret)
