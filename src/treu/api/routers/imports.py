"""Bulk import as background jobs, and streamed exports.

``POST /v1/imports`` takes the CSV file as the request body (``Content-Type: text/csv``), keeps it
in ``TREU_IMPORT_DIR`` and runs the import in a background thread of this process; the answer
(202) is the job, which ``GET /v1/imports/{id}`` reports on. Uploading the same file again finds
the same job (by the file's SHA-256): an interrupted one resumes at its checkpoint (after a
restart, too), a finished one is not run again. Exports stream from a read-only transaction.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from treu.api.deps import Rt, Runtime, Who, needs, programme_id_for
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.config import get_settings
from treu.errors import ErrorCode, NotFound, TreuError
from treu.exports.model import MEDIA_TYPES, ExportFormat, ExportKind, csv_lines, encode
from treu.exports.service import export_rows
from treu.imports.model import ImportJob, ImportKind, JobStatus
from treu.imports.reader import inspect_file
from treu.imports.service import (
    BATCH_SIZE,
    fail_import,
    get_import,
    list_import_errors,
    open_import,
    run_import,
)
from treu.storage.uow import UnitOfWork

log = logging.getLogger("treu.api.imports")
router = APIRouter(prefix="/v1", tags=["import and export"])


class ImportRead(BaseModel):
    id: str
    programme_id: str
    kind: ImportKind
    file_name: str
    file_size: int
    status: JobStatus
    rows_done: int
    rows_ok: int
    rows_failed: int
    next_line: int
    progress: float  # share of the file behind the checkpoint, 0..1
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, job: ImportJob) -> ImportRead:
        return cls(
            id=job.id,
            programme_id=job.programme_id,
            kind=job.kind,
            file_name=job.file_name,
            file_size=job.file_size,
            status=job.status,
            rows_done=job.rows_done,
            rows_ok=job.rows_ok,
            rows_failed=job.rows_failed,
            next_line=job.next_line,
            progress=round(job.fraction, 4),
            started_at=job.started_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
            error=job.error,
        )


_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _streamed(*media_types: str) -> dict[int | str, dict[str, Any]]:
    content = {m: {"schema": {"type": "string"}} for m in media_types}
    return {200: {"description": "Streamed, one line at a time.", "content": content}}


@router.post(
    "/imports",
    status_code=202,
    dependencies=[needs(P.DATA_IMPORT)],
    openapi_extra=_CSV_BODY,
)
async def create_import(
    request: Request,
    rt: Rt,
    who: Who,
    programme: Annotated[str, Query(max_length=64, description="Programme key.")],
    kind: Annotated[ImportKind, Query(description="members or activities")],
    file_name: Annotated[str, Query(min_length=1, max_length=255)] = "upload.csv",
) -> ImportRead:
    """Upload a CSV file (the request body, ``Content-Type: text/csv``) and import it in the
    background; poll ``GET /v1/imports/{id}``. The same file again resumes (or, once done,
    only reports) its job. Formats: docs/import-export.md."""
    programme_id = await run_in_threadpool(
        rt.read, lambda uow: programme_id_for(uow, who, programme)
    )
    kept = await _receive(request, _import_dir() / f"upload-{uuid.uuid4().hex}.csv")
    try:
        info = await run_in_threadpool(inspect_file, kept, kind)
        job = await run_in_threadpool(
            rt.write,
            lambda uow: open_import(
                uow,
                programme_id=programme_id,
                kind=kind,
                file=replace(info, name=Path(file_name).name or "upload.csv"),
                source="api",
            ),
        )
    except BaseException:
        kept.unlink(missing_ok=True)
        raise
    if job.status is JobStatus.DONE:
        kept.unlink(missing_ok=True)
    else:
        _start(rt, job, kept)
    return ImportRead.of(job)


@router.get("/imports/{import_id}", dependencies=[needs(P.DATA_IMPORT)])
def read_import(rt: Rt, who: Who, import_id: str) -> ImportRead:
    """Where an import stands: status, rows done / imported / failed, progress through the
    file, and the error that stopped it (if one did)."""
    return ImportRead.of(rt.read(lambda uow: _job_for(uow, who, import_id)))


@router.get(
    "/imports/{import_id}/errors",
    dependencies=[needs(P.DATA_IMPORT)],
    response_class=StreamingResponse,
    responses=_streamed("text/csv"),
)
def read_import_errors(rt: Rt, who: Who, import_id: str) -> StreamingResponse:
    """The error report as CSV (``line,column,reason``), so far: the rows that could not be
    imported and why, in file order."""
    job = rt.read(lambda uow: _job_for(uow, who, import_id))

    def lines() -> Iterator[str]:
        with rt.uow(readonly=True) as uow:
            errors = list_import_errors(uow, tenant_id=job.tenant_id, job_id=job.id)
            rows = ({"line": e.line, "column": e.column, "reason": e.reason} for e in errors)
            yield from csv_lines(("line", "column", "reason"), rows)

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{job.id}.errors.csv"'},
    )


@router.get(
    "/exports/{kind}",
    dependencies=[needs(P.DATA_EXPORT)],
    response_class=StreamingResponse,
    responses=_streamed(*MEDIA_TYPES.values()),
)
def export(
    rt: Rt,
    who: Who,
    kind: ExportKind,
    programme: Annotated[str, Query(max_length=64, description="Programme key.")],
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="csv or jsonl")
    ] = ExportFormat.CSV,
) -> StreamingResponse:
    """A programme's members, balances, lots, vouchers or activities as CSV or JSON lines,
    streamed from one read-only transaction. The members export imports elsewhere as it is."""
    programme_id = rt.read(lambda uow: programme_id_for(uow, who, programme))

    def lines() -> Iterator[str]:
        with rt.uow(readonly=True) as uow:
            yield from encode(export_rows(uow, programme_id=programme_id, kind=kind), fmt)

    suffix = "csv" if fmt is ExportFormat.CSV else "jsonl"
    return StreamingResponse(
        lines(),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{programme}-{kind}.{suffix}"'},
    )


# --- the upload and the background run -------------------------------------------------------


def _import_dir() -> Path:
    configured = get_settings().import_dir
    folder = Path(configured) if configured else Path(tempfile.gettempdir()) / "treu-imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _receive(request: Request, path: Path) -> Path:
    """Write the request body to ``path`` as it arrives (never all of it in memory)."""
    with path.open("wb") as f:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(f.write, chunk)
    return path


def _job_for(uow: UnitOfWork, who: Principal, import_id: str) -> ImportJob:
    job = get_import(uow, tenant_id=who.tenant_id, job_id=import_id)
    if who.programme_id is not None and job.programme_id != who.programme_id:
        raise NotFound(ErrorCode.IMPORT_NOT_FOUND, f"no import {import_id}")
    return job


_running: set[str] = set()
_lock = threading.Lock()


def _start(rt: Runtime, job: ImportJob, upload: Path) -> None:
    """Run the job in a thread of this process, unless one already does; its file is kept as
    ``<job id>.csv`` until the job is done."""
    path = upload.with_name(f"{job.id}.csv")
    with _lock:
        if job.id in _running:
            upload.unlink(missing_ok=True)  # the same content is being imported from ``path``
            return
        upload.replace(path)
        _running.add(job.id)
    threading.Thread(
        target=_run, args=(rt, job.id, path), name=f"treu-import-{job.id}", daemon=True
    ).start()


# On SQLite every batch holds the process's one writer turn (``Runtime.write``): small batches
# keep a till's request from waiting behind an import for more than a moment.
SQLITE_BATCH_SIZE = 100


def _run(rt: Runtime, job_id: str, path: Path) -> None:
    sqlite = rt.engine.dialect.name == "sqlite"
    try:
        run_import(
            rt.write,
            job_id=job_id,
            path=path,
            batch_size=SQLITE_BATCH_SIZE if sqlite else BATCH_SIZE,
        )
        path.unlink(missing_ok=True)
    except TreuError as exc:
        if exc.code is not ErrorCode.IMPORT_IN_PROGRESS:  # else another process runs it
            _fail(rt, job_id, str(exc))
    except Exception as exc:
        log.exception("import %s stopped", job_id)
        _fail(rt, job_id, f"{type(exc).__name__}: {exc}")
    finally:
        with _lock:
            _running.discard(job_id)


def _fail(rt: Runtime, job_id: str, error: str) -> None:
    try:
        rt.write(lambda uow: fail_import(uow, job_id=job_id, error=error))
    except Exception:  # the database is gone: the job stays "running", a re-upload resumes it
        log.exception("import %s: cannot record the failure", job_id)
