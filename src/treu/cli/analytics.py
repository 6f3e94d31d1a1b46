"""``treu kpi`` and ``treu simulate``: the analytics in the terminal (thin: parse, call, print).

Registered on the ``treu`` app by ``treu.cli.main`` (imported at its end, so the shared helpers
exist when this module uses them).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import polars as pl
import typer
from rich.table import Table

from treu.analytics.export import encode, kpi_frame, scores_frame
from treu.analytics.model import DASHBOARD, KPIS, KpiSet
from treu.analytics.periods import PeriodUnit, default_range
from treu.analytics.service import (
    Source,
    WhatIf,
    cohort_report,
    member_scores,
    programme_kpis,
    simulate_programme,
)
from treu.cli.main import Ctx, ProgrammeOpt, TenantOpt, _date, _load_file, app, console, fail, run
from treu.programmes.model import parse_document
from treu.programmes.service import find_programme_id, get_tenant, load_programme


@app.command("kpi")
def kpi(
    programme: ProgrammeOpt,
    period: Annotated[PeriodUnit, typer.Option(help="day, week, month, quarter or year")] = (
        PeriodUnit.MONTH
    ),
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Day after the last")] = None,
    store: Annotated[str | None, typer.Option(help="This store only")] = None,
    by: Annotated[str | None, typer.Option(help="Also per store, tier or segment")] = None,
    view: Annotated[str, typer.Option(help="kpis, cohorts (by month) or rfm (members)")] = "kpis",
    every: Annotated[bool, typer.Option("--all", help="Every KPI, not only the dashboard")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or parquet")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write to this file")] = None,
    source: Annotated[
        str,
        typer.Option(
            help="auto (the columnar store when as fresh as the last nightly run), database "
            "or store"
        ),
    ] = "auto",
    tenant: TenantOpt = "default",
) -> None:
    """The programme's KPIs per period (default: the last 12 months), cohorts or RFM scores."""
    if view not in ("kpis", "cohorts", "rfm"):
        fail(f"validation_error: --view {view!r}: choose kpis, cohorts or rfm")
    if fmt not in ("table", "csv", "json", "parquet"):
        fail(f"validation_error: --format {fmt!r}: choose table, csv, json or parquet")
    if fmt == "parquet" and output is None:
        fail("validation_error: --format parquet needs --output FILE")
    if by not in (None, "store", "tier", "segment"):
        fail(f"validation_error: --by {by!r}: choose store, tier or segment")
    if source not in ("auto", "database", "store"):
        fail(f"validation_error: --source {source!r}: choose auto, database or store")
    chosen: Source = source  # type: ignore[assignment]

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        with ctx.uow(readonly=True) as uow:
            today = load_programme(uow, programme_id).local_date(uow.now())
            unit = PeriodUnit.MONTH if view == "cohorts" else period
            first, stop = default_range(unit, today)
            first = _date(start) if start else first
            stop = _date(end) if end else stop
            if view == "kpis":
                report = programme_kpis(
                    uow,
                    programme_id=programme_id,
                    unit=period,
                    first=first,
                    end=stop,
                    split=by,  # type: ignore[arg-type]
                    store=store,
                    source=chosen,
                )
                sets = report.all_sets()
                if fmt == "table":
                    _kpi_tables(report.programme_sets, report.splits, every)
                    _source_line(report.source, report.as_of)
                else:
                    _emit(kpi_frame(sets), fmt, output)  # type: ignore[arg-type]
            elif view == "cohorts":
                table = cohort_report(
                    uow, programme_id=programme_id, first=first, end=stop, source=chosen
                )
                if fmt == "table":
                    _cohort_table(table.series())
                    _source_line(table.source, table.as_of)
                else:
                    _emit(pl.DataFrame(table.series()), fmt, output)  # type: ignore[arg-type]
            else:
                scores = member_scores(uow, programme_id=programme_id, source=chosen)
                frame = scores_frame(scores.frame, scores.currency)
                if fmt == "table":
                    counts = frame.group_by("segment").len().sort("len", descending=True)
                    grid = Table("segment", "members", title="RFM segments")
                    for segment, n in counts.iter_rows():
                        grid.add_row(str(segment), str(n))
                    console.print(grid)
                    _source_line(scores.source, scores.as_of)
                else:
                    _emit(frame, fmt, output)  # type: ignore[arg-type]

    run(go)


