"""``treu import`` and ``treu export`` end to end, and an import killed with SIGKILL.

The kill test runs the real command in a subprocess on a generated file, kills it with
``kill -9`` at random points (mid-batch too), checks after each kill that the job's checkpoint
agrees with the data, runs it again to the end, and then checks every row is in once: the
purchases, their points, the error report. Its size is ``TREU_IMPORT_KILL_ROWS`` (default
1,000, so the suite stays fast); see docs/import-export.md for the 1-million-row run by hand.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from treu.activities.tables import activities
from treu.cli.main import app
from treu.imports.tables import import_errors, import_jobs
from treu.ledger.tables import transfers
from treu.ledger.verify import verify_ledger
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.uow import UnitOfWork

runner = CliRunner()
ROWS = int(os.environ.get("TREU_IMPORT_KILL_ROWS", "1000"))
DOCUMENT: dict[str, Any] = {
    "key": "bulk",
    "name": "Bulk",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "country": "DE",
    "stores": [{"key": "berlin", "name": "Berlin"}],
    "rules": [
        {
            "key": "base",
            "name": "1 per euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
}


@pytest.fixture
def world(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(tenant key, database URL) with the Bulk programme."""
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TREU_DATABASE_URL", url)
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    with UnitOfWork(engine) as uow:
        tenant_id = create_tenant(uow, key=tenant).id
    with UnitOfWork(engine) as uow:
        apply_programme(uow, tenant_id=tenant_id, document=DOCUMENT)
    return tenant, url


def treu(tenant: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--tenant", tenant])
    assert result.exit_code == code, result.output
    return result.output


def write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def test_an_import_reports_bad_rows_next_to_the_file_and_a_dry_run_writes_nothing(
    world: tuple[str, str], tmp_path: Path, engine: Engine
) -> None:
    tenant, _ = world
    members = write(
        tmp_path / "members.csv",
        ["email", "name", "points"],
        [["mia@example.org", "Mia", "50"], ["kaputt", "X", ""], ["bo@example.org", "Bo", "x"]],
    )
    # a dry run says what would fail, writes the report, and nothing else
    out = treu(tenant, "import", "members", str(members), "-p", "bulk", "--dry-run", code=3)
    assert "3 rows, 1 would be imported, 2 would fail; nothing was written" in out
    report = tmp_path / "members.errors.csv"
    assert report.read_text().splitlines()[0] == "line,column,reason"
    assert [line.split(",")[:2] for line in report.read_text().splitlines()[1:]] == [
        ["3", "email"],
        ["4", "points"],
    ]
    assert "no member" in treu(
        tenant, "members", "find", "email:mia@example.org", "-p", "bulk", code=1
    )
    # the real run imports the good row and writes the same report
    out = treu(tenant, "import", "members", str(members), "-p", "bulk", code=3)
    assert "3 rows, 1 imported, 2 failed" in out
    assert len(report.read_text().splitlines()) == 3
    assert "available 50" in treu(tenant, "members", "show", "email:mia@example.org", "-p", "bulk")
    # running it again does nothing
    assert "was imported before" in treu(
        tenant, "import", "members", str(members), "-p", "bulk", code=3
    )
    # a clean file leaves no report behind (and removes a stale one)
    clean = write(tmp_path / "members.csv", ["email"], [["cem@example.org"]])
    assert "1 imported, 0 failed" in treu(tenant, "import", "members", str(clean), "-p", "bulk")
    assert not report.exists()
    # and the export lists both members, as CSV on stdout
    exported = treu(tenant, "export", "members", "-p", "bulk")
    assert exported.splitlines()[0].startswith("member_id,email,phone,card,external_id,name")
    assert sorted(line.split(",")[1] for line in exported.splitlines()[1:]) == [
        "cem@example.org",
        "mia@example.org",
    ]
    out_file = tmp_path / "lots.jsonl"
    treu(tenant, "export", "lots", "-p", "bulk", "--format", "jsonl", "-o", str(out_file))
    assert '"amount": 50' in out_file.read_text()


def test_a_header_the_import_cannot_use_is_one_line_of_error(
    world: tuple[str, str], tmp_path: Path
) -> None:
    tenant, _ = world
    bad = write(tmp_path / "a.csv", ["external_id", "totl"], [["r-1", "5"]])
    out = treu(tenant, "import", "activities", str(bad), "-p", "bulk", code=1)
    assert "invalid_import_file: the header of a activities file: unknown column 'totl'" in out


# --- kill -9 ---------------------------------------------------------------------------------


def generate(path: Path, rows: int, members: int, seed: int) -> tuple[set[str], int, list[int]]:
    """A purchases file; returns (external ids that import, their points, lines that fail)."""
    rng = random.Random(seed)
    good: set[str] = set()
    points = 0
    bad_lines = []
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["external_id", "member", "occurred_at", "store", "total"])
        for i in range(rows):
            total = Decimal(rng.randrange(100, 5000)) / 100
            member = f"email:m{rng.randrange(members)}@example.org"
            if i % 397 == 5:  # now and then a row of the old system that names no member
                member, _ = "email:gone@example.org", bad_lines.append(i + 2)
            else:
                good.add(f"k-{i}")
                points += int(total)  # 1 point per whole euro
            day = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{8 + i % 12:02d}:00:00+01:00"
            out.writerow([f"k-{i}", member, day, "berlin", f"{total:.2f}"])
    return good, points, bad_lines


