"""API benchmark: the till's purchase over HTTP against a bare FastAPI endpoint (the floor).

Run from the repository root::

    .venv/bin/python bench/api.py --quick      # under a minute
    .venv/bin/python bench/api.py              # longer runs, more members, steadier numbers

Each backend gets a fresh database (a SQLite file in a temporary directory, a PostgreSQL schema
``bench_<random>`` that is dropped at the end), migrated, with the Kiezcafé programme applied,
M members enrolled and a till key bound to the store ``kastanienallee``. Then, for 1 and 2
worker processes, uvicorn serves the real app (``treu.api.app:create_app``, the way
``treu serve`` does, without the access log) in a process of its own on 127.0.0.1, and this
process drives it with C concurrent keep-alive connections: a small asyncio HTTP/1.1 client,
so that the load generator takes little of the two cores it shares with the server.

* ``pos``: ``POST /v1/programmes/kiezcafe/purchases`` with the till's key, a new receipt number
  each time, 1–3 lines, the member given by e-mail: authentication, member look-up, rules,
  ledger, lots, awards and outbox in one transaction; with ``--idempotency-key`` also an
  ``Idempotency-Key`` (two more transactions: claim the key, store the response);
* ``bare``: the framework floor, measured in the same run and served the same way: a FastAPI
  app whose ``POST /bare`` does nothing (the same request bytes; it answers ``{"ok": true}``).

Every run warms up first (each worker compiles its statements), then measures for D seconds:
requests/s, p50 and p99 latency, and the ratio to the floor with the same workers. Afterwards
the ledger is verified and the purchases counted. The last line is machine-readable: first
SQLite with one worker (what ``treu serve`` runs by default), then every configuration run
(``sqlite1``, ``sqlite2``, ``pg1``, ``pg2``: backend and workers), each with its ratio to the
floor with the same workers::

    RESULT api pos_rps=… bare_rps=… ratio=… p99_ms=… bare1_rps=… bare2_rps=… sqlite1_rps=…
    sqlite1_ratio=… sqlite1_p99_ms=… sqlite2_… pg1_… pg2_…

The PostgreSQL server processes get the connection pool of ``TREU_POOL_SIZE`` /
``TREU_POOL_MAX_OVERFLOW`` from the environment, as ``treu serve`` would.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from earn import email, log, pg_schema, setup_programme  # bench/earn.py, beside this file
from treu.activities.tables import activities
from treu.api.app import create_app
from treu.api.serve import serve
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.ledger.verify import verify_ledger
from treu.storage.engine import make_engine
from treu.storage.uow import UnitOfWork

BENCH = Path(__file__).resolve().parent
PURCHASES = "/v1/programmes/kiezcafe/purchases"
CATEGORIES = ["Kaffee", "Kuchen", "Frühstück", "Getränke", "Snacks"]
MAX_REQUESTS = 1_000_000  # a bound on every load loop, whatever the duration


@dataclass(frozen=True)
class Sizes:
    members: int
    warmup_s: float
    measure_s: float


QUICK = Sizes(members=300, warmup_s=1.0, measure_s=3.0)
FULL = Sizes(members=5_000, warmup_s=3.0, measure_s=15.0)


def bare_app() -> FastAPI:
    """The floor: FastAPI, routing and a JSON answer, nothing else (``--factory`` target)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/bare")
    async def bare() -> dict[str, bool]:
        return {"ok": True}

    return with_pid(app)


def treu_app() -> FastAPI:
    """The real app, as ``treu serve`` serves it (``--factory`` target)."""
    return with_pid(create_app())


def with_pid(app: FastAPI) -> FastAPI:
    """``GET /bench-pid``: which worker process answered, so that a run starts only once every
    worker serves (otherwise the first one up takes all the keep-alive connections)."""

    @app.get("/bench-pid", include_in_schema=False)
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}

    return app


# --- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """The app factory ``app`` served with ``workers`` processes as ``treu serve`` serves the
    API (without the access log), in a process of its own: ``bench/api.py --serve``."""

    def __init__(self, app: str, workers: int, database_url: str | None = None) -> None:
        self.port = free_port()
        path = [str(BENCH), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))  # the bare app is api:bare_app
        if database_url:
            env["TREU_DATABASE_URL"] = database_url
        command = [
            sys.executable, __file__, "--serve", app, "--port", str(self.port),
            "--workers", str(workers),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 600  # importing Treu takes minutes on a busy machine
        seen: set[int] = set()
        while len(seen) < workers:  # every worker process answers, each on a new connection
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server {app} did not start")
            pid = self._pid()
            if pid is None:
                time.sleep(0.1)
            else:
                seen.add(pid)

    def _pid(self) -> int | None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/bench-pid")
            response = connection.getresponse()
            return int(json.loads(response.read())["pid"]) if response.status == 200 else None
        except OSError:
            return None
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the load generator ------------------------------------------------------------------


@dataclass
class Load:
    """What the clients saw during one phase."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    created: int = 0
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def quantile_ms(self, q: float) -> float:
        if len(self.latencies) < 2:
            return 0.0
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[round(q * 100) - 1] * 1000