def _source_line(source: str, as_of: datetime | None) -> None:
    if as_of is None:
        console.print(f"source: {source}", highlight=False)
    else:
        stamp = as_of.strftime("%Y-%m-%d %H:%M UTC")
        console.print(f"source: columnar store as of {stamp}", highlight=False)


def _kpi_tables(programme_sets: list[KpiSet], splits: dict[str, list[KpiSet]], every: bool) -> None:
    names = list(KPIS) if every else list(DASHBOARD)
    for scope, sets in [("programme", programme_sets), *splits.items()]:
        if not sets:
            continue
        title = f"{scope} · {sets[0].currency}" if scope == "programme" else scope
        table = Table("KPI", *(s.period for s in sets), title=title)
        for name in names:
            table.add_row(name.replace("_", " "), *(s.display(name) for s in sets))
        console.print(table)


def _cohort_table(series: list[dict[str, object]]) -> None:
    offsets = max((int(str(p["offset"])) for p in series), default=-1) + 1
    table = Table("cohort", "members", *(f"+{k}" for k in range(offsets)), title="Retention")
    rows: dict[str, list[str]] = {}
    for point in series:
        row = rows.setdefault(str(point["cohort"]), [str(point["members"])])
        rate = point["rate"]
        row.append("–" if rate is None else f"{float(str(rate)) * 100:.1f} %")
    for cohort, cells in rows.items():
        table.add_row(cohort, *cells)
    console.print(table)


def _emit(frame: pl.DataFrame, fmt: Literal["csv", "json", "parquet"], output: Path | None) -> None:
    if fmt == "json":
        data = json.dumps(frame.to_dicts(), indent=2, default=str).encode()
    else:
        data = encode(frame, fmt)
    if output is None:
        sys.stdout.write(data.decode())
        return
    output.write_bytes(data)
    console.print(f"wrote {frame.height} rows to {output}")


@app.command("simulate")
def simulate(
    programme: Annotated[
        Path, typer.Option("--programme", help="The proposed programme document (YAML/JSON)")
    ],
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="Day after the last")],
    tenant: TenantOpt = "default",
) -> None:
    """Replay the period under a proposed document (its key names the programme) and compare
    with what happened. Writes nothing."""

    def go(ctx: Ctx) -> None:
        data = _load_file(programme, code="invalid_programme")
        proposal = parse_document(data)
        with ctx.uow(readonly=True) as uow:
            tenant_id = get_tenant(uow, tenant).id
            programme_id = find_programme_id(uow, tenant_id=tenant_id, key=proposal.key)
            result = simulate_programme(
                uow,
                programme_id=programme_id,
                document=proposal,
                first=_date(start),
                end=_date(end),
            )
        _print_simulation(result)

    run(go)


def _print_simulation(w: WhatIf) -> None:
    a, p = w.actual, w.proposed
    table = Table(
        "",
        "actual",
        "proposed",
        "difference",
        title=f"{w.programme}: {w.first} … {w.end} ({w.changed} of {w.activities} activities"
        " earn differently)",
    )
    rows: list[tuple[str, object, object]] = [
        ("points issued", a.points_issued, p.points_issued),
        ("points taken back", a.points_taken_back, p.points_taken_back),
        ("points redeemed", a.points_redeemed, p.points_redeemed),
        ("points expired", a.points_expired, p.points_expired),
        ("outstanding points", a.outstanding_points, p.outstanding_points),
        (f"liability ({w.currency})", a.liability, p.liability),
        (f"cost ({w.currency})", a.cost, p.cost),
    ]
    for tier in sorted(set(a.tiers) | set(p.tiers)):
        rows.append((f"tier {tier}", a.tiers.get(tier, 0), p.tiers.get(tier, 0)))
    for label, before, after in rows:
        diff = after - before  # type: ignore[operator]
        table.add_row(label, str(before), str(after), f"{diff:+}")
    console.print(table)
