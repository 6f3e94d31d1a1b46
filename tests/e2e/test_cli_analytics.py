"""``treu kpi`` and ``treu simulate`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from sqlalchemy import Engine
from typer.testing import CliRunner

from treu.cli.main import app

EXAMPLES = Path(__file__).parents[2] / "examples"
runner = CliRunner()


@pytest.fixture
def treu(engine: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TREU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    tenant = f"cli-{uuid.uuid4().hex[:8]}"

    def invoke(*args: str, ok: bool = True) -> str:
        result = runner.invoke(app, [*args, "--tenant", tenant])
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    return invoke


def buy(treu, tmp_path: Path, n: int, member: str | None, total: str, when: str) -> None:  # type: ignore[no-untyped-def]
    body = tmp_path / f"bon-{n}.json"
    body.write_text(
        json.dumps(
            {"external_id": f"bon-{n}", "currency": "EUR", "total": total, "occurred_at": when}
        )
    )
    args = ["activity", "record", "-p", "kiezcafe", "--file", str(body)]
    treu(*args, *(["--member", member] if member else []))


def test_the_owner_reads_the_kpis_exports_them_and_tries_a_change(treu, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # given Kiezcafé with Mia, who bought twice in March 2026, and a guest
    treu("programme", "apply", str(EXAMPLES / "kiezcafe.yaml"))
    treu("members", "add", "-p", "kiezcafe", "--email", "mia@example.org")
    buy(treu, tmp_path, 1, "email:mia@example.org", "12.00", "2026-03-02T09:00:00+01:00")
    buy(treu, tmp_path, 2, "email:mia@example.org", "8.00", "2026-03-20T09:00:00+01:00")
    buy(treu, tmp_path, 3, None, "4.00", "2026-03-21T09:00:00+01:00")
    # when the owner asks for March and April
    shown = treu("kpi", "-p", "kiezcafe", "--from", "2026-03-01", "--to", "2026-05-01")
    # then a readable table: one column per month, a row per KPI
    assert "2026-03" in shown
    assert "2026-04" in shown
    assert "enrolment rate" in shown
    assert "66.7 %" in shown
    assert "aov members" in shown
    assert "10.00" in shown
    # and the same as CSV, for a spreadsheet
    out = treu(
        "kpi", "-p", "kiezcafe", "--from", "2026-03-01", "--to", "2026-04-01", "--format", "csv"
    )
    (march,) = list(csv.DictReader(io.StringIO(out)))
    assert (march["period"], march["purchases"], march["revenue"]) == ("2026-03", "3", "24.00")
    # Parquet needs a file
    assert "needs --output" in treu("kpi", "-p", "kiezcafe", "--format", "parquet", ok=False)
    target = tmp_path / "kpis.parquet"
    treu(
        "kpi",
        "-p",
        "kiezcafe",
        "--from",
        "2026-03-01",
        "--to",
        "2026-04-01",
        "--format",
        "parquet",
        "--output",
        str(target),
    )
    assert pl.read_parquet(target)["member_purchases"].to_list() == [2]
    # cohorts and RFM segments
    assert "Retention" in treu("kpi", "-p", "kiezcafe", "--view", "cohorts")
    assert "RFM segments" in treu("kpi", "-p", "kiezcafe", "--view", "rfm")
    # and "what if every euro earned 2 points?", over the time the points were posted too
    proposal = yaml.safe_load((EXAMPLES / "kiezcafe.yaml").read_text())
    proposal["rules"][0]["effect"]["points"] = 2
    proposed = tmp_path / "neu.yaml"
    proposed.write_text(yaml.safe_dump(proposal, allow_unicode=True))
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    result = treu(
        "simulate", "--programme", str(proposed), "--from", "2026-03-01", "--to", tomorrow
    )
    assert "points issued" in result
    assert "+20" in result  # 20 points really, 40 proposed
    assert "2 of 2 activities" in result


def test_bad_kpi_options_are_one_clear_line(treu) -> None:  # type: ignore[no-untyped-def]
    treu("programme", "apply", str(EXAMPLES / "kiezcafe.yaml"))
    assert "--view" in treu("kpi", "-p", "kiezcafe", "--view", "pie", ok=False)
    assert "store_not_found" in treu("kpi", "-p", "kiezcafe", "--store", "mond", ok=False)
    assert "validation_error" in treu(
        "kpi", "-p", "kiezcafe", "--from", "2026-05-01", "--to", "2026-01-01", ok=False
    )
