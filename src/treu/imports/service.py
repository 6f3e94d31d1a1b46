"""Bulk import of members and activities from CSV files: resumable, row by row, with a report.

A run reads the file from its job's checkpoint in **segments** of up to ``batch_size`` rows and
commits each segment in one transaction together with the checkpoint that covers it (the byte
offset and line of the next row, the counts) and its lines of the error report. A crash,
``kill -9`` or Ctrl-C at any moment therefore leaves the job at the end of the last committed
segment, and running the same file again (found by its SHA-256) seeks there: no row is lost and
none is imported twice. A finished job is not run again.

* **Activities.** A run of purchases goes to ``activities.service.record_purchases`` (the batch
  path: rules as of each purchase's date, idempotent by external id); a return or an action is a
  segment of its own (``record_return`` / ``record_action``). Those use cases commit, so the
  checkpoint is written first in their transaction and their commit covers both. A purchase the
  batch rejects (a blocked member, an impossible basket, ...) is taken out, reported, and the
  segment runs again without it.
* **Members.** Upsert by identifier, each row in a savepoint: a row whose identifiers find a
  member updates it, otherwise a member is created (without the enrolment mechanics: an
  imported member joined elsewhere, long ago). An opening balance becomes a lot
  (``ledger.postings.open_balance``), once per member and expiry date.
* **Dry run.** The same code in transactions that are always rolled back; the errors go to a
  callback instead of the job.

Two runs of one file at once: each checkpoint update is guarded by the offset it starts from;
the run that finds it moved stops with ``import_in_progress`` and its segment rolls back.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from treu.activities.service import (
    FUTURE_TOLERANCE,
    record_action,
    record_purchases,
    record_return,
)
from treu.clock import Clock
from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound, TreuError
from treu.ids import new_id
from treu.imports.model import (
    IDENTIFIER_COLUMNS,
    ROW,
    ActionRow,
    ActivityRow,
    FieldProblem,
    ImportJob,
    ImportKind,
    JobStatus,
    MemberRow,
    OpeningBalance,
    Progress,
    PurchaseRow,
    ReturnRow,
    RowError,
    RowInvalid,
    check_header,
    parse_activity,
    parse_member,
)
from treu.imports.reader import FileInfo, Record, read_header, read_records
from treu.imports.tables import import_errors, import_jobs
from treu.ledger import postings
from treu.ledger.tables import transfers
from treu.members.model import Channel, IdentifierKind, MemberStatus, normalise_identifier
from treu.members.service import create_member, resolve_member_ids
from treu.members.tables import consents, identifiers, members
from treu.programmes.model import Programme
from treu.programmes.service import load_programme, store_ids, tenant_secret
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork, UowFactory, is_unique_violation, retrying

T = TypeVar("T")
BATCH_SIZE = 1_000


class Transact(Protocol):
    """Runs ``fn`` in a unit of work of its own (retried whole on a retryable database error)
    and returns its result: ``Runtime.write`` in the API, :func:`transactions` elsewhere."""

    def __call__(self, fn: Callable[[UnitOfWork], T], /) -> T: ...


def transactions(new_uow: UowFactory) -> Transact:
    def transact(fn: Callable[[UnitOfWork], T]) -> T:
        def once() -> T:
            with new_uow() as uow:
                return fn(uow)

        return retrying(once)

    return transact


# --- jobs ----------------------------------------------------------------------------------


def open_import(
    uow: UnitOfWork, *, programme_id: str, kind: ImportKind, file: FileInfo, source: str
) -> ImportJob:
    """The job of this file for this programme: the one started before (same content, found by
    its SHA-256), or a new one at the first row."""
    programme = load_programme(uow, programme_id)
    found = _find_job(uow, programme_id, kind, file.sha256)
    if found is not None:
        return found
    now = uow.now()
    job_id = new_id("import_job")
    try:
        with uow.conn.begin_nested():
            uow.conn.execute(
                insert(import_jobs).values(
                    id=job_id,
                    tenant_id=programme.tenant_id,
                    programme_id=programme_id,
                    kind=kind.value,
                    file_name=file.name[:255],
                    file_size=file.size,
                    fingerprint=file.sha256,
                    status=JobStatus.RUNNING.value,
                    rows_done=0,
                    rows_ok=0,
                    rows_failed=0,
                    next_offset=file.body_offset,
                    next_line=file.body_line,
                    source=source,
                    started_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as exc:  # the same file opened a moment ago by another run
        if not is_unique_violation(exc):
            raise
        again = _find_job(uow, programme_id, kind, file.sha256)
        assert again is not None
        return again
    uow.commit()
    return _job(uow, job_id)


def get_import(uow: UnitOfWork, *, tenant_id: str, job_id: str) -> ImportJob:
    row = uow.conn.execute(
        select(import_jobs).where(import_jobs.c.id == job_id, import_jobs.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(ErrorCode.IMPORT_NOT_FOUND, f"no import {job_id}")
    return _to_job(row)


def list_import_errors(uow: UnitOfWork, *, tenant_id: str, job_id: str) -> Iterator[RowError]:
    """The job's error report in file order, streamed (read it inside the unit of work)."""
    get_import(uow, tenant_id=tenant_id, job_id=job_id)
    rows = uow.conn.execution_options(yield_per=1_000).execute(
        select(import_errors.c.line, import_errors.c.column_name, import_errors.c.reason)
        .where(import_errors.c.job_id == job_id)
        .order_by(import_errors.c.line, import_errors.c.column_name)
    )
    for line, column, reason in rows:
        yield RowError(int(line), column, reason)


