"""Segments benchmark: the nightly recompute of a programme, set-based, against the floor.

Run from the repository root::

    .venv/bin/python bench/segments.py --quick      # 2,000 members, 20,000 purchases
    .venv/bin/python bench/segments.py              # 5,000 members, 100,000 purchases
    .venv/bin/python bench/segments.py --backends sqlite

A seeded generator makes M members (enrolled over a year, some with consents, birthdays,
attributes) and N purchases with lines (category, brand) over the last 120 days, loaded with
SQLAlchemy Core inserts into a fresh SQLite file and a fresh PostgreSQL schema. The programme
has the four built-ins plus five segments that read purchases by weekday and time of day, net
spend, lines bought, consent and an attribute. Per backend:

* **first**: ``recompute_segments`` on an empty ``segment_members`` (every member enters: rows
  and events written);
* **again**: the same day once more (nothing changes: the cost of evaluating alone);
* **one_by_one**: ``member_facts`` + ``matches`` per member — what the recompute would cost
  with queries per member (the shape it avoids);
* **floor**: the raw driver fetching the rows the recompute must read at least (the purchases
  in the window with their lines, and the members), no Treu code.

The last line is machine-readable::

    RESULT segments members=… purchases=… sqlite_first_s=… sqlite_again_s=… sqlite_floor_s=…
    sqlite_ratio=… sqlite_one_by_one_s=… postgresql_…
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, text

from treu.activities.tables import activities
from treu.ids import new_id
from treu.ledger.model import start_of_day
from treu.members.tables import consents, members
from treu.programmes.service import apply_programme, create_tenant, load_programme
from treu.segments import service as segments
from treu.segments.model import matches
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

PG_URL = os.environ.get(
    "TREU_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TZ = ZoneInfo("Europe/Berlin")
DAY = date(2026, 4, 1)
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
DOCUMENT: dict[str, Any] = {
    "key": "bench",
    "name": "Bench",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [{"key": "p", "name": "1 per euro", "effect": {"type": "per_amount", "points": 1}}],
    "segments": [
        {
            "key": "morning-regulars",
            "name": "Frühaufsteher",
            "all": [
                {
                    "purchases": {
                        "min": 4,
                        "within_days": 30,
                        "weekdays": WEEKDAYS,
                        "between": ["07:00", "09:00"],
                    }
                }
            ],
        },
        {"key": "big", "name": "Big", "all": [{"spend": {"min": "100.00", "within_days": 90}}]},
        {"key": "cake", "name": "Cake", "all": [{"bought": {"categories": ["kuchen"]}}]},
        {"key": "mailable", "name": "Mail", "all": [{"consent": "email"}]},
        {
            "key": "berlin",
            "name": "Berlin",
            "all": [{"attribute": {"name": "city", "equals": "B"}}],
        },
    ],
}


def generate(members_n: int, purchases_n: int, seed: int = 7) -> tuple[list[Any], list[Any]]:
    rnd = random.Random(seed)
    end = start_of_day(DAY, TZ).astimezone(UTC)
    people = [
        {
            "id": f"mbr_{i:012d}",
            "status": "active",
            "attributes": {"city": rnd.choice("BHM")},
            "birthday": date(1980, rnd.randint(1, 12), 1),
            "enrolled_at": end - timedelta(days=rnd.uniform(1, 365)),
        }
        for i in range(members_n)
    ]
    bought = []
    for i in range(purchases_n):
        who = rnd.choice(people)
        when = end - timedelta(minutes=rnd.uniform(0, 120 * 24 * 60))
        bought.append(
            {
                "id": f"act_{i:012d}",
                "member_id": who["id"],
                "occurred_at": max(when, who["enrolled_at"]),
                "paid_minor": rnd.randint(150, 4000),
                "category": rnd.choice(["kaffee", "kaffee", "kuchen", "brot"]),
            }
        )
    return people, bought


def load(engine: Engine, people: list[Any], bought: list[Any]) -> str:
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        tenant = create_tenant(uow, key=f"bench-{uuid.uuid4().hex[:6]}")
    with UnitOfWork(engine) as uow:
        pid = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    with UnitOfWork(engine) as uow:
        revision = load_programme(uow, pid).revision_id
    with engine.begin() as conn:
        conn.execute(
            insert(members), [{**p, "tenant_id": tenant.id, "programme_id": pid} for p in people]
        )
        conn.execute(
            insert(activities),
            [
                {
                    "id": b["id"],
                    "tenant_id": tenant.id,
                    "programme_id": pid,
                    "revision_id": revision,
                    "member_id": b["member_id"],
                    "type": "purchase",
                    "external_id": b["id"],
                    "occurred_at": b["occurred_at"],
                    "recorded_at": b["occurred_at"],
                    "currency": "EUR",
                    "paid_minor": b["paid_minor"],
                    "base_minor": b["paid_minor"],
                    "first_purchase": False,
                    "payload": {
                        "lines": [{"category": b["category"], "brand": "x", "sku": "s"}],
                    },
                }
                for b in bought
            ],
        )
        conn.execute(
            insert(consents),
            [
                {
                    "id": new_id("consent"),
                    "tenant_id": tenant.id,
                    "member_id": p["id"],
                    "channel": "email",
                    "granted": True,
                    "source": "bench",
                    "recorded_at": p["enrolled_at"],
                }
                for p in people[::3]
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return pid


def floor(engine: Engine, pid: str) -> float:
    """The raw driver reading what the recompute must read at least."""
    since = (start_of_day(DAY, TZ) - timedelta(days=120)).astimezone(UTC)
    began = time.perf_counter()
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        sqlite = engine.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        lines = "json_extract(payload, '$.lines')" if sqlite else "payload -> 'lines'"
        cursor.execute(
            f"SELECT member_id, occurred_at, paid_minor, {lines} FROM activities "
            f"WHERE programme_id = {mark} AND occurred_at >= {mark}",
            (pid, since.strftime("%Y-%m-%d %H:%M:%S.%f") if mark == "?" else since),
        )
        cursor.fetchall()
        cursor.execute(
            f"SELECT id, enrolled_at, attributes FROM members WHERE programme_id = {mark}", (pid,)
        )
        cursor.fetchall()
    return time.perf_counter() - began


def timed(engine: Engine, pid: str) -> dict[str, float]:
    def uow() -> UnitOfWork:
        return UnitOfWork(engine)

    began = time.perf_counter()
    changes = segments.recompute_segments(uow, pid, DAY)
    first = time.perf_counter() - began
    began = time.perf_counter()
    assert segments.recompute_segments(uow, pid, DAY) == 0
    again = time.perf_counter() - began
    at = start_of_day(DAY, TZ)
    began = time.perf_counter()
    with uow() as u:
        programme = load_programme(u, pid)
        defs = segments.segments_of(programme)
        ids = u.conn.execute(text("SELECT id FROM members WHERE programme_id = :p"), {"p": pid})
        for (member_id,) in ids.all():
            facts = segments.member_facts(u, programme, member_id, at=at)
            assert facts is not None
            for d in defs:
                matches(d, facts, today=DAY, tz=TZ, currency="EUR")
    one_by_one = time.perf_counter() - began
    print(f"  {changes} members entered segments")
    return {"first": first, "again": again, "one_by_one": one_by_one, "floor": floor(engine, pid)}


def engine_for(backend: str, tmp: Path) -> tuple[Engine, str | None]:
    if backend == "sqlite":
        return make_engine(f"sqlite:///{tmp / 'bench.db'}"), None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}"), schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    members_n, purchases_n = (2_000, 20_000) if args.quick else (5_000, 100_000)
    people, bought = generate(members_n, purchases_n)
    result = [f"members={members_n}", f"purchases={purchases_n}"]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            engine, schema = engine_for(backend, Path(tmp))
            try:
                pid = load(engine, people, bought)
                print(f"{backend}:")
                times = timed(engine, pid)
                for name, seconds in times.items():
                    print(f"  {name:>10}: {seconds:8.3f} s")
                ratio = times["again"] / times["floor"]
                print(f"  recompute / floor: {ratio:.1f}×")
                result += [f"{backend}_{k}_s={v:.3f}" for k, v in times.items()]
                result.append(f"{backend}_ratio={ratio:.1f}")
            finally:
                engine.dispose()
                if schema:
                    admin = make_engine(PG_URL)
                    with admin.begin() as conn:
                        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()
    print("RESULT segments " + " ".join(result))


if __name__ == "__main__":
    main()
