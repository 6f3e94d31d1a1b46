"""Import benchmark: a CSV file of purchases through ``treu import`` against the raw-insert floor.

Run from the repository root::

    .venv/bin/python bench/import.py --quick          # well under a minute
    .venv/bin/python bench/import.py                  # 20,000 purchases per backend
    .venv/bin/python bench/import.py --rows 1000000   # the issue's million (hours: see below)

Each backend gets a fresh database (a SQLite file in a temporary directory, a PostgreSQL schema
``bench_<random>`` dropped at the end), migrated, with the Kiezcafé programme applied and M
members imported from a members file. Then a file of N purchases (1–3 lines each, a category,
prices as decimal text, dates spread over the last year) is generated and imported the way
``treu import activities FILE`` does it: SHA-256 of the file, the job, then segments of 1,000
rows per transaction through ``record_purchases`` with the checkpoint in the same transaction.
The rate counts everything from opening the file to the job marked done.

The floor, measured in the same run with the raw drivers, is the batched raw insert of the same
number of rows: one ledger-like row per purchase with a time-ordered key plus the balance upsert,
1,000 per transaction (sqlite3 ``executemany``; psycopg 3 ``COPY`` plus one aggregated upsert).
Absolute numbers drift between runs and machines, so the result is the ratio import / floor. The
last line is machine-readable::

    RESULT import sqlite_rows_per_s=… sqlite_ratio=… pg_rows_per_s=… pg_ratio=…
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import yaml
from sqlalchemy import Engine

from earn import log, pg_schema, ratio
from treu.ids import new_id
from treu.imports.model import ImportKind
from treu.imports.reader import inspect_file
from treu.imports.service import BATCH_SIZE, open_import, run_import, transactions
from treu.ledger.verify import verify_ledger
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
PROGRAMME = ROOT / "examples" / "kiezcafe.yaml"
FLOOR_BATCH = 1_000
CATEGORIES = ["Kaffee", "Kuchen", "Frühstück", "Getränke", "Snacks", "Merch", "Bohnen"]


@dataclass(frozen=True)
class Sizes:
    members: int
    rows: int
    floor_min: int  # the floor runs at least this many rows (it is fast)
    rounds: int


QUICK = Sizes(members=200, rows=1_000, floor_min=20_000, rounds=3)
FULL = Sizes(members=5_000, rows=20_000, floor_min=100_000, rounds=3)


# --- synthetic files -------------------------------------------------------------------------


def email(i: int) -> str:
    return f"member{i}@bench.example.org"


def members_file(path: Path, members: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "name", "consent_email"])
        for i in range(members):
            out.writerow([email(i), f"Member {i}", "true" if i % 3 else "false"])
    return path


def purchases_file(path: Path, rows: int, members: int, seed: int) -> Path:
    """N purchases written as a till export would be: one row each, the lines as JSON."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=365)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["external_id", "member", "occurred_at", "store", "channel", "lines"])
        for i in range(rows):
            lines = [
                {
                    "sku": f"SKU-{rng.randrange(200)}",
                    "category": rng.choice(CATEGORIES),
                    "quantity": rng.choice((1, 1, 1, 2, 3)),
                    "unit_price": f"{rng.randrange(50, 2500) / 100:.2f}",
                }
                for _ in range(rng.randint(1, 3))
            ]
            at = start + timedelta(seconds=rng.randrange(365 * 86_400))
            out.writerow(
                [
                    f"bench-{i}",
                    f"email:{email(rng.randrange(members))}",
                    at.isoformat(timespec="seconds"),
                    "kastanienallee",
                    "pos",
                    json.dumps(lines),
                ]
            )
    return path


# --- the engine --------------------------------------------------------------------------------


@dataclass
class EngineRun:
    members_per_s: float
    rows_per_s: float
    rows_ok: int
    rows_failed: int
    ledger_ok: bool
    problems: dict[str, list[str]]
    transfers: int


