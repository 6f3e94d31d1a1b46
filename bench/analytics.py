"""Analytics benchmark: the KPI dashboard on millions of purchases, against the columnar floor.

Run from the repository root::

    .venv/bin/python bench/analytics.py --quick     # 50,000 purchases, under a minute
    .venv/bin/python bench/analytics.py             # 10 million purchases of 1 million members
    .venv/bin/python bench/analytics.py --backends sqlite
    .venv/bin/python bench/analytics.py --skip db --runs 1   # at 10 million: the long parts once

A seeded generator makes M members enrolled over two years and N purchases (80 % by members,
after their enrolment; 20 % by guests) in five stores, and loads them through the storage layer
(the compiled INSERTs of the ``members`` and ``activities`` tables, in batches of 10,000, on
SQLite; ``COPY`` fed with CSV on PostgreSQL — with the tables' indexes and foreign keys, which
is most of the time at 10 million rows) into a fresh SQLite file and a fresh PostgreSQL schema.
Then, per backend:

* **sql**: the dashboard's six KPI queries as SQL row scans (purchases and revenue members vs
  guests, active members, repeat members, month-over-month retention, enrolments, per store; 24
  months) — the reference the shared PERFORMANCE.md calls 10–20× slower than columnar;
* **db**: Treu's KPIs (``programme_kpis``, every KPI, 24 months and per store) reading the facts
  straight from the database;
* **store**: the columnar store — ``write_store`` copies the facts to Parquet (timed once, like a
  nightly refresh), then the same KPIs from it: the whole set (``kpi_s``) and the dashboard for
  one month (``month_s``).

In the same run the **floor** is the six queries hand-written in Polars over a Parquet copy of the
generated data (no Treu code). The result is the ratio store / floor; the last line is
machine-readable::

    RESULT analytics kpi_s=… floor_s=… ratio=… month_s=… store_write_s=… sqlite_sql_s=…
    sqlite_db_s=… postgresql_sql_s=… postgresql_db_s=…
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import Engine, insert, text

from treu.activities.tables import activities
from treu.analytics import kpis
from treu.analytics import store as columnar
from treu.analytics.kpis import Facts
from treu.analytics.periods import PeriodUnit, windows
from treu.analytics.service import programme_kpis, write_store
from treu.members.tables import members
from treu.programmes.service import apply_programme, create_tenant, load_programme
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

PG_URL = os.environ.get(
    "TREU_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TZ = ZoneInfo("Europe/Berlin")
FIRST, END = date(2024, 11, 1), date(2026, 11, 1)  # two years of programme time
STORES = ("mitte", "kreuzberg", "neukoelln", "pankow", "online")
BATCH = 10_000
DOCUMENT = {
    "key": "bench",
    "name": "Bench",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "stores": [{"key": s, "name": s.title()} for s in STORES],
    "rules": [{"key": "p", "name": "1 per euro", "effect": {"type": "per_amount", "points": 1}}],
}


# --- data ----------------------------------------------------------------------------------


def generate(members_n: int, purchases_n: int, seed: int = 42) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=TZ).astimezone(UTC)
    span = int(
        (
            datetime.combine(END, datetime.min.time(), tzinfo=TZ).astimezone(UTC) - start
        ).total_seconds()
    )
    origin = int(start.timestamp())
    enrolled = np.sort(rng.integers(0, span, members_n))
    people = pl.DataFrame(
        {
            "id": _ids("mbr_", pl.Series(np.arange(members_n))),
            "enrolled_at": pl.Series((origin + enrolled) * 1_000_000).cast(
                pl.Datetime("us", "UTC")
            ),
        }
    )
    by_members = int(purchases_n * 0.8)
    who = rng.integers(0, members_n, by_members)
    after = enrolled[who] + (rng.random(by_members) * (span - enrolled[who])).astype(np.int64)
    guests = rng.integers(0, span, purchases_n - by_members)
    when = np.concatenate([after, guests])
    member_ids = np.concatenate([who.astype(np.int64), np.full(len(guests), -1)])
    order = np.argsort(when, kind="stable")
    when, member_ids = when[order], member_ids[order]
    who_ids = pl.Series(member_ids)
    purchases = pl.DataFrame(
        {
            "id": _ids("act_", pl.Series(np.arange(purchases_n))),
            "type": "purchase",
            "member_id": _ids("mbr_", who_ids).zip_with(
                who_ids >= 0, pl.Series([None], dtype=pl.String)
            ),
            "store": pl.Series(np.array(STORES)[rng.integers(0, len(STORES), purchases_n)]),
            "occurred_at": pl.Series((origin + when) * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "paid_minor": pl.Series(rng.lognormal(7.6, 0.6, purchases_n).astype(np.int64) + 50),
        }
    )
    return people, purchases


def _ids(prefix: str, numbers: pl.Series) -> pl.Series:
    """``prefix`` and the number in 12 digits, vectorised (10 million f-strings take a while)."""
    return prefix + numbers.cast(pl.String).str.zfill(12)


# --- loading through the storage layer -----------------------------------------------------


def load(engine: Engine, people: pl.DataFrame, purchases: pl.DataFrame) -> tuple[str, float]:
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        tenant = create_tenant(uow, key=f"bench-{uuid.uuid4().hex[:6]}")
    with UnitOfWork(engine) as uow:
        pid = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    with UnitOfWork(engine) as uow:
        programme = load_programme(uow, pid)
        store_ids = dict(
            uow.conn.execute(
                text("SELECT key, id FROM stores WHERE programme_id = :p"), {"p": pid}
            ).all()
        )
    began = time.perf_counter()
    sqlite = engine.dialect.name == "sqlite"

    def instant(column: str) -> pl.Expr:
        # what UTCDateTime stores: SQLite the naive UTC ISO text, PostgreSQL the aware instant
        # (as text for COPY … CSV)
        return pl.col(column).dt.strftime(
            "%Y-%m-%d %H:%M:%S.%6f" if sqlite else "%Y-%m-%d %H:%M:%S.%6f+00"
        )

    def rows(frame: pl.DataFrame, columns: tuple[str, ...], values: list[Any]) -> pl.DataFrame:
        exprs = [pl.col(v) if isinstance(v, str) else v for v in values]
        return frame.select([e.alias(c) for e, c in zip(exprs, columns, strict=True)])

    people_rows = rows(
        people,
        MEMBER_COLUMNS,
        [
            "id",
            pl.lit(tenant.id),
            pl.lit(pid),
            pl.lit("active"),
            pl.lit("{}"),
            instant("enrolled_at"),
        ],
    )
    stores = pl.DataFrame({"store": list(store_ids), "store_id": list(store_ids.values())})
    purchase_rows = rows(
        purchases.join(stores, on="store", how="left"),
        ACTIVITY_COLUMNS,
        [
            "id",
            pl.lit(tenant.id),
            pl.lit(pid),
            pl.lit(programme.revision_id),
            "member_id",
            "store_id",
            pl.lit("purchase"),
            "id",
            instant("occurred_at"),
            instant("occurred_at"),
            pl.lit("EUR"),
            "paid_minor",
            "paid_minor",
            pl.lit(False),
            pl.lit("{}"),
        ],
    ).sort("id")
    # Core's compiled INSERT of the real tables, fed with rows already in the stored form:
    # per-row type processing would measure Python, not the database.
    member_sql = str(
        insert(members)
        .values({c: None for c in MEMBER_COLUMNS})
        .compile(dialect=engine.dialect, compile_kwargs={})
    )
    activity_sql = str(
        insert(activities)
        .values({c: None for c in ACTIVITY_COLUMNS})
        .compile(dialect=engine.dialect)
    )
    with engine.begin() as conn:
        for table, sql, frame in (
            ("members", member_sql, people_rows),
            ("activities", activity_sql, purchase_rows),
        ):
            if sqlite:
                for chunk in frame.iter_slices(BATCH):
                    conn.exec_driver_sql(_positional(sql, engine), list(chunk.iter_rows()))
                continue
            # PostgreSQL: COPY, the batched floor of the shared PERFORMANCE.md, fed with CSV
            # that Polars writes (a null is an empty field)
            raw: Any = conn.connection.driver_connection
            columns = ", ".join(frame.columns)
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
            ):
                for chunk in frame.iter_slices(20 * BATCH):
                    copy.write(chunk.write_csv(include_header=False))
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return pid, time.perf_counter() - began


MEMBER_COLUMNS = ("id", "tenant_id", "programme_id", "status", "attributes", "enrolled_at")
ACTIVITY_COLUMNS = (
    "id",
    "tenant_id",
    "programme_id",
    "revision_id",
    "member_id",
    "store_id",
    "type",
    "external_id",
    "occurred_at",
    "recorded_at",
    "currency",
    "paid_minor",
    "base_minor",
    "first_purchase",
    "payload",
)


def _positional(sql: str, engine: Engine) -> str:
    """The compiled statement with positional driver parameters in column order."""
    import re

    marker = "?" if engine.dialect.name == "sqlite" else "%s"
    return re.sub(r"(:[a-z_]+|%\([a-z_]+\)s)", marker, sql)


# --- the six dashboard queries: SQL row scans and the Polars floor ----------------------------


def month_table() -> list[tuple[int, datetime, datetime]]:
    months = windows(PeriodUnit.MONTH, FIRST, END)
    return [(i, *m.instants(TZ)) for i, m in enumerate(months)]


SQL = {
    "purchases": """SELECT m.i, count(*), sum(a.paid_minor), count(a.member_id),
        sum(CASE WHEN a.member_id IS NOT NULL THEN a.paid_minor ELSE 0 END)
        FROM activities a JOIN bench_months m ON a.occurred_at >= m.s AND a.occurred_at < m.e
        WHERE a.programme_id = :p AND a.type = 'purchase' GROUP BY m.i""",
    "active": """SELECT m.i, count(DISTINCT a.member_id) FROM activities a
        JOIN bench_months m ON a.occurred_at >= m.s AND a.occurred_at < m.e
        WHERE a.programme_id = :p AND a.type = 'purchase' GROUP BY m.i""",
    "repeat": """SELECT i, count(*) FROM (SELECT m.i, a.member_id FROM activities a
        JOIN bench_months m ON a.occurred_at >= m.s AND a.occurred_at < m.e
        WHERE a.programme_id = :p AND a.type = 'purchase' AND a.member_id IS NOT NULL
        GROUP BY m.i, a.member_id HAVING count(*) >= 2) r GROUP BY i""",
    "retention": """WITH v AS (SELECT DISTINCT m.i, a.member_id FROM activities a
        JOIN bench_months m ON a.occurred_at >= m.s AND a.occurred_at < m.e
        WHERE a.programme_id = :p AND a.type = 'purchase' AND a.member_id IS NOT NULL)
        SELECT v.i, count(*) FROM v JOIN v w ON w.member_id = v.member_id AND w.i = v.i - 1
        GROUP BY v.i""",
    "enrolments": """SELECT m.i, count(*) FROM members x
        JOIN bench_months m ON x.enrolled_at >= m.s AND x.enrolled_at < m.e
        WHERE x.programme_id = :p GROUP BY m.i""",
    "stores": """SELECT m.i, a.store_id, count(*), sum(a.paid_minor) FROM activities a
        JOIN bench_months m ON a.occurred_at >= m.s AND a.occurred_at < m.e
        WHERE a.programme_id = :p AND a.type = 'purchase' GROUP BY m.i, a.store_id""",
}


def sql_kpis(engine: Engine, pid: str) -> float:
    from treu.storage.types import UTCDateTime

    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_months"))
        kind = "timestamptz" if engine.dialect.name == "postgresql" else "text"
        conn.execute(text(f"CREATE TABLE bench_months (i integer, s {kind}, e {kind})"))
        bind = UTCDateTime().process_bind_param
        conn.execute(
            text("INSERT INTO bench_months VALUES (:i, :s, :e)"),
            [
                {"i": i, "s": bind(s, engine.dialect), "e": bind(e, engine.dialect)}
                for i, s, e in month_table()
            ],
        )
    began = time.perf_counter()
    with engine.connect() as conn:
        for query in SQL.values():
            conn.execute(text(query), {"p": pid}).all()
    return time.perf_counter() - began


def floor_kpis(parquet: Path, members_parquet: Path) -> float:
    """The six queries in plain Polars over Parquet: no Treu code at all."""
    months = month_table()
    cuts = pl.Series(
        [int(s.timestamp() * 1e6) for _, s, _ in months] + [int(months[-1][2].timestamp() * 1e6)]
    )
    began = time.perf_counter()
    a = pl.scan_parquet(parquet).with_columns(
        (pl.lit(cuts).search_sorted(pl.col("occurred_at").dt.epoch("us"), side="right") - 1).alias(
            "i"
        )
    )
    a.group_by("i").agg(
        pl.len(),
        pl.col("paid_minor").sum(),
        pl.col("member_id").count(),
        pl.col("paid_minor").filter(pl.col("member_id").is_not_null()).sum().alias("members"),
    ).collect()
    a.group_by("i").agg(pl.col("member_id").n_unique()).collect()
    visits = a.filter(pl.col("member_id").is_not_null()).group_by("i", "member_id").len()
    visits.filter(pl.col("len") >= 2).group_by("i").len().collect()
    v = visits.select("i", "member_id")
    v.join(v.with_columns(pl.col("i") + 1), on=["i", "member_id"]).group_by("i").len().collect()
    pl.scan_parquet(members_parquet).with_columns(
        (pl.lit(cuts).search_sorted(pl.col("enrolled_at").dt.epoch("us"), side="right") - 1).alias(
            "i"
        )
    ).group_by("i").len().collect()
    a.group_by("i", "store").agg(pl.len(), pl.col("paid_minor").sum()).collect()
    return time.perf_counter() - began


# --- Treu's KPIs -------------------------------------------------------------------------------


def treu_kpis(engine: Engine, pid: str, store: Path | None = None, *, month: bool = False) -> float:
    """``programme_kpis`` as the API and ``treu kpi`` call it: from the database, or with
    ``store`` (``TREU_ANALYTICS_DIR``) from the columnar store, reading what the range needs."""
    first, end = (date(2026, 10, 1), END) if month else (FIRST, END)
    if store is not None:
        os.environ["TREU_ANALYTICS_DIR"] = str(store)
    began = time.perf_counter()
    with UnitOfWork(engine, readonly=True) as uow:
        report = programme_kpis(
            uow,
            programme_id=pid,
            unit=PeriodUnit.MONTH,
            first=first,
            end=end,
            split=None if month else "store",
            source="database" if store is None else "store",
        )
    assert report.source == ("database" if store is None else "store")
    return time.perf_counter() - began


@contextmanager
def backend(name: str, workdir: Path) -> Iterator[Engine]:
    if name == "sqlite":
        engine = make_engine(f"sqlite:///{workdir / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{separator}options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def columnar_only(
    workdir: Path, people: pl.DataFrame, purchases: pl.DataFrame, runs: int
) -> dict[str, float]:
    """``--backends columnar``: the store's half without a database load — the generated facts
    written straight into a columnar store (as ``write_store`` lays it out) for a programme in
    an empty SQLite file, then Treu's KPIs from it. Same numbers as the store step of a backend
    (the store does not know where its facts came from), in minutes instead of hours at 10
    million rows on a busy machine."""
    engine = make_engine(f"sqlite:///{workdir / 'programme.db'}")
    pid, _ = load(engine, people.head(0), purchases.head(0))
    facts = Facts.of(activities=purchases, members=people)
    frames = {name: getattr(facts, name) for name in columnar.TABLES}
    frames["members"] = frames["members"].with_columns(
        first_purchase_at=pl.lit(None, kpis.UTC_TIME)
    )
    store = workdir / "store-columnar"
    with UnitOfWork(engine) as uow:
        columnar.write(store, pid, frames, as_of=uow.now())
    kpi = best(lambda: treu_kpis(engine, pid, store), runs)
    month = best(lambda: treu_kpis(engine, pid, store, month=True), runs)
    engine.dispose()
    print(
        f"columnar: Treu KPIs from the columnar store: every KPI, 24 months and per store "
        f"{kpi:.3f} s; dashboard month {month:.3f} s"
    )
    return {"kpi_s": kpi, "month_s": month}


def best(fn: Callable[[], float], runs: int) -> float:
    return min(fn() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 purchases (< 1 minute)")
    parser.add_argument("--members", type=int)
    parser.add_argument("--purchases", type=int)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--skip",
        default="",
        help="parts to leave out, comma-separated: sql (the SQL row scans), db (Treu's KPIs "
        "read from the database: at 10 million rows about the store's write time again)",
    )
    parser.add_argument("--runs", type=int, help="best of this many (default: 3 quick, 2 full)")
    args = parser.parse_args()
    members_n = args.members or (5_000 if args.quick else 1_000_000)
    purchases_n = args.purchases or (50_000 if args.quick else 10_000_000)
    runs = args.runs or (3 if args.quick else 2)
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        began = time.perf_counter()
        people, purchases = generate(members_n, purchases_n)
        purchases.write_parquet(workdir / "purchases.parquet")
        people.write_parquet(workdir / "members.parquet")
        print(
            f"generated {members_n:,} members, {purchases_n:,} purchases "
            f"in {time.perf_counter() - began:.1f} s"
        )
        floor = best(
            lambda: floor_kpis(workdir / "purchases.parquet", workdir / "members.parquet"), runs
        )
        results["floor_s"] = floor
        print(f"floor (Polars over Parquet, six queries): {floor:.3f} s")
        if "columnar" in args.backends.split(","):
            results.update(columnar_only(workdir, people, purchases, runs))
        for name in args.backends.split(","):
            if name == "columnar":
                continue
            with backend(name, workdir) as engine:
                pid, loaded = load(engine, people, purchases)
                print(f"{name}: loaded in {loaded:.1f} s ({purchases_n / loaded:,.0f} rows/s)")
                if "sql" not in skip:
                    sql = sql_kpis(engine, pid)
                    results[f"{name}_sql_s"] = sql
                    print(f"{name}: six SQL row scans {sql:.2f} s ({sql / floor:.1f}x floor)")
                if "db" not in skip:
                    db = treu_kpis(engine, pid)
                    results[f"{name}_db_s"] = db
                    print(f"{name}: Treu KPIs read from the database {db:.2f} s")
                store = workdir / f"store-{name}"
                t0 = time.perf_counter()
                with UnitOfWork(engine, readonly=True) as uow:
                    write_store(uow, programme_id=pid, directory=store)
                wrote = time.perf_counter() - t0
                results.setdefault("store_write_s", wrote)
                results[f"{name}_store_write_s"] = wrote
                print(f"{name}: columnar store written in {wrote:.2f} s")
                kpi = best(
                    lambda e=engine, p=pid, s=store: treu_kpis(  # type: ignore[misc]
                        e, p, s
                    ),
                    runs,
                )
                month = best(
                    lambda e=engine, p=pid, s=store: treu_kpis(  # type: ignore[misc]
                        e, p, s, month=True
                    ),
                    runs,
                )
                results.setdefault("kpi_s", kpi)
                results.setdefault("month_s", month)
                print(
                    f"{name}: Treu KPIs from the columnar store: every KPI, 24 months and per "
                    f"store {kpi:.3f} s ({kpi / floor:.2f}x floor); dashboard month {month:.3f} s"
                )
    results["ratio"] = results["kpi_s"] / results["floor_s"]
    order = [k for k in ("kpi_s", "floor_s", "ratio", "month_s", "store_write_s") if k in results]
    order += [k for k in results if k not in order]
    print("RESULT analytics " + " ".join(f"{k}={results[k]:.3f}" for k in order))


if __name__ == "__main__":
    main()
