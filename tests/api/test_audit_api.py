"""``GET /v1/audit``: the tenant's audit log, oldest first, a page at a time, filtered."""

from __future__ import annotations

from api_support import Tenant
from sqlalchemy import Engine

from treu.audit.service import record_action
from treu.storage.uow import UnitOfWork


def test_the_audit_log_is_listed_oldest_first_page_by_page_and_by_member(
    shop: Tenant, engine: Engine
) -> None:
    mia = shop.enrol("mia@example.org")["id"]
    bo = shop.enrol("bo@example.org")["id"]
    written = []
    for subject, action in (
        (mia, "member.adjusted"),
        (bo, "member.blocked"),
        (mia, "member.blocked"),
    ):
        with UnitOfWork(engine) as uow:
            written.append(
                record_action(
                    uow, tenant_id=shop.id, actor="staff:stf_anna", action=action, subject=subject
                )
            )
            uow.commit()

    first = shop.get("/v1/audit", params={"limit": 2}).json()
    assert [e["id"] for e in first["data"]] == written[:2]
    assert first["has_more"] is True
    rest = shop.get(
        "/v1/audit", params={"limit": 2, "starting_after": first["next_starting_after"]}
    ).json()
    assert [e["id"] for e in rest["data"]] == written[2:]
    assert rest["has_more"] is False
    entry = first["data"][0]
    assert (entry["object"], entry["actor"], entry["action"]) == (
        "audit_entry",
        "staff:stf_anna",
        "member.adjusted",
    )

    of_mia = shop.get("/v1/audit", params={"member_id": mia}).json()["data"]
    assert [e["id"] for e in of_mia] == [written[0], written[2]]
    blocked = shop.get("/v1/audit", params={"action": "member.blocked"}, who="read").json()
    assert [e["id"] for e in blocked["data"]] == written[1:]
    assert shop.get("/v1/audit", who="pos").status_code == 403