def timed_import(
    engine: Engine, programme_id: str, kind: ImportKind, path: Path
) -> tuple[float, int, int]:
    new_uow = lambda: UnitOfWork(engine)  # noqa: E731
    started = time.perf_counter()
    info = inspect_file(path, kind)
    with new_uow() as uow:
        job = open_import(uow, programme_id=programme_id, kind=kind, file=info, source="bench")
    job = run_import(transactions(new_uow), job_id=job.id, path=path, batch_size=BATCH_SIZE)
    elapsed = time.perf_counter() - started
    return job.rows_done / elapsed, job.rows_ok, job.rows_failed


def engine_run(engine: Engine, sizes: Sizes, seed: int, label: str, folder: Path) -> EngineRun:
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        tenant = create_tenant(uow, key="bench")
    with UnitOfWork(engine) as uow:
        document = yaml.safe_load(PROGRAMME.read_text())
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    members = members_file(folder / f"{label}-members.csv", sizes.members)
    members_per_s, _, failed = timed_import(engine, programme_id, ImportKind.MEMBERS, members)
    log(f"  {label}: {sizes.members:,} members imported, {members_per_s:,.0f}/s ({failed} failed)")
    path = purchases_file(folder / f"{label}-purchases.csv", sizes.rows, sizes.members, seed)
    log(f"  {label}: {sizes.rows:,} purchases, {path.stat().st_size / 1e6:.1f} MB of CSV")
    rows_per_s, ok, failed = timed_import(engine, programme_id, ImportKind.ACTIVITIES, path)
    log(f"  {label}: purchases imported, {rows_per_s:,.0f} rows/s ({failed} failed)")
    with UnitOfWork(engine) as uow:
        report = verify_ledger(uow, tenant_id=tenant.id)
    return EngineRun(
        members_per_s, rows_per_s, ok, failed, report.ok, report.problems, report.transfers
    )


# --- the floor: raw drivers -------------------------------------------------------------------


Row = tuple[str, str, int]


def floor_rows(rng: random.Random, count: int, members: int) -> list[Row]:
    return [
        (new_id("transfer"), f"acc_{rng.randrange(members)}", rng.randint(1, 100))
        for _ in range(count)
    ]


