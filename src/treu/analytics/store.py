"""The columnar analytics store: a programme's facts as Parquet files, replaced atomically.

Layout under the store directory (``TREU_ANALYTICS_DIR``)::

    <directory>/<programme_id>/CURRENT                  the name of the version readers use
    <directory>/<programme_id>/<version>/manifest.json  as_of, rows per table
    <directory>/<programme_id>/<version>/<table>.parquet

A write fills a hidden temporary directory, renames it to its version name and only then points
``CURRENT`` at it (a temporary file renamed over the old one: ``os.replace`` is atomic), so a
reader sees the old store or the new one, never half of one. The version before stays on disk
(a reader that opened it a moment ago finishes); older ones are removed. Pure file handling:
the service reads the facts from the database and decides when the store is fresh enough.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
TABLES = ("activities", "members", "transfers", "money", "referrals")
# A writer's temporary directory older than this is a crashed writer's leftover.
ABANDONED_AFTER_S = 24 * 3600


@dataclass(frozen=True)
class StoreInfo:
    """One written version of a programme's store: the facts as of ``as_of`` (UTC)."""

    programme_id: str
    as_of: datetime
    path: Path
    rows: dict[str, int]

    def read(self, table: str) -> pl.DataFrame:
        return pl.read_parquet(self.path / f"{table}.parquet")

    def scan(self, table: str) -> pl.LazyFrame:
        """Lazily: a filter on the time column skips the row groups outside it."""
        return pl.scan_parquet(self.path / f"{table}.parquet")


def write(
    directory: Path, programme_id: str, frames: Mapping[str, pl.DataFrame], *, as_of: datetime
) -> StoreInfo:
    """Write ``frames`` (one per name in :data:`TABLES`) as a new version and make it current."""
    root = directory / programme_id
    root.mkdir(parents=True, exist_ok=True)
    # numbered, so that versions sort in the order they were written (whatever their as_of)
    number = 1 + max((_number(p.name) for p in root.iterdir()), default=0)
    version = f"{number:010d}-{as_of.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    scratch = root / f".{version}.tmp"
    scratch.mkdir()
    try:
        rows = {}
        for name in TABLES:
            frames[name].write_parquet(scratch / f"{name}.parquet")
            rows[name] = frames[name].height
        manifest = {"programme_id": programme_id, "as_of": as_of.isoformat(), "rows": rows}
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        final = root / version
        scratch.rename(final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    pointer = root / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    pointer.write_text(version, encoding="utf-8")
    os.replace(pointer, root / CURRENT)
    _prune(root, keep=version)
    return StoreInfo(programme_id, as_of, final, rows)


def current(directory: Path, programme_id: str) -> StoreInfo | None:
    """The version readers use now (None: no store, or an unreadable one)."""
    root = directory / programme_id
    try:
        version = (root / CURRENT).read_text(encoding="utf-8").strip()
        manifest = json.loads((root / version / MANIFEST).read_text(encoding="utf-8"))
        as_of = datetime.fromisoformat(manifest["as_of"])
        rows = {str(k): int(v) for k, v in manifest["rows"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not version or set(rows) != set(TABLES):
        return None
    return StoreInfo(programme_id, as_of, root / version, rows)


def _number(name: str) -> int:
    head = name.lstrip(".").split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _prune(root: Path, *, keep: str) -> None:
    """Remove versions older than the previous one, and abandoned temporary directories."""
    versions = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    previous = [v for v in versions if v < keep][-1:]
    now = time.time()
    for path in root.iterdir():
        name = path.name
        if name.startswith("."):
            if name != CURRENT and now - path.stat().st_mtime > ABANDONED_AFTER_S:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        elif path.is_dir() and name != keep and name not in previous:
            shutil.rmtree(path, ignore_errors=True)
