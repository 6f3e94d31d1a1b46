"""Exports stream a programme's data as CSV or JSON lines; the members export imports elsewhere."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from import_support import ACTIVITY_HEADER, act, programme, run, write_csv

from treu.exports.model import Export, ExportFormat, ExportKind, encode
from treu.exports.service import export_rows
from treu.imports.model import ImportKind
from treu.members.service import find_member
from treu.programmes.service import Tenant
from treu.rewards.service import redeem_reward
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]


def exported(new_uow: NewUow, programme_id: str, kind: ExportKind, fmt: ExportFormat) -> str:
    with new_uow() as uow:
        return "".join(encode(export_rows(uow, programme_id=programme_id, kind=kind), fmt))


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_a_members_export_imports_into_a_fresh_programme_as_the_same_members(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    # given members with every kind of detail, imported into one programme
    old = programme(new_uow, tenant, "old")
    write_csv(
        tmp_path / "members.csv",
        [
            "email",
            "phone",
            "card",
            "external_id",
            "name",
            "birthday",
            "locale",
            "status",
            "enrolled_at",
            "consent_email",
            "consent_sms",
            "attributes",
        ],
        [
            [
                "mia@example.org",
                "030 1234567",
                "4711",
                "K-1",
                'Mia "Mimi" Müller, Berlin',
                "1990-04-01",
                "de-DE",
                "active",
                "2019-05-01T10:00:00+02:00",
                "true",
                "false",
                '{"shop": "Mitte", "vip": true}',
            ],
            ["bo@example.org", "", "", "", "Bo", "", "", "blocked", "", "", "", ""],
            ["", "", "C-2000", "", "Card only\nsecond line", "", "", "", "", "", "true", ""],
        ],
    )
    assert run(new_uow, old, ImportKind.MEMBERS, tmp_path / "members.csv").rows_ok == 3
    # when they are exported and the file is imported into a fresh programme
    first = exported(new_uow, old, ExportKind.MEMBERS, ExportFormat.CSV)
    (tmp_path / "export.csv").write_text(first, encoding="utf-8", newline="")
    new = programme(new_uow, tenant, "new")
    job = run(new_uow, new, ImportKind.MEMBERS, tmp_path / "export.csv")
    assert (job.rows_ok, job.rows_failed) == (3, 0)
    # then the fresh programme exports the same members (only the ids are new)
    second = exported(new_uow, new, ExportKind.MEMBERS, ExportFormat.CSV)

    def without_ids(text: str) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "member_id"} for r in rows_of(text)]

    assert without_ids(second) == without_ids(first)
    mia = rows_of(first)[0]
    assert mia["phone"] == "+49301234567"
    assert mia["enrolled_at"] == "2019-05-01T08:00:00+00:00"
    assert (mia["consent_email"], mia["consent_sms"], mia["consent_push"]) == ("true", "false", "")
    assert json.loads(mia["attributes"]) == {"shop": "Mitte", "vip": True}


def test_every_export_streams_as_csv_and_json_lines(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    members = tmp_path / "members.csv"
    write_csv(members, ["email", "points", "points_expire_at"], [["mia@example.org", "80", ""]])
    run(new_uow, programme_id, ImportKind.MEMBERS, members)
    mia = "email:mia@example.org"
    write_csv(
        tmp_path / "activities.csv",
        ACTIVITY_HEADER,
        [
            act("purchase", "r-1", mia, "2025-10-01T10:00:00+02:00", store="berlin", total="12.50"),
            act("return", "x-1", "", "2025-10-02", purchase="r-1", amount="2.50"),
        ],
    )
    run(new_uow, programme_id, ImportKind.ACTIVITIES, tmp_path / "activities.csv")
    with new_uow() as uow:
        member_id = find_member(uow, programme_id=programme_id, reference=mia).id
    with new_uow() as uow:
        redeem_reward(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            reward_key="coffee",
            idempotency_key="export-test",
        )
    with new_uow() as uow:
        export = export_rows(uow, programme_id=programme_id, kind=ExportKind.BALANCES)
        assert isinstance(export, Export)
        first = next(export.rows)  # a stream: rows come one at a time, inside the transaction
        assert first["member_id"] == member_id
        export.rows.close()  # a reader may stop early: the cursor closes with the stream
    balances = rows_of(exported(new_uow, programme_id, ExportKind.BALANCES, ExportFormat.CSV))
    assert [(b["available"], b["pending"], b["held"], b["negative"]) for b in balances] == [
        ("60", "0", "0", "0")  # 80 opening + 12 earned - 2 returned - 30 for the coffee
    ]
    lots = [
        json.loads(line)
        for line in exported(
            new_uow, programme_id, ExportKind.LOTS, ExportFormat.JSONL
        ).splitlines()
    ]
    # the return took back from its purchase's lot, the coffee from the older lot
    assert sorted((lot["amount"], lot["remaining"]) for lot in lots) == [(12, 10), (80, 50)]
    vouchers = rows_of(exported(new_uow, programme_id, ExportKind.VOUCHERS, ExportFormat.CSV))
    assert [(v["reward"], v["status"], v["member_id"]) for v in vouchers] == [
        ("coffee", "issued", member_id)
    ]
    activities: list[dict[str, Any]] = [
        json.loads(line)
        for line in exported(
            new_uow, programme_id, ExportKind.ACTIVITIES, ExportFormat.JSONL
        ).splitlines()
    ]
    assert [
        (a["type"], a["external_id"], a["amount"], a["points"], a["purchase_external_id"])
        for a in activities
    ] == [("purchase", "r-1", "12.50", 12, None), ("return", "x-1", "2.50", -2, "r-1")]
    assert activities[0]["occurred_at"] == "2025-10-01T08:00:00+00:00"
    assert activities[0]["store"] == "berlin"