def sqlite_floor(path: Path, sizes: Sizes, seed: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE ledger (id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
        " amount INTEGER NOT NULL, posted_at TEXT NOT NULL)"
    )
    conn.execute("CREATE TABLE balances (account_id TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
    insert = "INSERT INTO ledger VALUES (?, ?, ?, ?)"
    upsert = (
        "INSERT INTO balances VALUES (?, ?)"
        " ON CONFLICT (account_id) DO UPDATE SET balance = balance + excluded.balance"
    )

    def batched(rows: list[Row]) -> None:
        for start in range(0, len(rows), FLOOR_BATCH):
            chunk = rows[start : start + FLOOR_BATCH]
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, [(k, a, n, now) for k, a, n in chunk])
            conn.executemany(upsert, [(a, n) for _, a, n in chunk])
            conn.execute("COMMIT")

    try:
        return _median_rate(batched, random.Random(seed), sizes)
    finally:
        conn.close()


def pg_floor(conninfo: str, sizes: Sizes, seed: int) -> float:
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE floor_ledger (id text PRIMARY KEY, account_id text NOT NULL,"
            " amount bigint NOT NULL, posted_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE floor_balances (account_id text PRIMARY KEY, balance bigint NOT NULL)"
        )
        conn.commit()
        upsert = (
            "INSERT INTO floor_balances SELECT * FROM unnest(%s::text[], %s::bigint[])"
            " ON CONFLICT (account_id)"
            " DO UPDATE SET balance = floor_balances.balance + excluded.balance"
        )

        def batched(rows: list[Row]) -> None:
            with conn.cursor() as cur:
                for start in range(0, len(rows), FLOOR_BATCH):
                    chunk = rows[start : start + FLOOR_BATCH]
                    with cur.copy("COPY floor_ledger (id, account_id, amount) FROM STDIN") as copy:
                        for row in chunk:
                            copy.write_row(row)
                    totals: dict[str, int] = defaultdict(int)
                    for _, account, amount in chunk:
                        totals[account] += amount
                    cur.execute(upsert, (list(totals), list(totals.values())))
                    conn.commit()

        return _median_rate(batched, random.Random(seed), sizes)


def _median_rate(fn: Callable[[list[Row]], None], rng: random.Random, sizes: Sizes) -> float:
    fn(floor_rows(rng, 200, sizes.members))  # warm up
    rates = []
    for _ in range(sizes.rounds):
        rows = floor_rows(rng, max(sizes.rows, sizes.floor_min), sizes.members)
        started = time.perf_counter()
        fn(rows)
        rates.append(len(rows) / (time.perf_counter() - started))
    return statistics.median(rates)


# --- report ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N, well under a minute")
    parser.add_argument("--rows", type=int, help="purchases in the file (N)")
    parser.add_argument("--members", type=int, help="members imported first (M)")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        members=args.members or base.members,
        rows=args.rows or base.rows,
        floor_min=base.floor_min,
        rounds=base.rounds,
    )
    started = time.perf_counter()
    log(
        f"import benchmark: {sizes.members:,} members, {sizes.rows:,} purchases,"
        f" segments of {BATCH_SIZE:,} rows; floor batches of {FLOOR_BATCH:,}"
    )
    results: list[tuple[str, float, EngineRun]] = []
    with tempfile.TemporaryDirectory(prefix="treu-bench-import-") as tmp:
        folder = Path(tmp)
        floor = sqlite_floor(folder / "floor.db", sizes, args.seed)
        log(f"  sqlite: floor {floor:,.0f} rows/s")
        engine = make_engine(f"sqlite:///{folder / 'treu.db'}")
        try:
            results.append(
                ("sqlite", floor, engine_run(engine, sizes, args.seed, "sqlite", folder))
            )
        finally:
            engine.dispose()
        if not args.no_postgres:
            with pg_schema() as (url, conninfo):
                floor = pg_floor(conninfo, sizes, args.seed)
                log(f"  pg: floor {floor:,.0f} rows/s (COPY)")
                engine = make_engine(url)
                try:
                    run = engine_run(engine, sizes, args.seed, "pg", folder)
                finally:
                    engine.dispose()
                results.append(("pg", floor, run))

    print()
    print(f"{'backend':<8} {'members/s':>10} {'import/s':>10} {'floor/s':>10} {'ratio':>7}")
    print("-" * 49)
    for name, floor, run in results:
        print(
            f"{name:<8} {run.members_per_s:>10,.0f} {run.rows_per_s:>10,.0f} {floor:>10,.0f}"
            f" {ratio(run.rows_per_s, floor):>7.4f}"
        )
    print()
    for name, _, run in results:
        verdict = "ok" if run.ledger_ok else f"PROBLEMS {run.problems}"
        print(
            f"ledger verify ({name}): {verdict}; {run.rows_ok:,} purchases imported,"
            f" {run.rows_failed:,} failed, {run.transfers:,} transfers"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:,.0f} MB; total time {time.perf_counter() - started:.1f} s")
    found = {name: (run.rows_per_s, ratio(run.rows_per_s, floor)) for name, floor, run in results}
    fields = " ".join(
        f"{name}_rows_per_s={found.get(name, (0.0, 0.0))[0]:.0f}"
        f" {name}_ratio={found.get(name, (0.0, 0.0))[1]:.4f}"
        for name in ("sqlite", "pg")
    )
    print(f"RESULT import {fields}")
    return 0 if all(run.ledger_ok and run.rows_failed == 0 for _, _, run in results) else 1


if __name__ == "__main__":
    sys.exit(main())