def test_an_import_killed_with_sigkill_resumes_with_no_row_lost_or_twice(
    world: tuple[str, str], tmp_path: Path, engine: Engine
) -> None:
    tenant, url = world
    members = write(tmp_path / "members.csv", ["email"], [[f"m{i}@example.org"] for i in range(50)])
    treu(tenant, "import", "members", str(members), "-p", "bulk")
    path = tmp_path / "purchases.csv"
    seed = random.randrange(1_000_000)
    good, points, bad_lines = generate(path, ROWS, 50, seed)
    command = [sys.executable, "-m", "treu.cli.main", "import", "activities", str(path)]
    command += ["-p", "bulk", "--tenant", tenant, "--batch-size", str(max(50, ROWS // 20))]
    env = {**os.environ, "TREU_DATABASE_URL": url}
    rng = random.Random(seed)
    job = checkpoint(engine, tenant)
    kills = 0
    for target in sorted(rng.sample(range(ROWS // 10, ROWS - ROWS // 10), 3)):
        log = tmp_path / f"run-{kills}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        # wait until the run is past the target row, then a little more: mid-batch
        if not wait_for(lambda t=target: rows_done(engine, tenant) >= t, process):  # type: ignore[misc]
            assert process.returncode == 3, log.read_text()  # finished (with the bad rows)
            break  # the run finished before the target: nothing left to kill
        time.sleep(rng.uniform(0, 0.2))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        kills += 1
        job = checkpoint(engine, tenant)
        # the checkpoint never disagrees with the data: every row before it is in, none after
        assert job["rows_ok"] == recorded(engine, tenant), f"after kill {kills} (seed {seed})"
        assert job["errors"] == job["rows_failed"]
    assert kills >= 1, f"the import never ran long enough to be killed (seed {seed})"
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert finished.returncode == 3, finished.stdout + finished.stderr  # done, rows in the report
    # every row once: the purchases, their points, the report
    job = checkpoint(engine, tenant)
    assert (job["status"], job["rows_done"], job["rows_failed"]) == ("done", ROWS, len(bad_lines))
    with UnitOfWork(engine) as uow:
        programme = programme_id(uow, tenant)
        ids = uow.conn.execute(
            select(activities.c.external_id).where(activities.c.programme_id == programme)
        ).scalars()
        assert sorted(ids) == sorted(good)
        earned = uow.conn.execute(
            select(func.sum(transfers.c.amount)).where(
                transfers.c.programme_id == programme, transfers.c.kind == "earn"
            )
        ).scalar()
        assert earned == points
        lines = uow.conn.execute(
            select(import_errors.c.line).where(import_errors.c.job_id == job["id"])
        ).scalars()
        assert sorted(lines) == bad_lines
        assert verify_ledger(uow, tenant_id=job["tenant_id"]).ok
    report = (tmp_path / "purchases.errors.csv").read_text().splitlines()
    assert len(report) == len(bad_lines) + 1


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> bool:
    """True once ``condition`` holds while ``process`` runs; False if it ended first."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if condition():
            return True
        time.sleep(0.02)
    raise AssertionError("the import made no progress for 10 minutes")


def programme_id(uow: UnitOfWork, tenant: str) -> str:
    from treu.programmes.service import find_programme_id, get_tenant

    return find_programme_id(uow, tenant_id=get_tenant(uow, tenant).id, key="bulk")


def checkpoint(engine: Engine, tenant: str) -> dict[str, Any]:
    with UnitOfWork(engine, readonly=True) as uow:
        programme = programme_id(uow, tenant)
        row = uow.conn.execute(
            select(import_jobs).where(
                import_jobs.c.programme_id == programme, import_jobs.c.kind == "activities"
            )
        ).first()
        if row is None:
            return {"rows_ok": 0, "rows_failed": 0, "errors": 0}
        errors = uow.conn.execute(
            select(func.count()).where(import_errors.c.job_id == row.id)
        ).scalar()
        return {**row._asdict(), "errors": errors}


def rows_done(engine: Engine, tenant: str) -> int:
    return int(checkpoint(engine, tenant).get("rows_done", 0))


def recorded(engine: Engine, tenant: str) -> int:
    with UnitOfWork(engine, readonly=True) as uow:
        programme = programme_id(uow, tenant)
        return int(
            uow.conn.execute(
                select(func.count()).where(activities.c.programme_id == programme)
            ).scalar_one()
        )
