"""Earn benchmark: purchases through the whole engine against the raw-driver floor.

Run from the repository root::

    .venv/bin/python bench/earn.py --quick      # well under a minute
    .venv/bin/python bench/earn.py              # larger N, steadier numbers
    .venv/bin/python bench/earn.py --quick --profile   # plus a cProfile of the SQLite single path

Each backend gets a fresh database (a SQLite file in a temporary directory, a PostgreSQL schema
``bench_<random>`` that is dropped at the end), migrated, with the Kiezcafé programme applied and
M members enrolled. Then:

* engine "single": N purchases through ``record_purchase``, one unit of work (one transaction)
  per purchase, the member looked up by e-mail reference: member look-up, rules, ledger, lots,
  awards and outbox, everything a till's request does;
* engine "batch": the same kind of purchases through ``record_purchases``, K per transaction
  (the bulk import path);
* the floor, measured in the same run with the raw drivers (sqlite3, psycopg 3): one ledger-like
  row insert plus one balance upsert per transaction, and the same batched 1,000 per transaction,
  with time-ordered keys.

Absolute numbers drift between runs and machines, so the result is the ratio engine / floor. The
last line is machine-readable::

    RESULT earn sqlite_single_ratio=… sqlite_batch_ratio=… pg_single_ratio=… pg_batch_ratio=…
    events_per_s=…   (engine single on SQLite)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import yaml
from sqlalchemy import Engine, text

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase, record_purchases
from treu.ids import new_id
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
PROGRAMME = ROOT / "examples" / "kiezcafe.yaml"
PG_URL = os.environ.get(
    "TREU_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FLOOR_BATCH = 1_000  # rows per transaction of the batched floor
CATEGORIES = ["Kaffee", "Kuchen", "Frühstück", "Getränke", "Snacks", "Merch", "Bohnen"]


@dataclass(frozen=True)
class Sizes:
    members: int
    single: int
    batch: int
    batch_size: int
    floor_single_min: int  # the floors run at least this many events (they are fast)
    floor_batch_min: int
    rounds: int  # floor rounds; the median is reported


QUICK = Sizes(members=500, single=500, batch=1_000, batch_size=500, floor_single_min=3_000,
              floor_batch_min=10_000, rounds=3)  # fmt: skip
FULL = Sizes(members=5_000, single=5_000, batch=20_000, batch_size=1_000,
             floor_single_min=10_000, floor_batch_min=100_000, rounds=3)  # fmt: skip


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- synthetic input ---------------------------------------------------------------------


def email(i: int) -> str:
    return f"member{i}@bench.example.org"


def make_purchases(
    rng: random.Random, count: int, members: int, prefix: str
) -> list[tuple[str | None, PurchaseIn]]:
    """Seeded purchases: 1–5 lines, a category each, prices as decimal strings."""
    out: list[tuple[str | None, PurchaseIn]] = []
    for i in range(count):
        lines = [
            LineIn(
                sku=f"SKU-{rng.randrange(200)}",
                category=rng.choice(CATEGORIES),
                quantity=rng.choice((1, 1, 1, 2, 3)),
                unit_price=Decimal(f"{rng.randrange(50, 2500) / 100:.2f}"),
            )
            for _ in range(rng.randint(1, 5))
        ]
        purchase = PurchaseIn(
            external_id=f"{prefix}-{i}",
            currency="EUR",
            store="kastanienallee",
            channel="pos",
            lines=lines,
        )
        out.append((f"email:{email(rng.randrange(members))}", purchase))
    return out


# --- the engine --------------------------------------------------------------------------


class _ChunkedUow(UnitOfWork):
    """Enrolment setup only: each service call's commit writes its outbox rows, the chunk
    commits once at the end (enrolment speed is not what this benchmark measures)."""

    def commit(self) -> None:
        self.flush_events()

    def commit_chunk(self) -> None:
        super().commit()


@dataclass
class EngineRun:
    single_per_s: float
    batch_per_s: float
    points: int
    ledger_ok: bool
    problems: dict[str, list[str]]
    transfers: int


def setup_programme(engine: Engine, members: int) -> tuple[str, str]:
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        tenant = create_tenant(uow, key="bench")
    with UnitOfWork(engine) as uow:
        document = yaml.safe_load(PROGRAMME.read_text())
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    for start in range(0, members, 500):
        with _ChunkedUow(engine) as uow:
            for i in range(start, min(start + 500, members)):
                enrol_member(
                    uow,
                    programme_id=programme_id,
                    identifiers_={IdentifierKind.EMAIL: email(i)},
                    name=f"Member {i}",
                )
            uow.commit_chunk()
    return tenant.id, programme_id


def run_single(
    engine: Engine, programme_id: str, items: list[tuple[str | None, PurchaseIn]]
) -> int:
    points = 0
    for member, purchase in items:
        with UnitOfWork(engine) as uow:
            result = record_purchase(
                uow, programme_id=programme_id, purchase=purchase, member=member
            )
        if result.replayed:
            raise RuntimeError(f"{purchase.external_id} was recorded before")
        points += result.points
    return points


def run_batches(
    engine: Engine, programme_id: str, items: list[tuple[str | None, PurchaseIn]], size: int
) -> int:
    points = 0
    for start in range(0, len(items), size):
        with UnitOfWork(engine) as uow:
            results = record_purchases(
                uow, programme_id=programme_id, items=items[start : start + size]
            )
        if any(r.replayed for r in results):
            raise RuntimeError("a purchase of the batch was recorded before")
        points += sum(r.points for r in results)
    return points


def timed(fn: Callable[[], int], events: int) -> tuple[float, int]:
    started = time.perf_counter()
    value = fn()
    return events / (time.perf_counter() - started), value


def engine_run(engine: Engine, sizes: Sizes, seed: int, label: str, profile: bool) -> EngineRun:
    started = time.perf_counter()
    tenant_id, programme_id = setup_programme(engine, sizes.members)
    log(f"  {label}: migrated, {sizes.members:,} members in {time.perf_counter() - started:.1f} s")
    rng = random.Random(seed)
    warm = make_purchases(rng, 50, sizes.members, "warm")
    warm_batch = make_purchases(rng, 20, sizes.members, "warm-batch")
    single = make_purchases(rng, sizes.single, sizes.members, "single")
    batch = make_purchases(rng, sizes.batch, sizes.members, "batch")
    run_single(engine, programme_id, warm)  # compiled-statement caches, prepared statements
    run_batches(engine, programme_id, warm_batch, 10)
    single_per_s, points = timed(lambda: run_single(engine, programme_id, single), len(single))
    log(f"  {label}: engine single {single_per_s:,.0f}/s")
    if profile:  # a run of its own: the profiler slows everything down several times
        profiled = make_purchases(rng, min(sizes.single, 1_000), sizes.members, "profiled")
        profiler = cProfile.Profile()
        profiler.enable()
        points += run_single(engine, programme_id, profiled)
        profiler.disable()
        print_profile(profiler, f"engine single, {label}")
    batch_per_s, got = timed(
        lambda: run_batches(engine, programme_id, batch, sizes.batch_size), len(batch)
    )
    points += got
    log(f"  {label}: engine batch {batch_per_s:,.0f}/s")
    with UnitOfWork(engine) as uow:
        report = verify_ledger(uow, tenant_id=tenant_id)
    return EngineRun(
        single_per_s, batch_per_s, points, report.ok, report.problems, report.transfers
    )


def print_profile(profiler: cProfile.Profile, title: str) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(45)
    print(f"\n=== cProfile: {title} ===\n{out.getvalue()}", file=sys.stderr)


# --- the floor: raw drivers --------------------------------------------------------------


def floor_rows(rng: random.Random, count: int, members: int) -> list[tuple[str, str, int]]:
    """(time-ordered id, account, amount) — the id is generated here, as the engine does."""
    return [
        (new_id("transfer"), f"acc_{rng.randrange(members)}", rng.randint(1, 100))
        for _ in range(count)
    ]


def sqlite_floor(path: Path, sizes: Sizes, seed: int) -> tuple[float, float]:
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
    rng = random.Random(seed)

    def single(rows: list[tuple[str, str, int]]) -> int:
        for key, account, amount in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, (key, account, amount, time.time()))
            conn.execute(upsert, (account, amount))
            conn.execute("COMMIT")
        return 0

    def batched(rows: list[tuple[str, str, int]]) -> int:
        for start in range(0, len(rows), FLOOR_BATCH):
            chunk = rows[start : start + FLOOR_BATCH]
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, [(k, a, n, now) for k, a, n in chunk])
            conn.executemany(upsert, [(a, n) for _, a, n in chunk])
            conn.execute("COMMIT")
        return 0

    try:
        return (
            _median_rate(single, rng, max(sizes.single, sizes.floor_single_min), sizes),
            _median_rate(batched, rng, max(sizes.batch, sizes.floor_batch_min), sizes),
        )
    finally:
        conn.close()


def pg_floor(conninfo: str, sizes: Sizes, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE floor_ledger (id text PRIMARY KEY, account_id text NOT NULL,"
            " amount bigint NOT NULL, posted_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE floor_balances (account_id text PRIMARY KEY, balance bigint NOT NULL)"
        )
        conn.commit()
        insert = "INSERT INTO floor_ledger (id, account_id, amount) VALUES (%s, %s, %s)"
        upsert = (
            "INSERT INTO floor_balances VALUES (%s, %s) ON CONFLICT (account_id)"
            " DO UPDATE SET balance = floor_balances.balance + excluded.balance"
        )

        def single(rows: list[tuple[str, str, int]]) -> int:
            for key, account, amount in rows:
                conn.execute(insert, (key, account, amount))
                conn.execute(upsert, (account, amount))
                conn.commit()
            return 0

        def batched(rows: list[tuple[str, str, int]]) -> int:
            with conn.cursor() as cur:
                for start in range(0, len(rows), FLOOR_BATCH):
                    chunk = rows[start : start + FLOOR_BATCH]
                    cur.executemany(insert, chunk)
                    cur.executemany(upsert, [(a, n) for _, a, n in chunk])
                    conn.commit()
            return 0

        # PostgreSQL single events cost round trips: the floor runs as many events as the engine
        return (
            _median_rate(single, rng, sizes.single, sizes),
            _median_rate(batched, rng, max(sizes.batch, sizes.floor_batch_min), sizes),
        )


def _median_rate(
    fn: Callable[[list[tuple[str, str, int]]], int], rng: random.Random, count: int, sizes: Sizes
) -> float:
    fn(floor_rows(rng, 200, sizes.members))  # warm up
    rates = []
    for _ in range(sizes.rounds):
        rows = floor_rows(rng, count, sizes.members)
        started = time.perf_counter()
        fn(rows)
        rates.append(len(rows) / (time.perf_counter() - started))
    return statistics.median(rates)


# --- PostgreSQL schema of our own ---------------------------------------------------------


@contextmanager
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh schema; yields (SQLAlchemy URL, psycopg conninfo) that both use it."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        separator = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
        raw = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        yield url, f"{raw}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# --- report ------------------------------------------------------------------------------


def ratio(engine: float, floor: float) -> float:
    return engine / floor if floor else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N, well under a minute")
    parser.add_argument("--members", type=int, help="members enrolled (M)")
    parser.add_argument("--single", type=int, help="purchases, one transaction each (N)")
    parser.add_argument("--batch", type=int, help="purchases through the batch path")
    parser.add_argument("--batch-size", type=int, help="purchases per transaction (K)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the engine single path on SQLite"
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        members=args.members or base.members,
        single=args.single or base.single,
        batch=args.batch or base.batch,
        batch_size=args.batch_size or base.batch_size,
        floor_single_min=base.floor_single_min,
        floor_batch_min=base.floor_batch_min,
        rounds=base.rounds,
    )
    started = time.perf_counter()
    log(
        f"earn benchmark: {sizes.members:,} members, {sizes.single:,} single purchases,"
        f" {sizes.batch:,} in batches of {sizes.batch_size:,}; floor batches of {FLOOR_BATCH:,}"
    )
    rows: list[tuple[str, float, float, EngineRun]] = []
    with tempfile.TemporaryDirectory(prefix="treu-bench-") as tmp:
        floor_single, floor_batch = sqlite_floor(Path(tmp) / "floor.db", sizes, args.seed)
        log(f"  sqlite: floor single {floor_single:,.0f}/s, batched {floor_batch:,.0f}/s")
        engine = make_engine(f"sqlite:///{Path(tmp) / 'treu.db'}")
        try:
            run = engine_run(engine, sizes, args.seed, "sqlite", args.profile)
        finally:
            engine.dispose()
        rows.append(("sqlite", floor_single, floor_batch, run))
    if not args.no_postgres:
        with pg_schema() as (url, conninfo):
            floor_single, floor_batch = pg_floor(conninfo, sizes, args.seed)
            log(f"  pg: floor single {floor_single:,.0f}/s, batched {floor_batch:,.0f}/s")
            engine = make_engine(url)
            try:
                run = engine_run(engine, sizes, args.seed, "postgresql", profile=False)
            finally:
                engine.dispose()
            rows.append(("pg", floor_single, floor_batch, run))

    print()
    print(f"{'backend':<8} {'path':<7} {'engine/s':>10} {'floor/s':>10} {'ratio':>6}")
    print("-" * 45)
    ratios: dict[str, float] = {}
    for name, f_single, f_batch, run in rows:
        for path, eng, flo in (
            ("single", run.single_per_s, f_single),
            ("batch", run.batch_per_s, f_batch),
        ):
            ratios[f"{name}_{path}_ratio"] = ratio(eng, flo)
            print(f"{name:<8} {path:<7} {eng:>10,.0f} {flo:>10,.0f} {ratio(eng, flo):>6.3f}")
    print()
    for name, _, _, run in rows:
        verdict = "ok" if run.ledger_ok else f"PROBLEMS {run.problems}"
        print(
            f"ledger verify ({name}): {verdict}; {run.transfers:,} transfers,"
            f" {run.points:,} points earned"
        )
    print(f"total time {time.perf_counter() - started:.1f} s")
    fields = " ".join(
        f"{key}={ratios.get(key, 0.0):.3f}"
        for key in (
            "sqlite_single_ratio",
            "sqlite_batch_ratio",
            "pg_single_ratio",
            "pg_batch_ratio",
        )
    )
    batch_per_s = rows[0][3].batch_per_s
    print(
        f"RESULT earn {fields} events_per_s={rows[0][3].single_per_s:.0f}"
        f" batch_events_per_s={batch_per_s:.0f}"
    )
    return 0 if all(run.ledger_ok for *_, run in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
