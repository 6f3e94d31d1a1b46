"""Bulk import from CSV: row by row with an error report, dry runs, crash-safe resume.

Every test writes a real file, runs the import the way the CLI and the API do (``inspect_file``
→ ``open_import`` → ``run_import``), and checks the database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from import_support import ACTIVITY_HEADER, NewUow, act, document, programme, run, write_csv
from sqlalchemy import func, select

from treu.activities.tables import activities
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.imports.model import ImportJob, ImportKind, JobStatus, Progress, RowError
from treu.imports.reader import inspect_file
from treu.imports.service import (
    dry_run_import,
    list_import_errors,
)
from treu.imports.tables import import_jobs
from treu.ledger.service import get_balances, list_lots, member_history
from treu.ledger.tables import transfers
from treu.ledger.verify import verify_ledger
from treu.members.service import consent_history, find_member
from treu.members.tables import members
from treu.outbox.tables import outbox
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork


def errors_of(new_uow: NewUow, job: ImportJob) -> list[tuple[int, str, str]]:
    with new_uow() as uow:
        found = list_import_errors(uow, tenant_id=job.tenant_id, job_id=job.id)
        return [(e.line, e.column, e.reason) for e in found]


def count(new_uow: NewUow, table: Any, *where: Any) -> int:
    with new_uow() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def external_ids(new_uow: NewUow, programme_id: str) -> list[str]:
    with new_uow() as uow:
        rows = uow.conn.execute(
            select(activities.c.external_id).where(activities.c.programme_id == programme_id)
        )
        return sorted(r.external_id for r in rows)


MEMBER_HEADER = [
    "email",
    "card",
    "name",
    "birthday",
    "consent_email",
    "points",
    "points_expire_at",
]


# --- members ---------------------------------------------------------------------------------


def test_a_members_file_with_bad_rows_imports_the_good_ones_and_reports_the_bad(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    # given a members file from the old system, with a few bad rows among the good ones
    path = write_csv(
        tmp_path / "members.csv",
        MEMBER_HEADER,
        [
            ["mia@example.org", "4711", "Mia", "1990-04-01", "yes", "120", "2026-06-30"],
            ["bo@example.org", "", "Bo", "", "no", "", ""],
            ["not-an-address", "", "X", "", "", "", ""],
            ["ana@example.org", "", "Ana", "3000-01-01", "maybe", "12.5", ""],
            ["", "", "Nobody", "", "", "", ""],
            ["cem@example.org", "", "Cem", "", "", "30", ""],
        ],
    )
    # when it is imported
    job = run(new_uow, programme_id, ImportKind.MEMBERS, path)
    # then the good rows are members, and every bad cell is in the report with line and column
    assert (job.status, job.rows_done, job.rows_ok, job.rows_failed) == (JobStatus.DONE, 6, 3, 3)
    assert errors_of(new_uow, job) == [
        (4, "email", "invalid_identifier: 'not-an-address' is not an e-mail address: "
         "An email address must have an @-sign."),
        (5, "birthday", "is in the future"),
        (5, "consent_email", "'maybe' is not true or false"),
        (5, "points", "'12.5' is not a whole number of points (0 or more)"),
        (6, "(row)", "a member needs an identifier: email, phone, card, external_id"),
    ]  # fmt: skip
    with new_uow() as uow:
        mia = find_member(uow, programme_id=programme_id, reference="card:4711")
        assert (mia.name, mia.birthday, mia.consents) == ("Mia", date(1990, 4, 1), {"email": True})
        # and Mia's 120 points from the old system are a lot that keeps its expiry
        lots = list_lots(uow, tenant_id=tenant.id, member_id=mia.id)
        assert [(lot.amount, lot.expires_on) for lot in lots] == [(120, date(2026, 6, 30))]
        assert get_balances(uow, tenant_id=tenant.id, member_id=mia.id).available == 120
        history = member_history(uow, tenant_id=tenant.id, member_id=mia.id)
        assert [(h.kind, h.points) for h in history] == [("opening", 120)]
        cem = find_member(uow, programme_id=programme_id, reference="email:cem@example.org")
        assert [lot.expires_on for lot in list_lots(uow, tenant_id=tenant.id, member_id=cem.id)]
        assert verify_ledger(uow, tenant_id=tenant.id).ok


def test_an_existing_member_is_updated_not_duplicated(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path, clock: FixedClock
) -> None:
    programme_id = programme(new_uow, tenant)
    first = write_csv(
        tmp_path / "first.csv",
        ["email", "name", "consent_email", "attributes"],
        [["mia@example.org", "Mia", "true", '{"shop": "berlin"}']],
    )
    run(new_uow, programme_id, ImportKind.MEMBERS, first)
    # when a second file names Mia by e-mail (written differently) with a card, a new name,
    # and takes back her e-mail consent
    clock.advance(timedelta(days=1))
    second = write_csv(
        tmp_path / "second.csv",
        ["email", "card", "name", "consent_email", "attributes", "status"],
        [[" Mia@Example.ORG", "C-100", "Mia Müller", "false", '{"vip": true}', "blocked"]],
    )
    job = run(new_uow, programme_id, ImportKind.MEMBERS, second)
    assert (job.rows_ok, job.rows_failed) == (1, 0)
    # then there is still one Mia, with everything the second file says
    assert count(new_uow, members, members.c.programme_id == programme_id) == 1
    with new_uow() as uow:
        mia = find_member(uow, programme_id=programme_id, reference="card:C100")
        assert (mia.name, mia.status, mia.attributes) == (
            "Mia Müller",
            "blocked",
            {"shop": "berlin", "vip": True},
        )
        assert mia.identifiers == {"email": "mia@example.org", "card": "C100"}
        assert [(c.granted, c.source) for c in consent_history(
            uow, tenant_id=tenant.id, member_id=mia.id
        )] == [(True, "import"), (False, "import")]  # fmt: skip
    # and identifiers that name two different members are refused
    write_csv(tmp_path / "bo.csv", ["email"], [["bo@example.org"]])
    run(new_uow, programme_id, ImportKind.MEMBERS, tmp_path / "bo.csv")
    clash = write_csv(tmp_path / "clash.csv", ["email", "card"], [["bo@example.org", "C100"]])
    job = run(new_uow, programme_id, ImportKind.MEMBERS, clash)
    [(line, column, reason)] = errors_of(new_uow, job)
    assert (line, column) == (2, "(row)")
    assert reason.startswith("the identifiers name different members")


def test_an_opening_balance_is_credited_once_per_member_and_expiry(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    header = ["external_id", "points", "points_expire_at"]
    rows = [["K-1", "200", "2026-12-31"], ["K-1", "50", ""]]  # two lots of one member
    run(new_uow, programme_id, ImportKind.MEMBERS, write_csv(tmp_path / "a.csv", header, rows))
    # when the migration runs again from a re-exported file (another file, same balances)
    again = write_csv(tmp_path / "b.csv", header, [*rows, ["K-1", "75", "2026-12-31"]])
    job = run(new_uow, programme_id, ImportKind.MEMBERS, again)
    # then nothing is credited twice, and a different amount for a lot is reported
    [(line, column, reason)] = errors_of(new_uow, job)
    assert (line, column) == (4, "points")
    assert "an opening balance of 200 points with this expiry was imported" in reason
    with new_uow() as uow:
        member = find_member(uow, programme_id=programme_id, reference="external:K-1")
        lots = list_lots(uow, tenant_id=tenant.id, member_id=member.id)
        assert sorted((lot.amount, lot.expires_on) for lot in lots) == [
            (50, None),
            (200, date(2026, 12, 31)),
        ]
        assert verify_ledger(uow, tenant_id=tenant.id).ok


# --- activities ------------------------------------------------------------------------------


def members_file(tmp_path: Path, n: int) -> Path:
    return write_csv(tmp_path / "members.csv", ["email"], [[f"m{i}@example.org"] for i in range(n)])


def purchases(n: int, members: int = 5, prefix: str = "r") -> list[list[Any]]:
    return [
        [
            "purchase",
            f"{prefix}-{i}",
            f"email:m{i % members}@example.org",
            f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00+01:00",
            "berlin",
            f"{5 + i % 20}.{i % 100:02d}",
            "",
            "",
            "",
            "",
        ]
        for i in range(n)
    ]


def test_activities_earn_under_the_rules_of_their_date_and_bad_rows_are_reported(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path, clock: FixedClock
) -> None:
    # given a programme that gave 1 point per euro until June 2025 and 2 points after
    clock.set(datetime(2025, 1, 1, tzinfo=UTC))
    programme_id = programme(new_uow, tenant)
    clock.set(datetime(2025, 6, 1, tzinfo=UTC))
    with new_uow() as uow:
        apply_programme(uow, tenant_id=tenant.id, document=document("import", per_euro=2))
    clock.set(datetime(2026, 1, 1, 12, tzinfo=UTC))
    run(new_uow, programme_id, ImportKind.MEMBERS, members_file(tmp_path, 2))
    lines = '[{"sku": "K1", "quantity": 2, "unit_price": "3.25"}]'
    m0, m1, ghost = "email:m0@example.org", "email:m1@example.org", "email:ghost@example.org"
    path = write_csv(
        tmp_path / "activities.csv",
        ACTIVITY_HEADER,
        [
            act("purchase", "r-1", m0, "2025-03-01 09:00", store="berlin", total="10.00"),
            act("", "r-2", m0, "2025-09-01T09:00:00Z", lines=lines),
            act("purchase", "r-3", ghost, "2025-09-01", total="5.00"),
            act("purchase", "r-4", "", "2025-09-02", total="4.00"),
            act("return", "x-1", "", "2025-09-03", purchase="r-2", amount="2.50"),
            act("purchase", "r-5", m1, "2031-01-01", total="5.00"),
            act("action", "a-1", m1, "2025-09-04", action="review"),
            act("purchase", "r-6", m1, "2025-09-05", store="mars", total="5.00"),
            act("purchase", "r-7", m1, "2025-09-05", total="1,50"),
            act("return", "x-2", "", "2025-09-06", purchase="r-404", amount="1.00"),
            act("purchase", "r-1", m0, "2025-03-01 09:00", store="berlin", total="10.00"),
            act("purchase", "r-8", m1, "2025-09-07", lines="[{}]"),
        ],
    )
    job = run(new_uow, programme_id, ImportKind.ACTIVITIES, path, batch_size=4)
    assert (job.rows_done, job.rows_ok, job.rows_failed) == (12, 6, 6)
    assert [(line, column) for line, column, _ in errors_of(new_uow, job)] == [
        (4, "member"),
        (7, "occurred_at"),
        (9, "store"),
        (10, "total"),
        (11, "purchase_external_id"),
        (13, "lines"),
    ]
    with new_uow() as uow:
        m0 = find_member(uow, programme_id=programme_id, reference="email:m0@example.org")
        m1 = find_member(uow, programme_id=programme_id, reference="email:m1@example.org")
        # then March earned 1 point per euro, September 2 (6.50 EUR → 13, 2.50 back → -5)
        earned = [(h.kind, h.points) for h in member_history(
            uow, tenant_id=tenant.id, member_id=m0.id
        )]  # fmt: skip
        assert earned == [("earn", 10), ("earn", 13), ("reverse", -5)]
        assert get_balances(uow, tenant_id=tenant.id, member_id=m1.id).available == 10
        assert verify_ledger(uow, tenant_id=tenant.id).ok
    # r-1 twice in the file is one purchase (the second a replay), the guest purchase is kept
    assert external_ids(new_uow, programme_id) == ["a-1", "r-1", "r-2", "r-4", "x-1"]


def test_a_dry_run_checks_every_row_and_writes_nothing(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    run(new_uow, programme_id, ImportKind.MEMBERS, members_file(tmp_path, 3))
    rows = purchases(25, members=3)
    rows[7][2] = "email:ghost@example.org"
    rows[20][5] = "-3"
    # a return of a purchase earlier in the file: each batch of a dry run is rolled back before
    # the next, yet the return counts as importable
    rows.append(act("return", "x-1", "", "2025-12-30", purchase="r-2", amount="1.00"))
    rows.append(act("return", "x-2", "", "2025-12-30", purchase="r-404", amount="1.00"))
    path = write_csv(tmp_path / "activities.csv", ACTIVITY_HEADER, rows)
    before = [count(new_uow, t) for t in (activities, transfers, outbox, import_jobs, members)]
    reported: list[RowError] = []
    result = dry_run_import(
        new_uow,
        programme_id=programme_id,
        kind=ImportKind.ACTIVITIES,
        path=path,
        on_error=reported.append,
        batch_size=10,
    )
    assert (result.rows_done, result.rows_ok, result.rows_failed) == (27, 24, 3)
    assert [(e.line, e.column) for e in reported] == [
        (9, "member"),
        (22, "total"),
        (28, "purchase_external_id"),
    ]
    after = [count(new_uow, t) for t in (activities, transfers, outbox, import_jobs, members)]
    assert after == before
    # and the members file dry run: nothing written either
    more = write_csv(tmp_path / "more.csv", ["email", "points"], [["new@example.org", "40"]])
    result = dry_run_import(
        new_uow,
        programme_id=programme_id,
        kind=ImportKind.MEMBERS,
        path=more,
        on_error=reported.append,
    )
    assert (result.rows_ok, result.rows_failed) == (1, 0)
    assert [count(new_uow, t) for t in (activities, transfers, outbox, import_jobs, members)] == (
        before
    )


class SimulatedCrash(Exception):
    pass


def test_a_crash_after_some_batches_resumes_with_no_row_lost_or_twice(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    run(new_uow, programme_id, ImportKind.MEMBERS, members_file(tmp_path, 5))
    rows = purchases(95)
    rows[33][2] = "email:ghost@example.org"  # one bad row, reported once
    path = write_csv(tmp_path / "activities.csv", ACTIVITY_HEADER, rows)
    batches: list[Progress] = []

    def crash_after_three(progress: Progress) -> None:
        batches.append(progress)
        if len(batches) == 3:
            raise SimulatedCrash

    # when the run dies after its third batch of 10
    with pytest.raises(SimulatedCrash):
        run(
            new_uow,
            programme_id,
            ImportKind.ACTIVITIES,
            path,
            batch_size=10,
            on_progress=crash_after_three,
        )
    # then exactly those 30 rows are in, and the job's checkpoint says so
    assert len(external_ids(new_uow, programme_id)) == 30
    with new_uow() as uow:
        job = uow.conn.execute(
            select(import_jobs).where(
                import_jobs.c.programme_id == programme_id, import_jobs.c.kind == "activities"
            )
        ).one()
    assert (job.status, job.rows_done, job.next_line) == ("running", 30, 32)
    # and a second crash, inside a transaction: a batch and its checkpoint go (or stay) together
    crashing = CrashingUow.factory(new_uow, on_commit=2)
    with pytest.raises(SimulatedCrash):
        run(crashing, programme_id, ImportKind.ACTIVITIES, path, batch_size=10)
    assert len(external_ids(new_uow, programme_id)) == 39  # 40 rows, r-33 is in the report
    # when it runs again, it resumes at the checkpoint and finishes
    done = run(new_uow, programme_id, ImportKind.ACTIVITIES, path, batch_size=10)
    assert (done.status, done.rows_done, done.rows_ok, done.rows_failed) == ("done", 95, 94, 1)
    ids = external_ids(new_uow, programme_id)
    assert ids == sorted(f"r-{i}" for i in range(95) if i != 33)
    assert [line for line, _, _ in errors_of(new_uow, done)] == [35]
    with new_uow() as uow:
        assert verify_ledger(uow, tenant_id=tenant.id).ok
    # and running the finished file again changes nothing at all
    before = [count(new_uow, t) for t in (activities, transfers, outbox)]
    again = run(new_uow, programme_id, ImportKind.ACTIVITIES, path, batch_size=10)
    assert (again.id, again.status, again.rows_done) == (done.id, "done", 95)
    assert [count(new_uow, t) for t in (activities, transfers, outbox)] == before


class CrashingUow(UnitOfWork):
    """A unit of work whose commit number ``on_commit`` (counted over the factory) dies before
    it reaches the database: a crash in the middle of a batch's transaction."""

    commits: list[int]
    on_commit: int

    @classmethod
    def factory(cls, new_uow: NewUow, *, on_commit: int) -> NewUow:
        commits: list[int] = []

        def make() -> UnitOfWork:
            proto = new_uow()
            uow = cls(proto.engine, proto.clock)
            uow.commits, uow.on_commit = commits, on_commit
            return uow

        return make

    def commit(self) -> None:
        self.commits.append(1)
        if len(self.commits) == self.on_commit:
            raise SimulatedCrash
        super().commit()


