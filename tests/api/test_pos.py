"""POST /v1/pos/scan: the till scans a card (or a kind:value identifier) and sees the member."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from api_support import Tenant, document
from login_support import member_token
from sqlalchemy import Engine
from test_member_qr import qr


def test_a_till_scans_a_card_and_sees_name_balances_and_usable_vouchers(shop: Tenant) -> None:
    # given Mia with a printed card, 120 points, one voucher used and one still to use
    mia = shop.enrol(name="Mia", identifiers={"card": "4711-0815", "email": "mia@example.org"})
    assert shop.buy(mia["id"], "120.00").status_code == 201
    redeem = f"/v1/members/{mia['id']}/redemptions"
    used = shop.post(redeem, {"reward": "kaffee"}, who="pos").json()["voucher"]
    kept = shop.post(redeem, {"reward": "kaffee"}, who="pos").json()["voucher"]
    assert shop.post(f"/v1/vouchers/{used['code']}/consume", who="pos").status_code == 200

    # when the till scans the card, written as the customer shows it
    r = shop.post("/v1/pos/scan", {"token": "4711 0815"}, who="pos")

    # then it sees who it is and what can be used now
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["object"] == "member_summary"
    assert (summary["member_id"], summary["name"], summary["status"]) == (
        mia["id"],
        "Mia",
        "active",
    )
    assert summary["balances"]["available"] == 120 - 2 * 30
    assert [v["code"] for v in summary["vouchers"]] == [kept["code"]]


def test_a_scan_takes_any_identifier_as_kind_value(shop: Tenant) -> None:
    mia = shop.enrol("scan-mia@example.org")
    r = shop.post("/v1/pos/scan", {"token": "email:Scan-Mia@Example.org"}, who="pos")
    assert r.json()["member_id"] == mia["id"]
    assert r.json()["vouchers"] == []
    # a wallet pass of a member without a card carries the bare member id
    by_id = shop.post("/v1/pos/scan", {"token": mia["id"]}, who="pos")
    assert (by_id.status_code, by_id.json()["member_id"]) == (200, mia["id"])


def test_an_unknown_card_is_not_found_and_a_bad_token_is_invalid(shop: Tenant) -> None:
    unknown = shop.post("/v1/pos/scan", {"token": "9999"}, who="pos")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "member_not_found")
    bad = shop.post("/v1/pos/scan", {"token": "iban:DE00"}, who="pos")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_identifier")


def test_a_till_sees_only_members_of_its_stores_programme(
    shop: Tenant, new_tenant: Callable[[], Tenant]
) -> None:
    second = f"zweit-{uuid.uuid4().hex[:8]}"
    assert shop.post("/v1/programmes", document(second)).status_code == 201
    elsewhere = shop.post(
        f"/v1/programmes/{second}/members", {"identifiers": {"card": "5555"}}
    ).json()
    assert shop.post("/v1/pos/scan", {"token": "5555"}, who="pos").status_code == 404
    named = shop.post("/v1/pos/scan", {"token": "5555", "programme": second}, who="pos")
    assert named.status_code == 404
    other = new_tenant()
    other.enrol(identifiers={"card": "6666"})
    assert shop.post("/v1/pos/scan", {"token": "6666"}, who="pos").status_code == 404
    # an admin key names the programme
    admin = shop.post("/v1/pos/scan", {"token": "5555", "programme": second})
    assert admin.json()["member_id"] == elsewhere["id"]


def test_a_key_without_a_store_must_name_the_programme(shop: Tenant) -> None:
    shop.enrol(identifiers={"card": "7777"})
    r = shop.post("/v1/pos/scan", {"token": "7777"}, who="integration")
    assert r.status_code == 422
    assert [e["path"] for e in r.json()["errors"]] == ["programme"]
    r = shop.post("/v1/pos/scan", {"token": "7777", "programme": shop.programme}, who="integration")
    assert r.status_code == 200
    assert shop.post("/v1/pos/scan", {"token": "7777"}, who="read").status_code == 403


def test_a_blocked_member_is_shown_as_blocked(shop: Tenant) -> None:
    mia = shop.enrol(identifiers={"card": "8888"})
    shop.post(f"/v1/members/{mia['id']}/block")
    assert shop.post("/v1/pos/scan", {"token": "8888"}, who="pos").json()["status"] == "blocked"


def test_a_till_rings_up_and_redeems_for_a_scanned_card_in_one_call_each(
    shop: Tenant, engine: Engine
) -> None:
    jan = shop.enrol(name="Jan", identifiers={"card": "2024-0001", "email": "jan@example.org"})
    # the till scans the card and rings up 45.00 in one call
    r = shop.post(
        "/v1/pos/purchases",
        {"token": "2024 0001", "external_id": "bon-1", "currency": "EUR", "total": "45.00"},
        who="pos",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["activity"]["points"], body["activity"]["member_id"]) == (45, jan["id"])
    assert body["member"]["balances"]["available"] == 45
    # the same purchase again (a retry) is recorded once
    again = shop.post(
        "/v1/pos/purchases",
        {"token": "2024 0001", "external_id": "bon-1", "currency": "EUR", "total": "45.00"},
        who="pos",
    )
    assert (again.status_code, again.json()["activity"]["replayed"]) == (200, True)
    # a guest purchase needs no token
    guest = shop.post(
        "/v1/pos/purchases",
        {"external_id": "bon-2", "currency": "EUR", "total": "5.00"},
        who="pos",
    )
    assert (guest.status_code, guest.json()["member"]) == (201, None)
    # a card number earns, but does not spend: it can be copied
    refused = shop.post(
        "/v1/pos/redemptions", {"token": "2024-0001", "reward": "kaffee"}, who="pos"
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "qr_code_required")
    assert shop.get(f"/v1/members/{jan['id']}/balances").json()["available"] == 45
    # then Jan shows the QR code from the portal and redeems a coffee: points spent, voucher
    # used there and then
    shown = qr(shop, member_token(engine, shop, jan, "jan@example.org"))
    redeemed = shop.post(
        "/v1/pos/redemptions",
        {"token": shown, "reward": "kaffee"},
        who="pos",
        **{"Idempotency-Key": "till-7-redeem-1"},
    )
    assert redeemed.status_code == 201, redeemed.text
    result = redeemed.json()
    assert result["redemption"]["voucher"]["status"] == "used"
    assert result["member"]["balances"]["available"] == 45 - 30
    assert result["member"]["vouchers"] == []
    # and not enough points for a second one: nothing changes
    short = shop.post("/v1/pos/redemptions", {"token": shown, "reward": "kaffee"}, who="pos")
    assert (short.status_code, short.json()["code"]) == (422, "insufficient_points")
    assert shop.get(f"/v1/members/{jan['id']}/balances").json()["available"] == 15


def test_a_retried_till_redemption_redeems_once(shop: Tenant) -> None:
    # this programme lets a printed card spend too
    allowed = shop.post(
        "/v1/programmes", {**document(shop.programme), "static_cards": "earn_and_spend"}
    )
    assert allowed.status_code == 200, allowed.text
    ole = shop.enrol(name="Ole", identifiers={"card": "2024-0002", "email": "ole@example.org"})
    assert shop.buy(ole["id"], "70.00").status_code == 201
    body = {"token": "2024-0002", "reward": "kaffee"}
    first = shop.post("/v1/pos/redemptions", body, who="pos", **{"Idempotency-Key": "t-9"})
    again = shop.post("/v1/pos/redemptions", body, who="pos", **{"Idempotency-Key": "t-9"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert shop.get(f"/v1/members/{ole['id']}/balances").json()["available"] == 70 - 30
    # the same key for another reward is a different request: refused, nothing spent
    other = shop.post(
        "/v1/pos/redemptions", {**body, "reward": "kuchen"}, who="pos", **{"Idempotency-Key": "t-9"}
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reuse")
    assert shop.get(f"/v1/members/{ole['id']}/balances").json()["available"] == 40


def test_a_foreign_or_unknown_member_cannot_be_merged_in(
    shop: Tenant, new_tenant: Callable[[], Tenant]
) -> None:
    stranger = new_tenant().enrol("stranger@example.org")
    mine = shop.enrol("mine@example.org")
    for merge in (stranger["id"], "mbr_01J0000000000000000000000"):
        r = shop.post(f"/v1/members/{mine['id']}/merge", {"merge": merge})
        assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
