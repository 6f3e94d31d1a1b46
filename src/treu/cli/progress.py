"""The progress bar of ``treu import``: bytes of the file behind the checkpoint, rows, rate, ETA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from treu.imports.model import Progress as ImportProgress


class _RowsPerSecond(ProgressColumn):
    """Rows per second in this run (a resumed run does not count the rows before it)."""

    def render(self, task: Task) -> Text:
        rate = task.fields.get("rate")
        return Text("" if rate is None else f"{rate:,.0f} rows/s", style="progress.data.speed")


@contextmanager
def import_progress(
    console: Console, description: str, *, total_bytes: int, done_bytes: int, done_rows: int
) -> Iterator[Callable[[ImportProgress], None]]:
    """A progress bar over the file's bytes; yields the function a run reports to.
    ``done_bytes``/``done_rows``: where a resumed run starts."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows, {task.fields[failed]:,} failed"),
        _RowsPerSecond(),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task(
        description, total=total_bytes, completed=done_bytes, rows=done_rows, failed=0
    )
    started = time.monotonic()

    def update(progress: ImportProgress) -> None:
        elapsed = time.monotonic() - started
        rate = (progress.rows_done - done_rows) / elapsed if elapsed > 0 else None
        bar.update(
            task,
            completed=progress.bytes_done,
            rows=progress.rows_done,
            failed=progress.rows_failed,
            rate=rate,
        )

    with bar:
        yield update
