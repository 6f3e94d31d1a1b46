"""The columnar analytics store on both databases: the nightly run writes it, the readers use
it while it is as fresh as the last nightly run and fall back to the database otherwise, and a
new version replaces the old one atomically.

The history is the hand-made one of test_analytics_kpis.py (January and February 2026 of a
café); the nightly run is the one of 1 March.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from test_analytics_kpis import History, at, build_history, kpis
from typer.testing import CliRunner

from treu.analytics import store as columnar
from treu.analytics.periods import PeriodUnit
from treu.analytics.service import (
    cohort_report,
    fresh_store,
    member_scores,
    programme_kpis,
    read_store,
    write_store,
)
from treu.cli.main import app
from treu.clock import FixedClock
from treu.errors import NotFound
from treu.jobs.nightly import run_nightly
from treu.programmes.service import Tenant
from treu.storage.uow import UnitOfWork

MARCH_1 = date(2026, 3, 1)


@pytest.fixture
def history(new_uow: Callable[[], UnitOfWork], clock: FixedClock, tenant: Tenant) -> History:
    return build_history(new_uow, clock, tenant)


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "analytics"
    monkeypatch.setenv("TREU_ANALYTICS_DIR", str(directory))
    return directory


def nightly(h: History, day: date = MARCH_1) -> dict[str, int]:
    results = run_nightly(h.new_uow, day=day, programme_id=h.pid)
    return {r.step: r.processed for r in results}


def rows(report: object) -> list[dict[str, object]]:
    return [s.as_row() for s in report.all_sets()]  # type: ignore[attr-defined]


def test_without_a_store_directory_the_nightly_step_does_nothing(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TREU_ANALYTICS_DIR", raising=False)
    steps = nightly(history)
    assert steps["analytics_store"] == 0
    assert kpis(history).source == "database"


def test_the_nightly_run_writes_the_store_last_and_the_readers_use_it(
    history: History, store_dir: Path
) -> None:
    # given a store directory, when the nightly run of 1 March runs
    steps = nightly(history)
    # then its last step copied the programme's 8 purchases and 1 return into the store
    assert list(steps)[-1] == "analytics_store"
    assert steps["analytics_store"] == 9
    with history.new_uow() as uow:
        info = fresh_store(uow, history.pid)
    assert info is not None
    assert info.as_of == at(2026, 3, 1, 12)  # the clock of the run
    assert (info.rows["activities"], info.rows["members"]) == (9, 3)
    # and the KPIs come from it, equal to those read from the database, and say so
    from_store = kpis(history, split="store")
    from_db = kpis(history, split="store", source="database")
    assert (from_store.source, from_store.as_of) == ("store", info.as_of)
    assert (from_db.source, from_db.as_of) == ("database", None)
    assert rows(from_store) == rows(from_db)
    # a range ending before some of the ledger's entries counts only what came before it
    january = kpis(history, end=date(2026, 2, 1))
    assert january.source == "store"
    assert rows(january) == rows(kpis(history, end=date(2026, 2, 1), source="database"))
    # cohorts and member scores too
    with history.new_uow() as uow:
        span = {"programme_id": history.pid, "first": date(2026, 1, 1), "end": MARCH_1}
        stored, read = cohort_report(uow, **span), cohort_report(uow, **span, source="database")
        assert (stored.source, read.source) == ("store", "database")
        assert stored.series() == read.series()
        by_first = cohort_report(uow, **span, basis="first_purchase")
        assert (
            by_first.series()
            == cohort_report(uow, **span, basis="first_purchase", source="database").series()
        )
        scores = member_scores(uow, programme_id=history.pid)
        scored = member_scores(uow, programme_id=history.pid, source="database")
    assert (scores.source, scored.source) == ("store", "database")
    assert scores.frame.equals(scored.frame)


def test_a_store_older_than_the_last_nightly_run_is_not_used(
    history: History, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the store of 1 March
    nightly(history)
    # when the night of 2 March runs without writing it (the setting was off that night)
    history.clock.set(at(2026, 3, 2, 12))
    monkeypatch.delenv("TREU_ANALYTICS_DIR")
    nightly(history, date(2026, 3, 2))
    monkeypatch.setenv("TREU_ANALYTICS_DIR", str(store_dir))
    # then the store is stale: the readers go back to the database
    with history.new_uow() as uow:
        assert fresh_store(uow, history.pid) is None
        assert columnar.current(store_dir, history.pid) is not None
        with pytest.raises(NotFound):
            programme_kpis(
                uow,
                programme_id=history.pid,
                unit=PeriodUnit.MONTH,
                first=date(2026, 1, 1),
                end=MARCH_1,
                source="store",
            )
    assert kpis(history).source == "database"
    # and the night of 3 March, with the setting on again, makes it fresh
    history.clock.set(at(2026, 3, 3, 12))
    nightly(history, date(2026, 3, 3))
    assert kpis(history).source == "store"


def test_a_missing_or_broken_store_falls_back_to_the_database(
    history: History, store_dir: Path
) -> None:
    assert kpis(history).source == "database"  # configured, never written
    nightly(history)
    (store_dir / history.pid / columnar.CURRENT).write_text("no-such-version")
    assert kpis(history).source == "database"
    with pytest.raises(NotFound):
        read_store(store_dir, history.pid)


def test_a_new_version_replaces_the_old_one_atomically(history: History, tmp_path: Path) -> None:
    directory = tmp_path / "store"
    with history.new_uow() as uow:
        first = write_store(uow, programme_id=history.pid, directory=directory)
    # a reader opened the first version; then a purchase and a second write
    history.buy(None, "7.00", "laden", at(2026, 3, 1, 13))
    with history.new_uow() as uow:
        second = write_store(uow, programme_id=history.pid, directory=directory)
    assert columnar.current(directory, history.pid) == second
    assert (first.rows["activities"], second.rows["activities"]) == (9, 10)
    # the reader of the first version still reads it whole
    assert first.read("activities").height == 9
    # a third write removes the first version, keeps the second for its readers
    with history.new_uow() as uow:
        third = write_store(uow, programme_id=history.pid, directory=directory)
    versions = {p.name for p in (directory / history.pid).iterdir() if p.is_dir()}
    assert versions == {second.path.name, third.path.name}
    # a write that fails half-way leaves the current version as it was and nothing half-written
    frames = {name: third.read(name) for name in columnar.TABLES}
    del frames["referrals"]  # the last table: the others are already written when it fails
    with pytest.raises(KeyError):
        columnar.write(directory, history.pid, frames, as_of=third.as_of)
    assert columnar.current(directory, history.pid) == third
    assert sorted(p.name for p in (directory / history.pid).iterdir()) == sorted(
        [columnar.CURRENT, second.path.name, third.path.name]
    )
    assert read_store(directory, history.pid).activities.height == 10


def test_treu_kpi_names_its_source_under_the_table(
    history: History, store_dir: Path, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = engine.url.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    monkeypatch.setenv("TREU_DATABASE_URL", url)
    args = ["kpi", "-p", "cafe", "--tenant", history.tenant.key, "--from", "2026-01-01"]
    args += ["--to", "2026-03-01"]
    before = CliRunner().invoke(app, args)
    assert before.exit_code == 0, before.output
    assert "source: database" in before.output
    nightly(history)
    after = CliRunner().invoke(app, args)
    assert after.exit_code == 0, after.output
    assert "source: columnar store as of 2026-03-01 11:00 UTC" in after.output
    forced = CliRunner().invoke(app, [*args, "--source", "database"])
    assert "source: database" in forced.output
    # the files for BI tools carry no such line
    csv = CliRunner().invoke(app, [*args, "--format", "csv"])
    assert "source:" not in csv.output
    assert pl.read_csv(csv.output.encode())["purchases"].to_list() == [5, 3]
