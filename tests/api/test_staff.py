"""Staff users log in with a password; the session's rights follow their role."""

from __future__ import annotations

import uuid

from api_support import Tenant
from login_support import PASSWORD, bearer, staff_token, tenant_key
from sqlalchemy import Engine, update

from treu.auth.model import StaffRole
from treu.auth.tables import staff_users
from treu.outbox.service import list_events
from treu.storage.uow import UnitOfWork


def login(shop: Tenant, tenant: str, email: str, password: str) -> tuple[int, str]:
    body = {"tenant": tenant, "email": email, "password": password}
    r = shop.client.post("/v1/staff/login", json=body)
    return r.status_code, r.json().get("code", r.json().get("role"))


def test_the_owner_manager_and_cashier_can_do_what_their_role_allows(
    shop: Tenant, engine: Engine
) -> None:
    owner, manager, cashier = (
        bearer(staff_token(engine, shop, role, f"{role}-{uuid.uuid4().hex[:6]}@example.org"))
        for role in (StaffRole.OWNER, StaffRole.MANAGER, StaffRole.CASHIER)
    )
    mia = shop.enrol("mia-staff@example.org")
    keys = "/v1/api-keys"
    adjust = f"/v1/members/{mia['id']}/adjustments"
    purchase = {
        "external_id": "bon-staff-1",
        "currency": "EUR",
        "total": "5.00",
        "member": mia["id"],
        "store": "kastanienallee",
    }
    c = shop.client
    # the owner manages API keys; the manager does not, but corrects points
    assert c.get(keys, headers=owner).status_code == 200
    assert c.get(keys, headers=manager).status_code == 403
    r = c.post(adjust, json={"points": 5, "reason": "Kulanz"}, headers=manager)
    assert r.status_code == 201, r.text
    with UnitOfWork(engine) as uow:
        adjusted = list_events(uow, tenant_id=shop.id, type="points.adjusted")
    assert adjusted[-1]["payload"]["actor"].startswith("staff:stf_")
    # the cashier rings up a purchase and scans, like a till, and nothing more
    assert c.post(adjust, json={"points": 5, "reason": "x"}, headers=cashier).status_code == 403
    scan = {"token": "email:mia-staff@example.org", "programme": shop.programme}
    assert c.post("/v1/pos/scan", json=scan, headers=cashier).status_code == 200
    bought = c.post(f"/v1/programmes/{shop.programme}/purchases", json=purchase, headers=cashier)
    assert bought.status_code == 201, bought.text
    assert c.get(f"/v1/programmes/{shop.programme}/members", headers=cashier).status_code == 403


def test_a_wrong_password_an_unknown_user_and_an_unknown_tenant_look_the_same(
    shop: Tenant, engine: Engine
) -> None:
    staff_token(engine, shop, StaffRole.OWNER, "owner-login@example.org")
    tenant = tenant_key(engine, shop)
    assert login(shop, tenant, "Owner-Login@Example.org", PASSWORD) == (200, "owner")
    refused = (401, "unauthenticated")
    assert login(shop, tenant, "owner-login@example.org", "wrong password") == refused
    assert login(shop, tenant, "nobody@example.org", PASSWORD) == refused
    assert login(shop, "no-such-tenant", "owner-login@example.org", PASSWORD) == refused
    assert login(shop, tenant, "not an address", PASSWORD) == refused


def test_a_disabled_or_demoted_user_loses_the_rights_at_once(shop: Tenant, engine: Engine) -> None:
    session = bearer(staff_token(engine, shop, StaffRole.OWNER, "demoted@example.org"))
    assert shop.client.get("/v1/api-keys", headers=session).status_code == 200
    with UnitOfWork(engine) as uow:
        uow.conn.execute(
            update(staff_users)
            .where(staff_users.c.email == "demoted@example.org", staff_users.c.tenant_id == shop.id)
            .values(role="cashier")
        )
        uow.commit()
    assert shop.client.get("/v1/api-keys", headers=session).status_code == 403
    with UnitOfWork(engine) as uow:
        uow.conn.execute(
            update(staff_users)
            .where(staff_users.c.email == "demoted@example.org", staff_users.c.tenant_id == shop.id)
            .values(disabled_at=uow.now())
        )
        uow.commit()
    assert shop.client.get("/v1/api-keys", headers=session).status_code == 401
    tenant = tenant_key(engine, shop)
    assert login(shop, tenant, "demoted@example.org", PASSWORD) == (401, "unauthenticated")


def test_a_staff_session_of_one_tenant_sees_nothing_of_another(
    shop: Tenant, engine: Engine, new_tenant: object
) -> None:
    other = new_tenant()  # type: ignore[operator]
    session = bearer(staff_token(engine, other, StaffRole.OWNER, "other-owner@example.org"))
    mia = shop.enrol("mia-foreign@example.org")
    r = shop.client.get(f"/v1/members/{mia['id']}", headers=session)
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")


def test_an_idempotency_key_in_a_staff_session_replays_the_first_answer(
    shop: Tenant, engine: Engine
) -> None:
    manager = bearer(staff_token(engine, shop, StaffRole.MANAGER, "idem-mgr@example.org"))
    mia = shop.enrol("mia-idem@example.org")
    adjust = f"/v1/members/{mia['id']}/adjustments"
    body = {"points": 7, "reason": "Kulanz"}
    first = shop.client.post(adjust, json=body, headers={**manager, "Idempotency-Key": "k-1"})
    again = shop.client.post(adjust, json=body, headers={**manager, "Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    changed = shop.client.post(
        adjust, json={**body, "points": 8}, headers={**manager, "Idempotency-Key": "k-1"}
    )
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reuse")
    assert shop.get(f"/v1/members/{mia['id']}/balances").json()["available"] == 7
