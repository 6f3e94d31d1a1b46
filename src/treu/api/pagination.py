"""Cursor pagination: ``limit`` and ``starting_after`` (the id of the last object seen).

Ids are time-ordered ULIDs, so "after" means "newer"; a cursor stays valid however many objects
are added while a client pages through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

from treu.api.schemas import Page

T = TypeVar("T")
MAX_LIMIT = 100

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–100)")]
StartingAfter = Annotated[
    str | None, Query(max_length=64, description="Id of the last object of the previous page")
]


def page(items: Sequence[T], *, limit: int, id_of: Callable[[T], str]) -> Page[T]:
    """``items``: up to ``limit + 1`` objects after the cursor, in id order."""
    data = list(items[:limit])
    more = len(items) > limit
    return Page[T](data=data, has_more=more, next_starting_after=id_of(data[-1]) if more else None)


def after(
    items: Sequence[T], *, starting_after: str | None, limit: int, id_of: Callable[[T], str]
) -> Page[T]:
    """Paginate a list a service returned whole (a member's history, lots, vouchers)."""
    ordered = sorted(items, key=id_of)
    if starting_after is not None:
        ordered = [i for i in ordered if id_of(i) > starting_after]
    return page(ordered[: limit + 1], limit=limit, id_of=id_of)
