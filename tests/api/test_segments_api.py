"""Segments over HTTP: definitions with sizes, an on-demand recompute, masked member pages, a
static list uploaded as CSV (with rows that name nobody), ad-hoc previews, and the errors."""

from __future__ import annotations

from typing import Any

from api_support import Tenant, document
from sqlalchemy import Engine

from treu.outbox.service import list_events
from treu.storage.uow import UnitOfWork

VIP = {"key": "vip", "name": "VIP-Liste", "static": True}
BIG = {"key": "big-spenders", "name": "Große Einkäufe", "all": [{"spend": {"min": "50.00"}}]}


def with_segments(shop: Tenant, *segments: dict[str, Any]) -> None:
    doc = document(shop.programme)
    doc["segments"] = list(segments)
    applied = shop.post("/v1/programmes", doc)
    assert applied.status_code in (200, 201), applied.text


def url(shop: Tenant, rest: str = "") -> str:
    return f"/v1/programmes/{shop.programme}/segments{rest}"


def put_csv(shop: Tenant, segment: str, text: str, who: str = "admin", **headers: str) -> Any:
    return shop.client.put(
        url(shop, f"/{segment}/members"),
        content=text.encode(),
        headers=shop.headers(who, **{"Content-Type": "text/csv", **headers}),
    )


def test_the_list_holds_the_built_ins_and_the_programmes_segments_with_sizes(
    shop: Tenant,
) -> None:
    with_segments(shop, BIG)
    listed = shop.get(url(shop), who="read")
    assert listed.status_code == 200, listed.text
    by_key = {s["key"]: s for s in listed.json()}
    assert list(by_key) == ["new", "active", "inactive", "premium", "big-spenders"]
    assert by_key["new"]["built_in"]
    assert not by_key["big-spenders"]["built_in"]
    assert by_key["big-spenders"]["definition"]["all"] == [{"spend": {"min": "50.00"}}]
    assert by_key["premium"]["definition"]["any"] == [{"membership": ["plus"]}]
    assert all(s["size"] == 0 for s in by_key.values())  # nothing recomputed yet

    one = shop.get(url(shop, "/big-spenders"), who="read").json()
    assert one == by_key["big-spenders"]
    missing = shop.get(url(shop, "/no-such-segment"))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "unknown_segment"


def test_a_recompute_stores_members_announces_them_and_pages_them_masked(
    shop: Tenant, engine: Engine
) -> None:
    with_segments(shop, BIG)
    mia = shop.enrol("mia.schulz@example.org", name="Mia Schulz")
    ben = shop.enrol("ben@example.org", name="Ben")
    shop.enrol("zoe@example.org")
    assert shop.buy(mia["id"], "60.00").status_code == 201
    assert shop.buy(ben["id"], "51.00").status_code == 201

    assert shop.post(url(shop, "/big-spenders/recompute"), who="read").status_code == 403
    done = shop.post(url(shop, "/big-spenders/recompute"))
    assert done.status_code == 200, done.text
    assert done.json() | {"object": None} == {
        "object": None,
        "segment": "big-spenders",
        "entered": 2,
        "left": 0,
        "size": 2,
    }
    again = shop.post(url(shop, "/big-spenders/recompute"))
    assert (again.json()["entered"], again.json()["left"]) == (0, 0)
    assert shop.get(url(shop, "/big-spenders")).json()["size"] == 2

    first = shop.get(url(shop, "/big-spenders/members"), params={"limit": 1}).json()
    assert first["has_more"]
    assert len(first["data"]) == 1
    rest = shop.get(
        url(shop, "/big-spenders/members"),
        params={"limit": 1, "starting_after": first["next_starting_after"]},
    ).json()
    assert not rest["has_more"]
    shown = {m["id"]: m for m in first["data"] + rest["data"]}
    assert set(shown) == {mia["id"], ben["id"]}
    assert shown[mia["id"]]["name"] == "M** S*****"
    assert shown[mia["id"]]["email"] == "m*********@example.org"
    assert shown[mia["id"]]["entered_at"] is not None
    assert "mia.schulz" not in str(shown)

    with UnitOfWork(engine) as uow:
        events = list_events(uow, tenant_id=shop.id, type="segment.entered")
    assert sorted(e["payload"]["member_id"] for e in events) == sorted([mia["id"], ben["id"]])
    assert {e["payload"]["segment"] for e in events} == {"big-spenders"}


def test_a_static_list_is_uploaded_as_csv_and_rows_naming_nobody_are_reported(
    shop: Tenant,
) -> None:
    with_segments(shop, VIP)
    mia = shop.enrol("mia@example.org")
    ben = shop.enrol("ben@example.org")
    text = "email\nmia@example.org\nMIA@example.org\nnobody@example.org\nben@example.org\n"
    uploaded = put_csv(shop, "vip", text)
    assert uploaded.status_code == 200, uploaded.text
    report = uploaded.json()
    assert (report["rows"], report["members"], report["entered"]) == (4, 2, 2)
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [(4, "member_not_found")]

    # the next upload replaces the list: Ben leaves, a malformed reference is reported
    replaced = put_csv(shop, "vip", f"{mia['id']}\nphone:12\n").json()
    assert (replaced["members"], replaced["entered"], replaced["left"]) == (1, 0, 1)
    assert [r["code"] for r in replaced["rejected"]] == ["invalid_identifier"]
    members = shop.get(url(shop, "/vip/members")).json()["data"]
    assert [m["id"] for m in members] == [mia["id"]]
    assert ben["id"] not in str(members)


def test_uploads_are_refused_for_rule_segments_non_csv_bodies_and_weak_keys(
    shop: Tenant,
) -> None:
    with_segments(shop, VIP)
    refused = put_csv(shop, "new", "email\nmia@example.org\n")
    assert refused.status_code == 409
    assert refused.json()["code"] == "segment_not_static"
    as_json = shop.client.put(url(shop, "/vip/members"), json=["x"], headers=shop.headers())
    assert as_json.status_code == 422
    assert as_json.json()["code"] == "invalid_segment"
    headerless = put_csv(shop, "vip", "Vorname,Nachname\nMia,Schulz\n")
    assert headerless.status_code == 422
    assert "neither a member reference nor a header" in headerless.json()["detail"]
    assert put_csv(shop, "vip", "email\nx@example.org\n", who="integration").status_code == 403
    assert put_csv(shop, "nope", "email\nx@example.org\n").status_code == 404


def test_an_ad_hoc_definition_is_previewed_without_storing_anything(shop: Tenant) -> None:
    mia = shop.enrol("mia@example.org", consents={"email": True})
    shop.enrol("ben@example.org")
    preview = shop.post(url(shop, "/preview"), {"all": [{"consent": "email"}]}, who="read")
    assert preview.status_code == 200, preview.text
    assert preview.json()["size"] == 1
    assert [m["id"] for m in preview.json()["sample"]] == [mia["id"]]
    assert preview.json()["sample"][0]["email"] == "m**@example.org"
    assert all(s["size"] == 0 for s in shop.get(url(shop)).json())

    bad = shop.post(url(shop, "/preview"), {"all": [{"purchases": {"between": ["7", "9"]}}]})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_segment"
    assert bad.json()["errors"][0]["path"] == "all.0.purchases.between"
    unknown_tier = shop.post(url(shop, "/preview"), {"all": [{"tier": ["gold"]}]})
    assert unknown_tier.status_code == 422
    assert "unknown tier 'gold'" in unknown_tier.json()["detail"]
