"""The unit of work: one transaction, rolled back unless the service commits.

A service function receives a :class:`UnitOfWork`, does its reads and writes through
``uow.conn``, records domain events with :meth:`UnitOfWork.publish`, and calls
:meth:`UnitOfWork.commit` exactly once at the end. Repositories never commit, so two service
steps ("hold points", "issue voucher", "capture") compose into one atomic change.

Events go to the ``outbox`` table inside the same transaction (a transactional outbox): nothing is
announced for a change that rolled back, and nothing is lost if the process dies after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Engine, Insert, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from treu.clock import Clock, SystemClock
from treu.ids import new_id
from treu.storage.engine import READONLY

T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    tenant_id: str
    type: str
    payload: dict[str, Any]
    dedupe_key: str | None = None
    id: str = field(default_factory=lambda: new_id("event"))


# Called with the events of every committed unit of work, after the commit (metrics count them
# here). A listener must be quick and must not raise; it sees events, never the transaction.
commit_listeners: list[Callable[[Sequence[Event]], None]] = []


class UnitOfWork:
    def __init__(self, engine: Engine, clock: Clock | None = None, *, readonly: bool = False):
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.readonly = readonly
        self._conn: Connection | None = None
        self._events: list[Event] = []
        self._flushed: list[Event] = []  # written to the outbox in this transaction
        self._before_commit: list[Callable[[], None]] = []
        self.committed = False
        # What services read and may read again in this transaction (a programme's revisions):
        # emptied at commit and rollback, so nothing in it outlives the transaction.
        self.cache: dict[Hashable, Any] = {}

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def now(self) -> datetime:
        return self.clock.now()

    def __enter__(self) -> Self:
        conn = self.engine.connect()
        if self.readonly:
            conn = conn.execution_options(**{READONLY: True})
        conn.begin()
        self._conn = conn
        self._events = []
        self._flushed = []
        self._before_commit = []
        self.cache = {}
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if not self.committed:
                self._conn.rollback()
        finally:
            self._conn.close()
            self._conn = None
            self.cache = {}

    def publish(self, event: Event) -> None:
        self._events.append(event)

    def flush_events(self) -> None:
        """Write the events published so far to the outbox, inside the open transaction."""
        if self._events:
            now = self.now()
            self.conn.execute(
                _insert_outbox(),
                [
                    {
                        "id": e.id,
                        "tenant_id": e.tenant_id,
                        "type": e.type,
                        "payload": e.payload,
                        "dedupe_key": e.dedupe_key,
                        "created_at": now,
                    }
                    for e in self._events
                ],
            )
            self._flushed.extend(self._events)
        self._events = []

    def before_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` inside the transaction just before the next commit, once.

        For a caller that wraps a service function which commits itself and wants a row of its
        own (the audit log) in the same transaction: the row is written only if the service
        commits a change. A rejected request (an exception) and an idempotent replay (no
        commit) write nothing, and a rollback forgets the hooks."""
        self._before_commit.append(fn)

    def commit(self) -> None:
        hooks, self._before_commit = self._before_commit, []
        for hook in hooks:
            hook()
        self.flush_events()
        self.conn.commit()
        self.committed = True
        self.cache = {}
        announced, self._flushed = self._flushed, []
        for listener in commit_listeners:
            listener(announced)

    def rollback(self) -> None:
        self.conn.rollback()
        self._events = []
        self._flushed = []
        self._before_commit = []
        self.cache = {}


UowFactory = Callable[[], UnitOfWork]


@cache
def _insert_outbox() -> Insert:
    """Built once (every committing unit of work runs it; a new statement each time would cost
    SQLAlchemy a cache key), on first use: storage must not depend on domain tables at import."""
    from treu.outbox.tables import outbox

    return insert(outbox)


def is_unique_violation(exc: DBAPIError) -> bool:
    return isinstance(exc, IntegrityError) and "unique" in str(exc.orig).lower()


def is_retryable(exc: DBAPIError) -> bool:
    """Serialization failures, deadlocks and SQLite lock time-outs: the whole use case may retry."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in {"40001", "40P01"}:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def retrying(fn: Callable[[], T], *, attempts: int = 5) -> T:
    """Run a whole use case again on a retryable database error (never half of one)."""
    for attempt in range(attempts):
        try:
            return fn()
        except DBAPIError as exc:
            if attempt == attempts - 1 or not is_retryable(exc):
                raise
    raise AssertionError("unreachable")