def fail_import(uow: UnitOfWork, *, job_id: str, error: str) -> None:
    """Mark a job stopped by an unexpected error (a bug, the database gone): the status says so
    until a run of the same file resumes it."""
    uow.conn.execute(
        update(import_jobs)
        .where(import_jobs.c.id == job_id, import_jobs.c.status != JobStatus.DONE.value)
        .values(status=JobStatus.FAILED.value, error=error[:2000], updated_at=uow.now())
    )
    uow.commit()


def _find_job(
    uow: UnitOfWork, programme_id: str, kind: ImportKind, sha256: str
) -> ImportJob | None:
    row = uow.conn.execute(
        select(import_jobs).where(
            import_jobs.c.programme_id == programme_id,
            import_jobs.c.kind == kind.value,
            import_jobs.c.fingerprint == sha256,
        )
    ).first()
    return None if row is None else _to_job(row)


def _job(uow: UnitOfWork, job_id: str) -> ImportJob:
    return _to_job(uow.conn.execute(select(import_jobs).where(import_jobs.c.id == job_id)).one())


def _to_job(row: Row[Any]) -> ImportJob:
    return ImportJob(
        id=row.id,
        tenant_id=row.tenant_id,
        programme_id=row.programme_id,
        kind=ImportKind(row.kind),
        file_name=row.file_name,
        file_size=int(row.file_size),
        fingerprint=row.fingerprint,
        status=JobStatus(row.status),
        rows_done=int(row.rows_done),
        rows_ok=int(row.rows_ok),
        rows_failed=int(row.rows_failed),
        next_offset=int(row.next_offset),
        next_line=int(row.next_line),
        started_at=row.started_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        error=row.error,
    )


# --- running -------------------------------------------------------------------------------


ProgressFn = Callable[[Progress], None]


