"""API keys: shown once, stored hashed, listed, rotated, revoked; a till's key is bound."""

from __future__ import annotations

import hashlib

import pytest
from api_support import Tenant
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from treu.auth.model import Scope, key_id_of
from treu.auth.service import create_api_key
from treu.auth.tables import api_keys
from treu.cli.main import app as cli
from treu.errors import InvalidInput
from treu.storage.uow import UnitOfWork


def test_a_key_is_stored_only_as_its_hash(shop: Tenant, engine: Engine) -> None:
    token = shop.keys["admin"]
    assert token.startswith("treu_sk_")
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == key_id_of(token))).one()
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(tuple(row))
    listed = shop.get("/v1/api-keys").json()["data"]
    assert all(k["token"] is None for k in listed)
    assert {k["scope"] for k in listed} == {"admin", "integration", "pos", "read"}


def test_rotate_with_grace_then_revoke(shop: Tenant) -> None:
    old = shop.keys["integration"]
    old_id = key_id_of(old)
    rotated = shop.post(f"/v1/api-keys/{old_id}/rotate", {"grace_seconds": 3600})
    assert rotated.status_code == 201
    new = rotated.json()["token"]
    assert new.startswith("treu_sk_")
    assert rotated.json()["scope"] == "integration"
    for token in (old, new):  # both work during the grace period
        r = shop.client.get("/v1/programmes", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    assert shop.post(f"/v1/api-keys/{old_id}/revoke").json()["revoked_at"] is not None
    gone = shop.client.get("/v1/programmes", headers={"Authorization": f"Bearer {old}"})
    assert gone.status_code == 401
    assert "revoked" in gone.json()["detail"]


def test_rotation_without_grace_ends_the_old_key_at_once(shop: Tenant) -> None:
    old = shop.keys["read"]
    assert shop.post(f"/v1/api-keys/{key_id_of(old)}/rotate").status_code == 201
    r = shop.client.get("/v1/programmes", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401


def test_a_till_key_records_purchases_of_its_store_only(shop: Tenant) -> None:
    member = shop.enrol()
    own = shop.buy(member["id"], "4.00", who="pos")
    assert own.status_code == 201
    other = shop.buy(member["id"], "4.00", who="pos", store="online")
    assert other.status_code == 403
    assert other.json()["code"] == "forbidden"
    assert shop.buy(member["id"], "4.00", who="pos", store="kastanienallee").status_code == 201


def test_only_a_pos_key_can_be_bound_to_a_store(shop: Tenant, engine: Engine) -> None:
    with UnitOfWork(engine) as uow, pytest.raises(InvalidInput):
        create_api_key(uow, tenant_id=shop.id, scope=Scope.READ, name="x", store="online")
    r = shop.post("/v1/api-keys", {"name": "till 2", "scope": "pos", "store": "nowhere"})
    assert r.status_code == 404
    assert r.json()["code"] == "store_not_found"


def test_cli_creates_lists_and_revokes_keys(
    shop: Tenant, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    with UnitOfWork(engine) as uow:
        from treu.programmes.tables import tenants

        tenant_key = uow.conn.execute(
            select(tenants.c.key).where(tenants.c.id == shop.id)
        ).scalar_one()
    runner = CliRunner()
    created = runner.invoke(
        cli,
        ["keys", "create", "--tenant", tenant_key, "--scope", "pos", "--store", "kastanienallee"],
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("treu_sk_")
    r = shop.client.get(
        f"/v1/programmes/{shop.programme}/rewards", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    listed = runner.invoke(cli, ["keys", "list", "--tenant", tenant_key])
    assert key_id_of(token) in listed.output
    assert token not in listed.output
    revoked = runner.invoke(cli, ["keys", "revoke", key_id_of(token), "--tenant", tenant_key])
    assert revoked.exit_code == 0, revoked.output
    r = shop.client.get("/v1/programmes", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