class Requests:
    """Request bytes: the till's purchase (a new receipt each time) or the same to ``/bare``."""

    def __init__(self, path: str, token: str, members: int, prefix: str, key: bool) -> None:
        self.path = path
        self.token = token
        self.members = members
        self.prefix = prefix
        self.key = key
        self.rng = random.Random(f"{prefix}-{path}")
        self.count = 0

    def next(self) -> bytes:
        self.count += 1
        lines = [
            {
                "sku": f"SKU-{self.rng.randrange(200)}",
                "category": self.rng.choice(CATEGORIES),
                "quantity": self.rng.choice((1, 1, 2)),
                "unit_price": f"{self.rng.randrange(50, 2500) / 100:.2f}",
            }
            for _ in range(self.rng.randint(1, 3))
        ]
        receipt = f"{self.prefix}-{self.count}"
        member = f"email:{email(self.rng.randrange(self.members))}"
        body = json.dumps(
            {"external_id": receipt, "currency": "EUR", "member": member, "lines": lines}
        ).encode()
        key = f"Idempotency-Key: {receipt}\r\n" if self.key else ""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.token}\r\n{key}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


async def _one_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError("a response without Content-Length")
    await reader.readexactly(length)
    return status


async def _client(port: int, requests: Requests, until: float, load: Load) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until and len(load.latencies) < MAX_REQUESTS:
            request = requests.next()
            started = time.perf_counter()
            writer.write(request)
            status = await _one_response(reader)
            load.latencies.append(time.perf_counter() - started)
            load.statuses[status] = load.statuses.get(status, 0) + 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _drive(port: int, requests: Requests, clients: int, seconds: float) -> Load:
    load = Load()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_client(port, requests, until, load) for _ in range(clients)))
    load.elapsed = time.perf_counter() - started
    return load


def drive(port: int, requests: Requests, clients: int, sizes: Sizes) -> Load:
    asyncio.run(_drive(port, requests, clients, sizes.warmup_s))
    return asyncio.run(_drive(port, requests, clients, sizes.measure_s))


# --- the runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    target: str  # pos or bare
    backend: str  # sqlite, pg or -
    workers: int
    load: Load


def till_key(engine: Engine, tenant_id: str) -> str:
    with UnitOfWork(engine) as uow:
        return create_api_key(
            uow, tenant_id=tenant_id, scope=Scope.POS, name="bench till", store="kastanienallee"
        ).token


def bench_pos(
    label: str, url: str, args: argparse.Namespace, sizes: Sizes, workers: list[int]
) -> list[Row]:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        tenant_id, _ = setup_programme(engine, sizes.members)
        token = till_key(engine, tenant_id)
        took = time.perf_counter() - started
        log(f"  {label}: migrated, {sizes.members:,} members in {took:.1f} s")
        rows = []
        created = 0
        for n in workers:
            server = Server("api:treu_app", n, url)
            try:
                requests = Requests(PURCHASES, token, sizes.members, f"w{n}", args.idempotency_key)
                load = drive(server.port, requests, args.clients, sizes)
            finally:
                server.stop()
            created += requests.count
            rows.append(Row("pos", label, n, load))
            log(f"  {label}: pos, {n} worker(s): {summary(load)}")
        with UnitOfWork(engine) as uow:
            report = verify_ledger(uow, tenant_id=tenant_id)
            recorded = uow.conn.execute(select(func.count()).select_from(activities)).scalar_one()
        if not report.ok:
            raise RuntimeError(f"ledger verify ({label}): {report.problems}")
        log(f"  {label}: ledger verify ok, {recorded:,} purchases recorded ({created:,} sent)")
        return rows
    finally:
        engine.dispose()


