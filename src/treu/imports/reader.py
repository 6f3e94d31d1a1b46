"""Reading an import file: CSV records, each with the byte offset where the next one starts.

``csv.reader`` pulls lines from its source only as far as one record needs (a quoted field may
span lines), so the bytes of the lines it has pulled, counted after each record, are exactly the
offset of the next record: the checkpoint. Resuming seeks there and reads on. The file is read a
line at a time, so memory stays the same whatever the file's size.

A record that is not valid CSV, not UTF-8, holds a NUL character or has more or fewer values than
the header has columns becomes a :class:`Record` with a ``problem`` (a line of the error report);
reading goes on with the next record. Blank lines are skipped.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from treu.errors import ErrorCode, InvalidInput
from treu.imports.model import ImportKind, check_header

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Record:
    line: int  # the physical line the record starts on (the header is line 1)
    values: dict[str, str]  # column -> text ({} if the record has a problem)
    problem: str | None
    end: int  # byte offset just after the record: where the next one starts
    next_line: int  # the line the next record starts on


@dataclass(frozen=True)
class FileInfo:
    """An import file as the job knows it: name, size, content hash and header."""

    path: Path
    name: str
    size: int
    sha256: str
    header: list[str]
    body_offset: int  # where the first record after the header starts
    body_line: int


def inspect_file(path: Path, kind: ImportKind) -> FileInfo:
    """Size, SHA-256 (streamed) and the checked header of an import file."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            f.seek(0)
            header, offset, line = read_header(f)
    except OSError as exc:
        raise InvalidInput(
            ErrorCode.INVALID_IMPORT_FILE, f"cannot read {path}: {exc.strerror}"
        ) from None
    names = check_header(kind, header)
    return FileInfo(path, path.name, size, digest.hexdigest(), names, offset, line)


def read_header(f: BinaryIO) -> tuple[list[str], int, int]:
    """(column names as written, offset and line of the first record) of a file at offset 0."""
    lines = _Lines(f, 0, 0)
    try:
        header = next(csv.reader(lines, strict=True))
    except StopIteration:
        raise InvalidInput(ErrorCode.INVALID_IMPORT_FILE, "the file is empty") from None
    except csv.Error as exc:
        raise InvalidInput(
            ErrorCode.INVALID_IMPORT_FILE, f"the header is not valid CSV: {exc}"
        ) from None
    if lines.bad:
        raise InvalidInput(ErrorCode.INVALID_IMPORT_FILE, "the file is not UTF-8 text")
    if header:
        header[0] = header[0].removeprefix("\ufeff")  # the byte order mark spreadsheets write
    return header, lines.offset, lines.consumed + 1


def read_records(f: BinaryIO, header: list[str], *, offset: int, line: int) -> Iterator[Record]:
    """The records from ``offset`` (the start of line ``line``) to the end of the file."""
    f.seek(offset)
    lines = _Lines(f, offset, line - 1)
    reader = csv.reader(lines, strict=True)
    width = len(header)
    while True:
        first = lines.consumed + 1
        lines.bad = False
        problem = None
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells, problem = [], f"not valid CSV: {exc}"
        if not cells and problem is None:
            continue  # a blank line
        if problem is None:
            problem = _problem(cells, width, lines.bad)
        values = dict(zip(header, cells, strict=True)) if problem is None else {}
        yield Record(first, values, problem, lines.offset, lines.consumed + 1)


def _problem(cells: list[str], width: int, bad_encoding: bool) -> str | None:
    if bad_encoding:
        return "is not UTF-8 text"
    if len(cells) != width:
        return f"has {len(cells)} values, the header has {width} columns"
    if any("\x00" in cell for cell in cells):
        return "contains a NUL character"
    return None


class _Lines:
    """The file's lines as text, counting the bytes and lines handed out."""

    def __init__(self, f: BinaryIO, offset: int, consumed: int) -> None:
        self.f = f
        self.offset = offset
        self.consumed = consumed
        self.bad = False  # a line handed out since the flag was cleared was not UTF-8

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.f.readline()
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.consumed += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad = True
            return raw.decode("utf-8", "replace")