def run_import(
    transact: Transact,
    *,
    job_id: str,
    path: Path,
    batch_size: int = BATCH_SIZE,
    on_progress: ProgressFn | None = None,
) -> ImportJob:
    """Import the file of a job from its checkpoint to the end, one segment per transaction.

    ``path`` is the job's file (the caller found the job by the file's hash). An exception from
    ``on_progress`` (called after each committed segment) stops the run there, as a crash
    would; the next run resumes after that segment."""
    job = transact(lambda uow: _job(uow, job_id))
    if job.status is JobStatus.DONE:
        return job
    if path.stat().st_size != job.file_size:
        raise InvalidInput(
            ErrorCode.INVALID_IMPORT_FILE,
            f"{path.name} is not the file of import {job.id} any more: it changed",
        )
    sink = _JobSink(job)
    with path.open("rb") as f:
        header = read_header(f)[0]
        importer = transact(
            lambda uow: _importer(uow, job.programme_id, job.kind, header, f"import:{job.id}")
        )
        at = _Position(job.next_offset, job.next_line, job.rows_ok, job.rows_failed)
        records = read_records(f, importer.header, offset=at.offset, line=at.line)
        for segment in importer.segments(records, batch_size):
            at = importer.commit(transact, segment, at, sink)
            if on_progress is not None:
                on_progress(at.progress(job.file_size))
    return transact(lambda uow: sink.finish(uow, at))


@dataclass(frozen=True)
class DryRunResult:
    rows_done: int
    rows_ok: int
    rows_failed: int


def dry_run_import(
    new_uow: UowFactory,
    *,
    programme_id: str,
    kind: ImportKind,
    path: Path,
    on_error: Callable[[RowError], None],
    batch_size: int = BATCH_SIZE,
    on_progress: ProgressFn | None = None,
) -> DryRunResult:
    """Validate a whole file through the same code as :func:`run_import`, in transactions that
    are always rolled back: nothing is written, no job is recorded. Rows that would fail go to
    ``on_error``. (Each segment is rolled back before the next: a members file that names one
    person in two segments is checked as two new members.)"""
    prototype = new_uow()
    transact = transactions(lambda: _RolledBack(prototype.engine, prototype.clock))
    size = path.stat().st_size
    with path.open("rb") as f:
        header, offset, line = read_header(f)
        importer = transact(
            lambda uow: _importer(uow, programme_id, kind, header, "import:dry-run")
        )
        seen = _Seen()
        if isinstance(importer, _Activities):
            importer.dry_run_purchases = seen
        at = _Position(offset, line, 0, 0)
        try:
            for segment in importer.segments(
                read_records(f, importer.header, offset=offset, line=line), batch_size
            ):
                at = importer.commit(transact, segment, at, None)
                for error in _errors(segment):
                    on_error(error)
                if on_progress is not None:
                    on_progress(at.progress(size))
        finally:
            seen.close()
    return DryRunResult(at.ok + at.failed, at.ok, at.failed)


class _RolledBack(UnitOfWork):
    """A unit of work whose commit writes its events and keeps going; leaving it rolls
    everything back (the dry run)."""

    def commit(self) -> None:
        self.flush_events()


@dataclass(frozen=True)
class _Position:
    offset: int  # where the next row starts
    line: int
    ok: int
    failed: int

    def after(self, segment: list[_Item]) -> _Position:
        failed = sum(1 for item in segment if item.problems)
        last = segment[-1].record
        return _Position(
            last.end, last.next_line, self.ok + len(segment) - failed, self.failed + failed
        )

    def progress(self, size: int) -> Progress:
        return Progress(self.offset, size, self.ok + self.failed, self.ok, self.failed)


@dataclass
class _Item:
    """One record of a segment: what it parsed to, or why it cannot be imported."""

    record: Record
    row: Any = None  # MemberRow | ActivityRow
    problems: list[FieldProblem] = field(default_factory=list)


def _errors(segment: Iterable[_Item]) -> Iterator[RowError]:
    for item in segment:
        reasons: dict[str, list[str]] = {}
        for problem in item.problems:
            reasons.setdefault(problem.column, []).append(problem.reason)
        for column, texts in reasons.items():
            yield RowError(item.record.line, column[:64], "; ".join(texts)[:2000])