def bench_bare(args: argparse.Namespace, sizes: Sizes, workers: list[int]) -> list[Row]:
    rows = []
    for n in workers:
        server = Server("api:bare_app", n)
        try:
            requests = Requests("/bare", "-", sizes.members, f"bare{n}", args.idempotency_key)
            load = drive(server.port, requests, args.clients, sizes)
        finally:
            server.stop()
        rows.append(Row("bare", "-", n, load))
        log(f"  bare, {n} worker(s): {summary(load)}")
    return rows


def summary(load: Load) -> str:
    return (
        f"{load.rps:,.0f} requests/s, p50 {load.quantile_ms(0.5):.1f} ms,"
        f" p99 {load.quantile_ms(0.99):.1f} ms, statuses {load.statuses}"
    )


def report(rows: list[Row], clients: int) -> Row:
    floors = {r.workers: r.load.rps for r in rows if r.target == "bare"}
    print()
    print(f"{clients} concurrent keep-alive clients on 127.0.0.1")
    header = (
        f"{'target':<6} {'backend':<7} {'workers':>7} {'requests':>9} {'req/s':>8}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}  statuses"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = r.load.rps / floors[r.workers] if floors.get(r.workers) else 0.0
        statuses = ",".join(f"{s}:{n}" for s, n in sorted(r.load.statuses.items()))
        print(
            f"{r.target:<6} {r.backend:<7} {r.workers:>7} {len(r.load.latencies):>9,}"
            f" {r.load.rps:>8,.0f} {r.load.quantile_ms(0.5):>7.1f}"
            f" {r.load.quantile_ms(0.99):>7.1f} {ratio:>6.2f}  {statuses}"
        )
    return next(r for r in rows if r.target == "pos")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs, under a minute")
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections (C)")
    parser.add_argument("--members", type=int, help="members enrolled (M)")
    parser.add_argument("--duration", type=float, help="seconds measured per run (D)")
    parser.add_argument("--workers", default="1,2", help="server worker counts, e.g. 1,2")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--idempotency-key", action="store_true", help="send an Idempotency-Key with each purchase"
    )
    parser.add_argument("--serve", metavar="APP", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:  # the server process of a run
        serve(args.serve, host="127.0.0.1", port=args.port, workers=int(args.workers),
              factory=True, log_level="warning", access_log=False)  # fmt: skip
        return 0
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        members=args.members or base.members,
        warmup_s=base.warmup_s,
        measure_s=args.duration or base.measure_s,
    )
    workers = [int(n) for n in args.workers.split(",")]
    started = time.perf_counter()
    log(
        f"api benchmark: {args.clients} clients, {sizes.measure_s:g} s per run after"
        f" {sizes.warmup_s:g} s warm-up, workers {workers}, {sizes.members:,} members"
    )
    rows = bench_bare(args, sizes, workers)
    with tempfile.TemporaryDirectory(prefix="treu-bench-api-") as tmp:
        rows += bench_pos("sqlite", f"sqlite:///{Path(tmp) / 'treu.db'}", args, sizes, workers)
    if not args.no_postgres:
        with pg_schema() as (url, _conninfo):
            rows += bench_pos("pg", url, args, sizes, workers)
    headline = report(rows, args.clients)
    bare = next(r for r in rows if r.target == "bare" and r.workers == headline.workers)
    errors = sum(n for r in rows for s, n in r.load.statuses.items() if s >= 300)
    print(f"\nnon-2xx responses: {errors}; total time {time.perf_counter() - started:.1f} s")
    print(
        f"RESULT api pos_rps={headline.load.rps:.0f} bare_rps={bare.load.rps:.0f}"
        f" ratio={headline.load.rps / bare.load.rps:.2f}"
        f" p99_ms={headline.load.quantile_ms(0.99):.1f} {per_configuration(rows)}"
    )
    return 0 if errors == 0 else 1


def per_configuration(rows: list[Row]) -> str:
    """``bare1_rps=… sqlite1_rps=… sqlite1_ratio=… sqlite1_p99_ms=… pg2_…``: every run, the
    ratio against the floor with the same number of workers."""
    floors = {r.workers: r.load.rps for r in rows if r.target == "bare"}
    keys = [f"bare{n}_rps={rps:.0f}" for n, rps in floors.items()]
    for r in rows:
        if r.target == "pos":
            name = f"{r.backend}{r.workers}"
            ratio = r.load.rps / floors[r.workers] if floors.get(r.workers) else 0.0
            keys += [
                f"{name}_rps={r.load.rps:.0f}",
                f"{name}_ratio={ratio:.2f}",
                f"{name}_p99_ms={r.load.quantile_ms(0.99):.1f}",
            ]
    return " ".join(keys)


if __name__ == "__main__":
    sys.exit(main())