def test_two_runs_of_one_file_never_import_a_row_twice(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    run(new_uow, programme_id, ImportKind.MEMBERS, members_file(tmp_path, 5))
    path = write_csv(tmp_path / "activities.csv", ACTIVITY_HEADER, purchases(40))
    # given a run that is overtaken after its first batch by a second run of the same file
    second: list[ImportJob] = []

    def overtaken(progress: Progress) -> None:
        if not second:
            second.append(run(new_uow, programme_id, ImportKind.ACTIVITIES, path, batch_size=10))

    with pytest.raises(TreuError) as refused:
        run(
            new_uow, programme_id, ImportKind.ACTIVITIES, path, batch_size=10, on_progress=overtaken
        )
    # then the first run stops at its next checkpoint, and every row is in once
    assert refused.value.code is ErrorCode.IMPORT_IN_PROGRESS
    assert (second[0].status, second[0].rows_done) == ("done", 40)
    assert external_ids(new_uow, programme_id) == sorted(f"r-{i}" for i in range(40))
    with new_uow() as uow:
        assert verify_ledger(uow, tenant_id=tenant.id).ok


def test_a_record_that_is_not_csv_or_not_utf8_is_a_line_of_the_report(
    new_uow: NewUow, tenant: Tenant, tmp_path: Path
) -> None:
    programme_id = programme(new_uow, tenant)
    path = tmp_path / "members.csv"
    path.write_bytes(
        '\ufeffemail,name\r\na@example.org,"Anna\nMaria"\r\nb@example.org,B,extra\r\n\r\n'.encode()
        + b"c@example.org,\xff\r\n"
        + b"d@example.org,D\x00\r\n"
        + b'e@example.org,"E"x\r\n'
        + b"f@example.org,F\r\n"
    )
    job = run(new_uow, programme_id, ImportKind.MEMBERS, path)
    assert (job.rows_ok, job.rows_failed) == (2, 4)
    assert [(line, column) for line, column, _ in errors_of(new_uow, job)] == [
        (4, "(row)"),
        (6, "(row)"),
        (7, "(row)"),
        (8, "(row)"),
    ]


def test_a_file_with_a_header_the_import_cannot_use_is_refused_before_any_row(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "m.csv", ["emial", "name", "name"], [["a@example.org", "A", "A"]])
    with pytest.raises(TreuError) as refused:
        inspect_file(path, ImportKind.MEMBERS)
    assert refused.value.code is ErrorCode.INVALID_IMPORT_FILE
    assert "unknown column 'emial'" in str(refused.value)
    assert "column 'name' appears twice" in str(refused.value)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(TreuError, match="the file is empty"):
        inspect_file(empty, ImportKind.ACTIVITIES)