class _JobSink:
    """Where a real run writes its checkpoint and error report: the job's rows."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job

    def checkpoint(
        self, uow: UnitOfWork, before: _Position, after: _Position, segment: list[_Item]
    ) -> None:
        """Move the checkpoint from ``before`` to ``after`` and write the segment's errors,
        inside the caller's transaction. The update is guarded by the offset it starts from:
        another run of the same file that got there first makes it fail (nothing is written)."""
        moved = uow.conn.execute(
            _CHECKPOINT,
            {
                "job_id": self.job.id,
                "from_offset": before.offset,
                "offset": after.offset,
                "line": after.line,
                "ok": after.ok,
                "failed": after.failed,
                "done": after.ok + after.failed,
                "now": uow.now(),
            },
        )
        if moved.rowcount != 1:
            raise Conflict(
                ErrorCode.IMPORT_IN_PROGRESS,
                f"another run of import {self.job.id} moved past line {before.line}: it is "
                "importing this file now (or has finished it)",
            )
        errors = list(_errors(segment))
        if errors:
            uow.conn.execute(
                insert(import_errors),
                [
                    {
                        "id": new_id("import_error"),
                        "tenant_id": self.job.tenant_id,
                        "job_id": self.job.id,
                        "line": e.line,
                        "column_name": e.column,
                        "reason": e.reason,
                    }
                    for e in errors
                ],
            )

    def finish(self, uow: UnitOfWork, at: _Position) -> ImportJob:
        now = uow.now()
        uow.conn.execute(
            update(import_jobs)
            .where(
                import_jobs.c.id == self.job.id,
                import_jobs.c.next_offset == at.offset,
                import_jobs.c.status != JobStatus.DONE.value,
            )
            .values(status=JobStatus.DONE.value, finished_at=now, updated_at=now, error=None)
        )
        uow.commit()
        return _job(uow, self.job.id)


_CHECKPOINT = (
    update(import_jobs)
    .where(
        import_jobs.c.id == bindparam("job_id"),
        import_jobs.c.next_offset == bindparam("from_offset"),
        import_jobs.c.status != JobStatus.DONE.value,
    )
    .values(
        next_offset=bindparam("offset"),
        next_line=bindparam("line"),
        rows_ok=bindparam("ok"),
        rows_failed=bindparam("failed"),
        rows_done=bindparam("done"),
        updated_at=bindparam("now"),
        status=JobStatus.RUNNING.value,
        error=None,
    )
)


# --- importers -----------------------------------------------------------------------------


def _importer(
    uow: UnitOfWork, programme_id: str, kind: ImportKind, header: list[str], actor: str
) -> _Importer:
    programme = load_programme(uow, programme_id)
    names = check_header(kind, header)
    if kind is ImportKind.MEMBERS:
        secret = tenant_secret(uow, programme.tenant_id)
        return _Members(programme, names, uow.clock, actor, secret)
    return _Activities(programme, names, uow.clock, actor)


class _Importer:
    def __init__(self, programme: Programme, header: list[str], clock: Clock, actor: str) -> None:
        self.programme = programme
        self.header = header
        self.clock = clock  # parsing runs outside a transaction: "in the future" by this clock
        self.actor = actor

    def parse(self, record: Record) -> _Item:
        raise NotImplementedError

    def segments(self, records: Iterable[Record], size: int) -> Iterator[list[_Item]]:
        pending: list[_Item] = []
        for record in records:
            pending.append(self.parse(record))
            if len(pending) >= size:
                yield pending
                pending = []
        if pending:
            yield pending

    def commit(
        self, transact: Transact, segment: list[_Item], at: _Position, sink: _JobSink | None
    ) -> _Position:
        raise NotImplementedError

    def _parsed(self, record: Record, parse: Callable[[], Any]) -> _Item:
        if record.problem is not None:
            return _Item(record, problems=[FieldProblem(ROW, record.problem)])
        try:
            return _Item(record, parse())
        except RowInvalid as exc:
            return _Item(record, problems=list(exc.problems))


# --- activities ----------------------------------------------------------------------------


class _Activities(_Importer):
    # A dry run rolls each segment back, so a return finds no purchase recorded earlier in the
    # same file: it remembers the external ids of the purchases it accepted (on disk, so memory
    # stays constant) and takes a return of one of them as importable.
    dry_run_purchases: _Seen | None = None

    def parse(self, record: Record) -> _Item:
        programme = self.programme
        item = self._parsed(
            record,
            lambda: parse_activity(record.values, tz=programme.tz, currency=programme.currency),
        )
        row = item.row
        if isinstance(row, PurchaseRow) and row.purchase.currency.upper() != programme.currency:
            item.problems.append(
                FieldProblem("currency", f"the programme counts in {programme.currency}")
            )
        return item

    def segments(self, records: Iterable[Record], size: int) -> Iterator[list[_Item]]:
        """Runs of purchases (with the rows that failed to parse among them) up to ``size``;
        each return or action alone, because each is a use case of its own."""
        pending: list[_Item] = []
        for item in (self.parse(record) for record in records):
            if isinstance(item.row, ReturnRow | ActionRow):
                if pending:
                    yield pending
                    pending = []
                yield [item]
                continue
            pending.append(item)
            if len(pending) >= size:
                yield pending
                pending = []
        if pending:
            yield pending

    def commit(
        self, transact: Transact, segment: list[_Item], at: _Position, sink: _JobSink | None
    ) -> _Position:
        while True:
            try:
                after = transact(partial(self._attempt, segment=segment, at=at, sink=sink))
                if self.dry_run_purchases is not None:
                    self.dry_run_purchases.add(_accepted_purchases(segment))
                return after
            except TreuError as exc:
                if exc.code is ErrorCode.IMPORT_IN_PROGRESS:
                    raise
                if self._return_of_a_purchase_in_the_file(exc, segment):
                    return at.after(segment)
                culprit = self._culprit(exc, segment)
                if culprit is None and len(segment) < 2:
                    raise
                if culprit is None:  # cannot tell which row: halve the segment until it can
                    middle = len(segment) // 2
                    at = self.commit(transact, segment[:middle], at, sink)
                    return self.commit(transact, segment[middle:], at, sink)
                culprit.problems.append(_problem(exc))

    def _attempt(
        self, uow: UnitOfWork, segment: list[_Item], at: _Position, sink: _JobSink | None
    ) -> _Position:
        self._precheck(uow, segment)
        after = at.after(segment)
        if sink is not None:
            sink.checkpoint(uow, at, after, segment)
        good = [item.row for item in segment if not item.problems]
        if good and isinstance(good[0], PurchaseRow):
            items = [(row.member, row.purchase) for row in good]
            record_purchases(uow, programme_id=self.programme.id, items=items)
        elif good and isinstance(good[0], ReturnRow):
            record_return(uow, programme_id=self.programme.id, ret=good[0].ret)
        elif good and isinstance(good[0], ActionRow):
            row = good[0]
            record_action(uow, programme_id=self.programme.id, member=row.member, action=row.action)
        if not uow.committed:  # nothing to record, or a replay (use cases commit only news)
            uow.commit()
        return after

    def _precheck(self, uow: UnitOfWork, segment: list[_Item]) -> None:
        """Take out, before the batch runs, the rows it would refuse for reasons that are cheap
        to see in bulk (unknown member, unknown store, a time in the future): each refusal
        costs the batch a second run."""
        rows = [(item, item.row) for item in segment if not item.problems]
        references = {row.member for _, row in rows if getattr(row, "member", None)}
        found = resolve_member_ids(uow, programme_id=self.programme.id, references=references)
        stores = store_ids(uow, self.programme.id)
        latest = uow.now() + FUTURE_TOLERANCE
        for item, row in rows:
            activity = _activity_of(row)
            member = getattr(row, "member", None)
            if member is not None and member not in found:
                item.problems.append(
                    FieldProblem("member", f"member_not_found: no member {member}")
                )
            store = getattr(activity, "store", None)
            if store is not None and store not in stores:
                item.problems.append(FieldProblem("store", f"store_not_found: no store {store!r}"))
            if activity.occurred_at is not None and activity.occurred_at > latest:
                item.problems.append(FieldProblem("occurred_at", "is in the future"))

    def _return_of_a_purchase_in_the_file(self, exc: TreuError, segment: list[_Item]) -> bool:
        row = segment[0].row if len(segment) == 1 else None
        return (
            self.dry_run_purchases is not None
            and exc.code is ErrorCode.PURCHASE_NOT_FOUND
            and isinstance(row, ReturnRow)
            and row.ret.purchase_external_id in self.dry_run_purchases
        )

    @staticmethod
    def _culprit(exc: TreuError, segment: list[_Item]) -> _Item | None:
        good = [item for item in segment if not item.problems]
        if len(good) == 1:
            return good[0]
        # record_purchases names the item it refused in a note ("record_purchases: item 3, …")
        for note in getattr(exc, "__notes__", ()):
            match = _ITEM_NOTE.match(note)
            if match and int(match.group(1)) < len(good):
                return good[int(match.group(1))]
        return None


def _accepted_purchases(segment: list[_Item]) -> list[str]:
    return [
        item.row.purchase.external_id
        for item in segment
        if not item.problems and isinstance(item.row, PurchaseRow)
    ]


class _Seen:
    """A set of strings kept in a private temporary SQLite file (deleted when closed)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a temporary on-disk database of its own
        self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, ids: list[str]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(i,) for i in ids])

    def __contains__(self, id_: object) -> bool:
        return self._db.execute("SELECT 1 FROM seen WHERE id = ?", (id_,)).fetchone() is not None

    def close(self) -> None:
        self._db.close()


