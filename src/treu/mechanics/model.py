"""What the mechanics see of an activity, and what they report back. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from treu.activities.model import Basket
from treu.programmes.model import Programme


@dataclass(frozen=True)
class Standing:
    """Where the member stands when an activity happens: what rules and perks depend on."""

    tier: str | None = None
    memberships: frozenset[str] = frozenset()  # keys of the plans active at that moment
    # the segments the member was in (as of the last recompute), read only when a rule asks
    segments: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tier": self.tier, "memberships": sorted(self.memberships)}
        if self.segments:
            data["segments"] = sorted(self.segments)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Standing:
        if not data:
            return cls()
        return cls(
            data.get("tier"),
            frozenset(data.get("memberships") or ()),
            frozenset(data.get("segments") or ()),
        )


@dataclass(frozen=True)
class Effect:
    """One thing a mechanic did: ``kind`` is stable (``stamps.earned``, ``card.completed``,
    ``tier.upgraded``, ``voucher.issued`` ...); ``explanation`` is what the member and the till
    read; ``unit``/``amount`` name the ledger change, if there was one."""

    mechanic: str
    kind: str
    explanation: str
    data: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None
    amount: int | None = None


@dataclass(frozen=True)
class ActivityDone:
    """A member's activity, recorded and its points posted, as the mechanics see it.

    ``basket``: for a purchase, the basket as bought; for a return, what is left of the
    purchase after every return so far (mechanics recompute on it, as the points do).
    """

    programme: Programme
    member_id: str
    activity_id: str
    type: Literal["purchase", "return", "action"]
    occurred_at: datetime
    points: int
    standing: Standing
    basket: Basket | None = None
    purchase_id: str | None = None  # a return: the purchase it takes back
    purchase_occurred_at: datetime | None = None  # a return: when that purchase happened
    action_type: str | None = None
    first_purchase: bool = False
