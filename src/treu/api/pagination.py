"""Cursor pagination: ``limit`` and ``starting_after`` (the id of the last object seen).

Ids are time-ordered ULIDs, so "after" means "newer"; a cursor stays valid however many objects
are added while a client pages through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Query
from pydantic import AwareDatetime
from ulid import ULID

from treu.api.schemas import Page

T = TypeVar("T")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_Identified = TypeVar("_Identified", bound=_HasId)
MAX_LIMIT = 100

# A report's period: days in programme time, the end exclusive (from=2026-01-01&to=2027-01-01
# is the year 2026); either may be left open.
PeriodFrom = Annotated[
    date | None, Query(alias="from", description="first day (programme time), inclusive")
]
PeriodTo = Annotated[
    date | None, Query(alias="to", description="day after the last (programme time)")
]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–100)")]
StartingAfter = Annotated[
    str | None, Query(max_length=64, description="Id of the last object of the previous page")
]


@dataclass(frozen=True)
class Created:
    """Filtering a list by when its objects were created (``created_gte`` <= t < ``created_lt``).
    Ids are ULIDs, whose first ten characters are the creation time: the filter is a range of
    ids, on lists read whole and in SQL alike."""

    gte: datetime | None = None
    lt: datetime | None = None

    def bounds(self) -> tuple[str | None, str | None]:
        """The smallest ULID of each bound (compare with the part of an id after its prefix)."""
        return _floor(self.gte), _floor(self.lt)

    def contains(self, object_id: str) -> bool:
        low, high = self.bounds()
        ulid = object_id.rsplit("_", 1)[-1]
        return (low is None or ulid >= low) and (high is None or ulid < high)


def _floor(at: datetime | None) -> str | None:
    if at is None:
        return None
    if at.timestamp() <= 0:  # nothing is older than 1970: the smallest id
        return "0" * 26
    return str(ULID.from_datetime(at))[:10] + "0" * 16


def created_window(
    created_gte: Annotated[
        AwareDatetime | None, Query(description="Only objects created at or after (RFC 3339)")
    ] = None,
    created_lt: Annotated[
        AwareDatetime | None, Query(description="Only objects created before (RFC 3339)")
    ] = None,
) -> Created:
    return Created(created_gte, created_lt)


CreatedIn = Annotated[Created, Depends(created_window)]


def page(items: Sequence[T], *, limit: int, id_of: Callable[[T], str]) -> Page[T]:
    """``items``: up to ``limit + 1`` objects after the cursor, in id order."""
    data = list(items[:limit])
    more = len(items) > limit
    return Page[T](data=data, has_more=more, next_starting_after=id_of(data[-1]) if more else None)


@dataclass(frozen=True)
class Window:
    """What a list request asks for: a page (``limit``, ``starting_after``) of the objects
    created in a time window (``created_gte``, ``created_lt``)."""

    limit: int
    starting_after: str | None
    created: Created

    def of(self, items: Sequence[_Identified]) -> Page[_Identified]:
        """The page of a list a service returned whole."""
        return after(
            items,
            starting_after=self.starting_after,
            limit=self.limit,
            id_of=lambda item: item.id,
            created=self.created,
        )


def list_window(
    created: CreatedIn, limit: Limit = 20, starting_after: StartingAfter = None
) -> Window:
    return Window(limit, starting_after, created)


WindowIn = Annotated[Window, Depends(list_window)]


def after(
    items: Sequence[T],
    *,
    starting_after: str | None,
    limit: int,
    id_of: Callable[[T], str],
    created: Created | None = None,
) -> Page[T]:
    """Paginate a list a service returned whole (a member's history, lots, vouchers)."""
    ordered = sorted(items, key=id_of)
    if created is not None:
        ordered = [i for i in ordered if created.contains(id_of(i))]
    if starting_after is not None:
        ordered = [i for i in ordered if id_of(i) > starting_after]
    return page(ordered[: limit + 1], limit=limit, id_of=id_of)