_ITEM_NOTE = re.compile(r"record_purchases: item (\d+),")
# The column an error of a use case is about, when its details do not name one.
_COLUMN_OF = {
    ErrorCode.MEMBER_NOT_FOUND: "member",
    ErrorCode.MEMBER_BLOCKED: "member",
    ErrorCode.MEMBER_ERASED: "member",
    ErrorCode.INVALID_IDENTIFIER: "member",
    ErrorCode.STORE_NOT_FOUND: "store",
    ErrorCode.CURRENCY_MISMATCH: "currency",
    ErrorCode.PURCHASE_NOT_FOUND: "purchase_external_id",
    ErrorCode.ACTION_LIMIT_REACHED: "action_type",
}


def _problem(exc: TreuError) -> FieldProblem:
    paths = [str(e.get("path", "")) for e in exc.details.get("errors", [])]
    column = paths[0].split(".")[0] if paths and paths[0] else _COLUMN_OF.get(exc.code, ROW)
    return FieldProblem(column, str(exc))


def _activity_of(row: ActivityRow) -> Any:
    if isinstance(row, PurchaseRow):
        return row.purchase
    if isinstance(row, ReturnRow):
        return row.ret
    return row.action


# --- members -------------------------------------------------------------------------------


class _Members(_Importer):
    def __init__(
        self, programme: Programme, header: list[str], clock: Clock, actor: str, secret: str
    ) -> None:
        super().__init__(programme, header, clock, actor)
        self.secret = secret

    def parse(self, record: Record) -> _Item:
        now = self.clock.now()
        return self._parsed(
            record, lambda: parse_member(record.values, tz=self.programme.tz, now=now)
        )

    def commit(
        self, transact: Transact, segment: list[_Item], at: _Position, sink: _JobSink | None
    ) -> _Position:
        return transact(lambda uow: self._attempt(uow, segment, at, sink))

    def _attempt(
        self, uow: UnitOfWork, segment: list[_Item], at: _Position, sink: _JobSink | None
    ) -> _Position:
        for item in segment:
            if item.problems:
                continue
            try:
                # Every check of a row runs before its first write, and its events are
                # published after its last: a refused row leaves nothing behind, not even an
                # event. The savepoint is the backstop for a database error in between.
                with uow.conn.begin_nested():
                    self._upsert(uow, item.row, item.record.line)
            except RowInvalid as exc:
                item.problems.extend(exc.problems)
            except TreuError as exc:
                item.problems.append(FieldProblem(_COLUMN_OF.get(exc.code, ROW), str(exc)))
        after = at.after(segment)
        if sink is not None:
            sink.checkpoint(uow, at, after, segment)
        uow.commit()
        return after

    def _upsert(self, uow: UnitOfWork, row: MemberRow, line: int) -> None:
        normalised = self._normalised(row)
        owners = self._owners(uow, normalised)
        if len(set(owners.values())) > 1:
            named = ", ".join(f"{kind} → {mid}" for kind, mid in sorted(owners.items()))
            raise RowInvalid(
                [FieldProblem(ROW, f"the identifiers name different members: {named}")]
            )
        existing = next(iter(owners.values()), None)
        opening = row.opening
        if existing is not None:
            lock_members(uow, existing)
            opening = self._opening_due(uow, existing, opening)
            self._update(uow, existing, row, normalised, owners)
            member_id = existing
        else:
            member_id = self._create(uow, row)
        if opening is not None:
            self._open_balance(uow, member_id, opening, line)

    def _normalised(self, row: MemberRow) -> dict[IdentifierKind, str]:
        problems, out = [], {}
        column = {kind: col for col, kind in IDENTIFIER_COLUMNS.items()}
        for kind, value in row.identifiers.items():
            try:
                out[kind] = normalise_identifier(
                    kind, value, country=self.programme.document.country, secret=self.secret
                )
            except InvalidInput as exc:
                problems.append(FieldProblem(column[kind], str(exc)))
        if problems:
            raise RowInvalid(problems)
        return out

    def _owners(
        self, uow: UnitOfWork, normalised: dict[IdentifierKind, str]
    ) -> dict[IdentifierKind, str]:
        owners = {}
        for kind, value in normalised.items():
            owner = uow.conn.execute(
                _OWNER, {"programme_id": self.programme.id, "kind": kind.value, "value": value}
            ).scalar()
            if owner is not None:
                owners[kind] = str(owner)
        return owners

    def _opening_due(
        self, uow: UnitOfWork, member_id: str, opening: OpeningBalance | None
    ) -> OpeningBalance | None:
        """The opening balance still to credit: None if this one was imported before."""
        if opening is None:
            return None
        before = uow.conn.execute(
            _OPENED,
            {"tenant_id": self.programme.tenant_id, "key": _opening_key(member_id, opening)},
        ).scalar()
        if before is None:
            return opening
        if int(before) == opening.points:
            return None
        raise RowInvalid(
            [
                FieldProblem(
                    "points",
                    f"an opening balance of {before} points with this expiry was imported for "
                    f"member {member_id} before",
                )
            ]
        )

    def _update(
        self,
        uow: UnitOfWork,
        member_id: str,
        row: MemberRow,
        normalised: dict[IdentifierKind, str],
        owners: dict[IdentifierKind, str],
    ) -> None:
        current = uow.conn.execute(select(members).where(members.c.id == member_id)).one()
        if current.status in (MemberStatus.ERASED, MemberStatus.MERGED):
            raise RowInvalid(
                [FieldProblem(ROW, f"member_erased: member {member_id} is {current.status}")]
            )
        values = _profile(row)
        if row.attributes is not None:
            values["attributes"] = {**current.attributes, **row.attributes}
        changed = sorted(k for k, v in values.items() if getattr(current, k) != v)
        if changed:
            uow.conn.execute(
                update(members)
                .where(members.c.id == member_id)
                .values(**{k: values[k] for k in changed})
            )
        new_ids = {kind: value for kind, value in normalised.items() if kind not in owners}
        if new_ids:
            _add_identifiers(uow, self.programme, member_id, new_ids)
            changed.append("identifiers")
        latest: dict[str, bool] = {
            r.channel: bool(r.granted)
            for r in uow.conn.execute(_CONSENTS, {"member_id": member_id})
        }
        given = {c: g for c, g in row.consents.items() if latest.get(c.value) != g}
        for channel, granted in given.items():
            _add_consent(uow, self.programme.tenant_id, member_id, channel, granted)
        if given:
            changed.append("consents")
        if changed:
            uow.publish(
                Event(
                    self.programme.tenant_id,
                    "member.updated",
                    {"member_id": member_id, "fields": sorted(changed)},
                )
            )

    def _create(self, uow: UnitOfWork, row: MemberRow) -> str:
        member = create_member(
            uow,
            programme_id=self.programme.id,
            identifiers_=dict(row.identifiers),
            name=row.name,
            birthday=row.birthday,
            locale=row.locale,
            attributes=row.attributes,
            consents_=dict(row.consents),
            source="import",
        )
        kept = {
            k: v
            for k, v in (
                ("status", row.status and row.status.value),
                ("enrolled_at", row.enrolled_at),
            )
            if v is not None
        }
        if kept:  # the member as they were in the system they come from
            uow.conn.execute(update(members).where(members.c.id == member.id).values(**kept))
        return member.id

    def _open_balance(
        self, uow: UnitOfWork, member_id: str, opening: OpeningBalance, line: int
    ) -> None:
        lock_members(uow, member_id)
        reason = f"opening balance ({self.actor}, line {line})"
        postings.open_balance(
            uow,
            self.programme,
            member_id=member_id,
            amount=opening.points,
            key=_opening_key(member_id, opening),
            at=uow.now(),
            expires_at=opening.expires_at,
            reason=reason,
            actor=self.actor,
        )
        uow.publish(
            Event(
                self.programme.tenant_id,
                "points.adjusted",
                {
                    "member_id": member_id,
                    "points": opening.points,
                    "reason": reason,
                    "actor": self.actor,
                    "corrects": None,
                    "kind": "opening",
                },
            )
        )


