"""The analytics API: KPIs (JSON, CSV, Parquet), cohorts, member value and RFM, uplift, what if.

Kiezcafé through the API: Mia enrols and buys 20.00 and 10.00 in January 2025 and 30.00 in
February; a guest buys 5.00 in January. Every number below is worked out from that.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from api_support import Tenant, document
from sqlalchemy import Engine

from treu.analytics.service import write_store
from treu.programmes.service import find_programme_id
from treu.storage.uow import UnitOfWork


def buy(shop: Tenant, member: str | None, total: str, when: str, n: list[int]) -> None:
    n[0] += 1
    r = shop.buy(member, total, external_id=f"bon-{n[0]}", occurred_at=when, store="online")
    assert r.status_code == 201, r.text


@pytest.fixture
def cafe(shop: Tenant) -> tuple[Tenant, dict[str, Any]]:
    mia = shop.enrol("mia@example.org")
    n = [0]
    buy(shop, mia["id"], "20.00", "2025-01-10T10:00:00+01:00", n)
    buy(shop, mia["id"], "10.00", "2025-01-20T10:00:00+01:00", n)
    buy(shop, None, "5.00", "2025-01-21T10:00:00+01:00", n)
    buy(shop, mia["id"], "30.00", "2025-02-03T10:00:00+01:00", n)
    return shop, mia


def kpis(shop: Tenant, who: str = "read", **params: str) -> Any:
    query = {"programme": shop.programme, "from": "2025-01-01", "to": "2025-03-01", **params}
    return shop.get("/v1/analytics/kpis", who=who, params=query)


def test_the_kpis_of_each_month(cafe: tuple[Tenant, dict[str, Any]]) -> None:
    shop, _ = cafe
    r = kpis(shop)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["object"], body["period"], body["from"], body["to"]) == (
        "kpi_report",
        "month",
        "2025-01-01",
        "2025-03-01",
    )
    january, february = body["kpis"]
    # January: Mia's 20.00 and 10.00 and a guest's 5.00
    assert (january["period"], january["purchases"], january["member_purchases"]) == (
        "2025-01",
        3,
        2,
    )
    assert january["revenue"] == "35.00"
    assert january["aov_members"] == "15.0000"
    assert january["enrolment_rate"] == "0.666667"
    assert january["repeat_purchase_rate"] == "1.000000"
    # February: Mia came back
    assert february["retention_rate"] == "1.000000"
    # the ledger counts when points were posted: today, when the purchases were sent
    assert (february["points_issued"], february["outstanding_points"]) == (0, 0)
    now = datetime.now(UTC).date()
    span = {"from": str(now - timedelta(days=1)), "to": str(now + timedelta(days=2))}
    today = kpis(shop, period="year", **span)
    assert today.json()["kpis"][-1]["points_issued"] == 60
    assert today.json()["kpis"][-1]["liability"] == "0.60"


def test_kpis_as_csv_and_parquet_for_bi_tools(cafe: tuple[Tenant, dict[str, Any]]) -> None:
    shop, _ = cafe
    csv = kpis(shop, format="csv", split="store")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    table = pl.read_csv(io.BytesIO(csv.content))
    assert table.filter(pl.col("scope") == "programme")["purchases"].to_list() == [3, 1]
    assert table.filter(pl.col("scope") == "store:online")["purchases"].to_list() == [3, 1]
    parquet = kpis(shop, format="parquet")
    assert pl.read_parquet(io.BytesIO(parquet.content))["period"].to_list() == [
        "2025-01",
        "2025-02",
    ]


def test_kpi_requests_that_make_no_sense_are_refused(shop: Tenant) -> None:
    assert kpis(shop, store="nowhere").json()["code"] == "store_not_found"
    backwards = kpis(shop, **{"from": "2025-03-01", "to": "2025-01-01"})
    assert (backwards.status_code, backwards.json()["code"]) == (422, "validation_error")
    assert kpis(shop, period="day", **{"from": "2000-01-01"}).status_code == 422
    unknown = shop.get("/v1/analytics/kpis", params={"programme": "nope"})
    assert unknown.json()["code"] == "programme_not_found"


def test_a_till_may_not_read_the_kpis(cafe: tuple[Tenant, dict[str, Any]]) -> None:
    shop, _ = cafe
    assert kpis(shop, who="pos").status_code == 403
    assert kpis(shop, who="admin").status_code == 200


def test_cohorts_by_enrolment_month(cafe: tuple[Tenant, dict[str, Any]]) -> None:
    shop, _ = cafe
    r = shop.get(
        "/v1/analytics/cohorts",
        who="read",
        params={"programme": shop.programme, "from": "2025-01-01", "to": "2025-03-01"},
    )
    assert r.status_code == 200, r.text
    # Mia enrolled today (her purchases are back-dated): the cohorts of 2025 are empty
    assert [c["members"] for c in r.json()["cohorts"]] == [0, 0]
    by_first = shop.get(
        "/v1/analytics/cohorts",
        params={
            "programme": shop.programme,
            "from": "2025-01-01",
            "to": "2025-03-01",
            "basis": "first_purchase",
        },
    ).json()
    assert by_first["cohorts"][0] == {
        "cohort": "2025-01",
        "members": 1,
        "active": [1, 1],
        "rates": ["1.0000", "1.0000"],
    }
    assert by_first["series"][1]["offset"] == 1


def test_a_members_value_and_the_rfm_export(cafe: tuple[Tenant, dict[str, Any]]) -> None:
    shop, mia = cafe
    value = shop.get(
        "/v1/analytics/members/email:mia@example.org/value",
        who="read",
        params={"programme": shop.programme},
    ).json()
    assert (value["member_id"], value["purchased"], value["frequency"]) == (mia["id"], True, 3)
    assert value["monetary"] == "60.00"
    assert value["segment"] is not None
    # one member is too few to fit the models: no CLV, and no guessing
    assert value["clv"] is None
    assert value["p_alive"] is None
    rfm = shop.get("/v1/analytics/rfm", params={"programme": shop.programme}).json()
    assert [m["member_id"] for m in rfm["members"]] == [mia["id"]]
    assert sum(rfm["segments"].values()) == 1
    csv = shop.get("/v1/analytics/rfm", params={"programme": shop.programme, "format": "csv"})
    assert pl.read_csv(io.BytesIO(csv.content))["member_id"].to_list() == [mia["id"]]
    newcomer = shop.enrol("new@example.org")
    none = shop.get(f"/v1/analytics/members/{newcomer['id']}/value").json()
    assert (none["purchased"], none["segment"]) == (False, None)


def test_uplift_without_automations_is_an_empty_list(shop: Tenant) -> None:
    r = shop.get("/v1/analytics/uplift", who="read", params={"programme": shop.programme})
    assert (r.status_code, r.json()) == (200, [])


def test_what_if_double_points(cafe: tuple[Tenant, dict[str, Any]]) -> None:
    shop, _ = cafe
    proposal = document(shop.programme)
    proposal["rules"][0]["effect"]["points"] = 2
    # from the first purchase to after today: the activities and their postings (made today)
    after_today = str(datetime.now(UTC).date() + timedelta(days=2))
    body = {"programme": shop.programme, "document": proposal, "from": "2025-01-01"}
    body["to"] = after_today
    r = shop.post("/v1/analytics/simulate", body, who="read")
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["actual"]["points_issued"], result["proposed"]["points_issued"]) == (60, 120)
    assert result["proposed"]["liability"] == "1.20"
    assert (result["activities"], result["changed"]) == (3, 3)
    bad = shop.post("/v1/analytics/simulate", {**body, "document": {"key": "x"}}, who="read")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_programme")


def test_the_answers_name_their_source_the_columnar_store_or_the_database(
    cafe: tuple[Tenant, dict[str, Any]],
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop, _ = cafe
    monkeypatch.setenv("TREU_ANALYTICS_DIR", str(tmp_path))
    # no store written yet: the database, and source=store cannot be had
    assert (kpis(shop).json()["source"], kpis(shop).json()["as_of"]) == ("database", None)
    assert kpis(shop, source="store").status_code == 404
    # once the store is written (the nightly run does it), the answers come from it
    with UnitOfWork(engine) as uow:
        pid = find_programme_id(uow, tenant_id=shop.id, key=shop.programme)
        info = write_store(uow, programme_id=pid)
    body = kpis(shop).json()
    assert body["source"] == "store"
    assert datetime.fromisoformat(body["as_of"]) == info.as_of
    database = kpis(shop, source="database").json()
    assert database["source"] == "database"
    assert body["kpis"] == database["kpis"]
    query = {"programme": shop.programme, "from": "2025-01-01", "to": "2025-03-01"}
    cohorts = shop.get("/v1/analytics/cohorts", who="read", params=query).json()
    assert cohorts["source"] == "store"
    rfm = shop.get("/v1/analytics/rfm", who="read", params={"programme": shop.programme}).json()
    assert rfm["source"] == "store"
    assert rfm["segments"] == {"lost": 1}  # Mia, last seen in February 2025
