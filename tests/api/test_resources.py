"""The resources, as a shop and a till use them: a café's day through the API."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from api_support import Tenant, document

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "treu" / "examples"


def test_mia_enrols_earns_redeems_and_uses_her_voucher_at_the_till(shop: Tenant) -> None:
    mia = shop.enrol("Mia@Example.org", name="Mia", birthday="1990-07-15", consents={"email": True})
    assert mia["object"] == "member"
    assert mia["id"].startswith("mbr_")
    assert mia["identifiers"] == {"email": "mia@example.org"}
    assert mia["consents"] == {"email": True}

    # the till scans her e-mail (any identifier works), rings up 120.00 EUR
    found = shop.get(
        f"/v1/programmes/{shop.programme}/members/lookup",
        who="pos",
        params={"identifier": "email:MIA@example.org"},
    )
    assert found.status_code == 200
    assert found.json()["id"] == mia["id"]
    bought = shop.buy(mia["id"], "120.00", who="pos")
    assert bought.status_code == 201, bought.text
    activity = bought.json()
    assert activity["points"] == 120
    assert activity["replayed"] is False
    assert activity["awards"][0]["explanation"].startswith("1 Punkt je Euro")

    balances = shop.get(f"/v1/members/{mia['id']}/balances", who="pos").json()
    assert balances["available"] == 120
    assert balances["pending"] == 0

    redeemed = shop.post(
        f"/v1/members/{mia['id']}/redemptions",
        {"reward": "kaffee"},
        who="pos",
        **{"Idempotency-Key": "redeem-1"},
    )
    assert redeemed.status_code == 201, redeemed.text
    voucher = redeemed.json()["voucher"]
    assert redeemed.json()["points"] == 30
    assert voucher["status"] == "issued"

    valid = shop.post(f"/v1/vouchers/{voucher['code']}/validate", who="pos")
    assert valid.status_code == 200
    used = shop.post(f"/v1/vouchers/{voucher['code'].lower()}/consume", who="pos")
    assert used.status_code == 200
    assert used.json()["status"] == "used"
    again = shop.post(f"/v1/vouchers/{voucher['code']}/consume", who="pos")
    assert again.status_code == 422
    assert again.json()["code"] == "voucher_already_used"

    assert shop.get(f"/v1/members/{mia['id']}/balances").json()["available"] == 90
    history = shop.get(f"/v1/members/{mia['id']}/history").json()
    assert [e["points"] for e in history["data"]] == [120, -30]
    assert shop.post("/v1/ledger/verify").json()["ok"] is True


def test_a_purchase_sent_twice_is_recorded_once(shop: Tenant) -> None:
    member = shop.enrol()
    body = {"external_id": "bon-77", "currency": "EUR", "total": "10.00", "member": member["id"]}
    first = shop.post(f"/v1/programmes/{shop.programme}/purchases", body)
    second = shop.post(f"/v1/programmes/{shop.programme}/purchases", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["replayed"] is True
    assert second.json()["id"] == first.json()["id"]
    assert shop.get(f"/v1/members/{member['id']}/balances").json()["available"] == 10


def test_returns_actions_claims_and_simulation(shop: Tenant) -> None:
    base = f"/v1/programmes/{shop.programme}"
    member = shop.enrol()
    sim = shop.post(
        f"{base}/simulations",
        {"currency": "EUR", "lines": [{"unit_price": "4.50", "quantity": 2}]},
        who="integration",
    )
    assert sim.status_code == 200
    assert sim.json()["points"] == 9

    bought = shop.buy(member["id"], "50.00", who="integration").json()
    ret = shop.post(
        f"{base}/returns",
        {
            "external_id": "storno-1",
            "purchase_external_id": bought["external_id"],
            "amount": "20.00",
        },
        who="integration",
    )
    assert ret.status_code == 201
    assert ret.json()["points"] == -20

    review = shop.post(
        f"{base}/actions", {"external_id": "rev-1", "type": "review", "member": member["id"]}
    )
    assert review.status_code == 201
    assert review.json()["points"] == 10

    guest = shop.buy(None, "7.00").json()
    assert guest["member_id"] is None
    assert guest["points"] == 0
    claimed = shop.post(
        f"{base}/claims", {"member": member["id"], "external_id": guest["external_id"]}
    )
    assert claimed.status_code == 201
    assert claimed.json()["points"] == 7
    assert shop.get(f"/v1/activities/{guest['id']}").json()["member_id"] == member["id"]
    assert shop.get(f"/v1/members/{member['id']}/balances").json()["available"] == 30 + 10 + 7


def test_programme_catalogue_stores_and_money_as_decimal_strings(shop: Tenant) -> None:
    programme = shop.get(f"/v1/programmes/{shop.programme}", who="read").json()
    assert programme["currency"] == "EUR"
    assert programme["document"]["key"] == shop.programme
    stores = shop.get(f"/v1/programmes/{shop.programme}/stores", who="read").json()["data"]
    assert {s["key"] for s in stores} == {"kastanienallee", "online"}
    rewards = shop.get(f"/v1/programmes/{shop.programme}/rewards", who="pos").json()["data"]
    five = next(r for r in rewards if r["key"] == "fuenf-euro")
    assert five["value"] == {"amount": "5.00", "currency": "EUR"}
    assert five["cost"] == 100
    # applying the same document again changes nothing
    again = shop.post("/v1/programmes", document(shop.programme))
    assert again.status_code == 200
    assert again.json()["changed"] is False


def test_block_unblock_update_adjust_and_cancel(shop: Tenant) -> None:
    member = shop.enrol()
    mid = member["id"]
    assert shop.post(f"/v1/members/{mid}/block").json()["status"] == "blocked"
    refused = shop.buy(mid, "5.00")
    assert refused.status_code == 422
    assert refused.json()["code"] == "member_blocked"
    assert shop.post(f"/v1/members/{mid}/unblock").json()["status"] == "active"

    patched = shop.client.patch(
        f"/v1/members/{mid}",
        json={"name": "Ben", "attributes": {"vip": True}},
        headers=shop.headers("integration"),
    )
    assert patched.status_code == 200
    assert patched.json()["attributes"] == {"vip": True}

    adjusted = shop.post(f"/v1/members/{mid}/adjustments", {"points": 40, "reason": "Kulanz"})
    assert adjusted.status_code == 201
    assert adjusted.json()["transfer_id"].startswith("txf_")
    voucher = shop.post(f"/v1/members/{mid}/redemptions", {"reward": "kaffee"}).json()["voucher"]
    assert shop.get(f"/v1/members/{mid}/balances").json()["available"] == 10
    cancelled = shop.post(f"/v1/vouchers/{voucher['code']}/cancel", {"reason": "wrong reward"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert shop.get(f"/v1/members/{mid}/balances").json()["available"] == 40
    vouchers = shop.get(f"/v1/members/{mid}/vouchers").json()["data"]
    assert [v["status"] for v in vouchers] == ["cancelled"]
    lots = shop.get(f"/v1/members/{mid}/lots").json()["data"]
    assert [lot["remaining"] for lot in lots] == [40]


def test_lists_page_with_limit_and_starting_after(shop: Tenant) -> None:
    ids = [shop.enrol()["id"] for _ in range(5)]
    url = f"/v1/programmes/{shop.programme}/members"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"starting_after": cursor} if cursor else {})}
        page = shop.get(url, who="read", params=params).json()
        seen += [m["id"] for m in page["data"]]
        assert len(page["data"]) <= 2
        if not page["has_more"]:
            assert page["next_starting_after"] is None
            break
        cursor = page["next_starting_after"]
    assert seen == sorted(ids)
    too_big = shop.get(url, params={"limit": 101})
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["path"] == "query.limit"


def test_times_are_rfc3339_and_points_integers(shop: Tenant) -> None:
    member = shop.enrol()
    assert datetime.fromisoformat(member["enrolled_at"]).utcoffset() is not None
    assert member["enrolled_at"].endswith("Z")
    bought = shop.buy(member["id"], "3.99").json()
    assert isinstance(bought["points"], int)


def test_jobs_run_only_the_callers_programmes(shop: Tenant, new_tenant: object) -> None:
    other = new_tenant()  # type: ignore[operator]
    run = shop.post("/v1/jobs/nightly", {"date": "2026-02-01"})
    assert run.status_code == 200
    programmes = {s["programme_id"] for s in run.json()["steps"]}
    mine = shop.get("/v1/programmes").json()["data"]
    assert programmes == {p["id"] for p in mine}
    theirs = other.get("/v1/programmes").json()["data"]
    assert not programmes & {p["id"] for p in theirs}
    again = shop.post("/v1/jobs/nightly", {"date": "2026-02-01"}).json()
    assert all(s["skipped"] for s in again["steps"])


def test_support_merges_two_sign_ups_then_the_member_exports_and_erases_her_data(
    shop: Tenant,
) -> None:
    card = shop.post(
        f"/v1/programmes/{shop.programme}/members", {"identifiers": {"card": "NINA-7"}}
    ).json()
    online = shop.enrol("nina@example.org", name="Nina")
    assert shop.buy(card["id"], "20.00").status_code == 201
    assert shop.buy(online["id"], "30.00").status_code == 201
    # support merges the online account into the card; a till may not
    assert (
        shop.post(f"/v1/members/{card['id']}/merge", {"merge": online["id"]}, who="pos").status_code
        == 403
    )
    merged = shop.post(f"/v1/members/{card['id']}/merge", {"merge": online["id"]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["identifiers"] == {"card": "NINA7", "email": "nina@example.org"}
    assert shop.get(f"/v1/members/{card['id']}/balances").json()["available"] == 50
    # her data, as one JSON document
    export = shop.get(f"/v1/members/{card['id']}/export").json()
    assert export["member"]["name"] == "Nina"
    assert sorted(a["paid_minor"] for a in export["activities"]) == [2000, 3000]
    # erasure must be confirmed with her id, then forgets her and gives up the points
    wrong = shop.post(f"/v1/members/{card['id']}/erase", {"reason": "art. 17", "confirm": "x"})
    assert (wrong.status_code, wrong.json()["code"]) == (422, "validation_error")
    erased = shop.post(
        f"/v1/members/{card['id']}/erase", {"reason": "art. 17 request", "confirm": card["id"]}
    )
    assert erased.json() == {"object": "erasure", "member_id": card["id"], "points_given_up": 50}
    after = shop.get(f"/v1/members/{card['id']}").json()
    assert (after["status"], after["name"], after["identifiers"]) == ("erased", None, {})
    assert shop.post("/v1/ledger/verify").json()["ok"] is True


def test_lists_filter_by_creation_time(shop: Tenant) -> None:
    early = shop.enrol("early@example.org")
    time.sleep(0.005)
    cut = datetime.now(UTC)
    time.sleep(0.005)
    late = shop.enrol("late@example.org")
    members = f"/v1/programmes/{shop.programme}/members"

    def ids(**params: str) -> list[str]:
        r = shop.get(members, params=params)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["data"]]

    assert ids(created_gte=cut.isoformat()) == [late["id"]]
    assert ids(created_lt=cut.isoformat()) == [early["id"]]
    assert ids(created_gte=cut.isoformat(), created_lt=cut.isoformat()) == []
    # a time without its offset is ambiguous: refused
    naive = shop.get(members, params={"created_gte": "2026-03-01T10:00:00"})
    assert (naive.status_code, naive.json()["code"]) == (422, "validation_error")
    # the same filter on lists read whole: a member's history
    assert shop.buy(late["id"], "10.00").status_code == 201
    history = f"/v1/members/{late['id']}/history"
    assert len(shop.get(history, params={"created_gte": cut.isoformat()}).json()["data"]) == 1
    assert shop.get(history, params={"created_lt": cut.isoformat()}).json()["data"] == []


def test_a_creation_window_before_1970_is_empty_not_an_error(shop: Tenant) -> None:
    mia = shop.enrol("old@example.org")
    history = f"/v1/members/{mia['id']}/history"
    r = shop.get(history, params={"created_lt": "1969-01-01T00:00:00Z"})
    assert (r.status_code, r.json()["data"]) == (200, [])
    r = shop.get(history, params={"created_gte": "1969-01-01T00:00:00Z"})
    assert r.status_code == 200


def test_a_programme_exported_by_the_api_applies_back_unchanged(shop: Tenant) -> None:
    # Kiezcafé's stamp card earns per unit: a discriminator equal to nothing's default
    kiezcafe = yaml.safe_load((EXAMPLES / "kiezcafe.yaml").read_text(encoding="utf-8"))
    assert shop.post("/v1/programmes", kiezcafe).status_code == 201
    exported = shop.get("/v1/programmes/kiezcafe").json()["document"]
    assert exported["stamp_cards"][0]["earn"]["type"] == "per_unit"
    again = shop.post("/v1/programmes", exported)
    assert again.status_code == 200
    assert again.json()["changed"] is False