def _opening_key(member_id: str, opening: OpeningBalance) -> str:
    """One opening balance per member and expiry: a member listed again with the same expiry
    (a second file, a migration run twice) is not credited twice."""
    expiry = opening.expires_at.isoformat() if opening.expires_at else "never"
    return f"opening:{member_id}:{expiry}"


def _profile(row: MemberRow) -> dict[str, Any]:
    given = {
        "name": row.name,
        "birthday": row.birthday,
        "locale": row.locale,
        "status": row.status and row.status.value,
        "enrolled_at": row.enrolled_at,
    }
    return {k: v for k, v in given.items() if v is not None}


def _add_identifiers(
    uow: UnitOfWork, programme: Programme, member_id: str, given: dict[IdentifierKind, str]
) -> None:
    now = uow.now()
    uow.conn.execute(
        insert(identifiers),
        [
            {
                "id": new_id("identifier"),
                "tenant_id": programme.tenant_id,
                "programme_id": programme.id,
                "member_id": member_id,
                "kind": kind.value,
                "value": value,
                "created_at": now,
            }
            for kind, value in given.items()
        ],
    )


def _add_consent(
    uow: UnitOfWork, tenant_id: str, member_id: str, channel: Channel, granted: bool
) -> None:
    uow.conn.execute(
        insert(consents).values(
            id=new_id("consent"),
            tenant_id=tenant_id,
            member_id=member_id,
            channel=channel.value,
            granted=granted,
            source="import",
            recorded_at=uow.now(),
        )
    )


_OWNER = select(identifiers.c.member_id).where(
    identifiers.c.programme_id == bindparam("programme_id"),
    identifiers.c.kind == bindparam("kind"),
    identifiers.c.value == bindparam("value"),
)
_OPENED = select(transfers.c.amount).where(
    transfers.c.tenant_id == bindparam("tenant_id"),
    transfers.c.idempotency_key == bindparam("key"),
)
# The latest consent per channel: rows come oldest first, so a later one overwrites.
_CONSENTS = (
    select(consents.c.channel, consents.c.granted)
    .where(consents.c.member_id == bindparam("member_id"))
    .order_by(consents.c.id)
)
