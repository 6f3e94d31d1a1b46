"""Time is injected: services ask ``uow.clock.now()``, tests hold a :class:`FixedClock`.

All instants are timezone-aware UTC datetimes. Programme-local dates are derived from them with
the programme's IANA timezone (see ``treu.programmes.model.Programme.local_date``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self._at = as_utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = as_utc(at)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def as_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime: every instant in Treu carries a timezone")
    return at.astimezone(UTC)
