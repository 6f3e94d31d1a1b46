"""Automations, the pure part: the programme document section and the decisions.

An automation is *trigger + audience + action + timing*. The trigger names an occasion in a
member's life: an event from the outbox (enrolled, a purchase, one stamp away, points about to
expire, a cart the shop says was abandoned …) or a date the nightly run finds (birthday,
anniversaries, inactivity, the monthly statement). Each occasion has a key
(:func:`event_occasion`, and the date triggers' own), and an automation fires at most once per
member and occasion: the key is unique in ``automation_runs`` and is the message's dedupe key, so
a replayed event or a second nightly run never sends twice.

A *control group* holds out a stable share of the audience (:func:`held_out`): the member is
recorded as ``held_out`` and gets nothing, so uplift can be measured against them.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
BUILTIN_SEGMENTS = frozenset({"new", "active", "inactive", "premium"})


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outcome(StrEnum):
    """What became of one automation run."""

    PENDING = "pending"  # waiting for its delay (``due_at``)
    DONE = "done"  # the action was carried out
    HELD_OUT = "held_out"  # in the control group: nothing given, counted for uplift
    SKIPPED = "skipped"  # not carried out; ``reason`` says why (audience, consent, stock …)


class TriggerEvent(StrEnum):
    # from outbox events, as they happen
    ENROLLED = "member.enrolled"
    FIRST_PURCHASE = "purchase.first"
    ACTIVITY = "activity.recorded"
    STAMPS_ALMOST_COMPLETE = "stamps.almost_complete"
    POINTS_ALMOST_REWARD = "points.almost_reward"
    TIER_UPGRADED = "tier.upgraded"
    TIER_WILL_DOWNGRADE = "tier.will_downgrade"
    POINTS_EXPIRING = "points.expiring"
    VOUCHER_ISSUED = "voucher.issued"
    SEGMENT_ENTERED = "segment.entered"
    CART_ABANDONED = "cart.abandoned"
    NEED_RECURRING = "need.recurring"
    PRODUCT_NEW = "product.new"
    # from the calendar, in the nightly run (programme time)
    BIRTHDAY = "birthday"
    ENROLMENT_ANNIVERSARY = "anniversary.enrolment"
    FIRST_PURCHASE_ANNIVERSARY = "anniversary.first_purchase"
    INACTIVITY = "inactivity"
    STATEMENT = "statement"


DATE_TRIGGERS = frozenset(
    {
        TriggerEvent.BIRTHDAY,
        TriggerEvent.ENROLMENT_ANNIVERSARY,
        TriggerEvent.FIRST_PURCHASE_ANNIVERSARY,
        TriggerEvent.INACTIVITY,
        TriggerEvent.STATEMENT,
    }
)
# What the shop sends (POST /v1/members/{id}/events); stored as outbox events of these types.
SHOP_EVENTS = (TriggerEvent.CART_ABANDONED, TriggerEvent.NEED_RECURRING, TriggerEvent.PRODUCT_NEW)

# The outbox event types each trigger listens to (a first purchase and "so close" to a reward
# are read from ``activity.recorded``).
SOURCE_EVENT: dict[TriggerEvent, str] = {
    t: t.value for t in TriggerEvent if t not in DATE_TRIGGERS
} | {
    TriggerEvent.FIRST_PURCHASE: "activity.recorded",
    TriggerEvent.POINTS_ALMOST_REWARD: "activity.recorded",
}

# The trigger options each trigger accepts (anything else set is an error in the document).
_OPTIONS: dict[TriggerEvent, frozenset[str]] = {
    TriggerEvent.ACTIVITY: frozenset({"activities"}),
    TriggerEvent.STAMPS_ALMOST_COMPLETE: frozenset({"cards"}),
    TriggerEvent.POINTS_ALMOST_REWARD: frozenset({"within"}),
    TriggerEvent.TIER_UPGRADED: frozenset({"tiers"}),
    TriggerEvent.VOUCHER_ISSUED: frozenset({"rewards"}),
    TriggerEvent.SEGMENT_ENTERED: frozenset({"segment"}),
    TriggerEvent.INACTIVITY: frozenset({"days"}),
    TriggerEvent.STATEMENT: frozenset({"day"}),
}
_REQUIRED = {
    TriggerEvent.POINTS_ALMOST_REWARD: "within",
    TriggerEvent.SEGMENT_ENTERED: "segment",
    TriggerEvent.INACTIVITY: "days",
}


class Trigger(_Data):
    """When an automation fires. ``event`` names the occasion; the options narrow it."""

    event: TriggerEvent
    activities: list[Literal["purchase", "return", "action"]] = Field(
        default_factory=list, description="activity.recorded: only these types (default all)"
    )
    cards: list[str] = Field(default_factory=list, description="stamps: only these cards")
    within: int | None = Field(
        default=None, gt=0, le=100_000_000, description="points.almost_reward: at most N short"
    )
    tiers: list[str] = Field(default_factory=list, description="tier.upgraded: reaching these")
    rewards: list[str] = Field(default_factory=list, description="voucher.issued: these rewards")
    segment: str | None = Field(default=None, max_length=64, description="segment.entered")
    days: int | None = Field(default=None, gt=0, le=3650, description="inactivity: N days")
    day: int | None = Field(default=None, ge=1, le=31, description="statement: day of month")

    @model_validator(mode="after")
    def _options_fit(self) -> Trigger:
        allowed = _OPTIONS.get(self.event, frozenset())
        for name in ("activities", "cards", "within", "tiers", "rewards", "segment", "days", "day"):
            if getattr(self, name) not in (None, []) and name not in allowed:
                raise ValueError(f"{name} is not an option of trigger {self.event.value}")
        required = _REQUIRED.get(self.event)
        if required and getattr(self, required) is None:
            raise ValueError(f"trigger {self.event.value} needs {required}")
        return self

    @property
    def is_date(self) -> bool:
        return self.event in DATE_TRIGGERS


class Audience(_Data):
    """Who may get it: members of ``segment`` (any member if none). Consent is the messaging's
    business and always checked there."""

    segment: str | None = Field(default=None, max_length=64)


class MessageAction(_Data):
    type: Literal["message"]
    channel: Literal["email", "sms", "push", "webhook"] = "email"
    template: str = Field(min_length=1, max_length=64)
    kind: Literal["transactional", "marketing"] = "marketing"


class PointsAction(_Data):
    type: Literal["points"]
    points: int = Field(gt=0, le=10_000_000)
    reason: str | None = Field(default=None, max_length=200, description="in the history")


class VoucherAction(_Data):
    type: Literal["voucher"]
    reward: str = Field(min_length=1, max_length=64)


class WebhookAction(_Data):
    """Publish ``automation.fired`` to the tenant's webhook endpoints, with ``data`` in it."""

    type: Literal["webhook"]
    data: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[
    MessageAction | PointsAction | VoucherAction | WebhookAction, Field(discriminator="type")
]
_DELAY = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class AutomationDef(_Data):
    """One automation of the programme document (``automations:``)."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    trigger: Trigger
    audience: Audience = Field(default_factory=Audience)
    action: Action
    delay: str | None = Field(
        default=None, pattern=_DELAY.pattern, description='"30m", "2h", "1d" after the occasion'
    )
    control_group: int = Field(default=0, ge=0, le=100, description="percent held out")

    @property
    def wait(self) -> timedelta:
        return parse_delay(self.delay)


def parse_delay(text: str | None) -> timedelta:
    """``"30m"``, ``"2h"``, ``"1d"`` as a timedelta; none is no delay."""
    if text is None:
        return timedelta(0)
    found = _DELAY.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a delay such as 30m, 2h or 1d")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


# --- decisions ------------------------------------------------------------------------------


def held_out(automation: str, member_id: str, percent: int) -> bool:
    """Whether the control group of ``automation`` holds ``member_id`` out. Stable (the same
    member is held out on every occasion and every re-run) and spread evenly: the SHA-256 of
    automation and member, as a number, modulo 100 — no state, no random generator to seed."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{automation}\x1f{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def event_occasion(trigger: TriggerEvent, event_id: str, payload: Mapping[str, Any]) -> str:
    """The occasion an outbox event is for: at most one run per member and occasion."""
    match trigger:
        case TriggerEvent.ENROLLED:
            return "enrolment"
        case TriggerEvent.FIRST_PURCHASE:
            return "first-purchase"
        case TriggerEvent.ACTIVITY:
            return str(payload["activity_id"])
        case TriggerEvent.STAMPS_ALMOST_COMPLETE:  # the card instance: card key and number
            return f"{payload['card']}:{payload['number']}"
        case TriggerEvent.TIER_WILL_DOWNGRADE:  # once per period
            return str(payload["period_ends_on"])
        case TriggerEvent.POINTS_EXPIRING:  # once per expiry date
            return str(payload["expires_on"])
        case TriggerEvent.VOUCHER_ISSUED:
            return str(payload["voucher_id"])
        case TriggerEvent.CART_ABANDONED | TriggerEvent.NEED_RECURRING | TriggerEvent.PRODUCT_NEW:
            return str(payload["id"])  # the shop's id of the event
        case _:
            return event_id


def almost_reward(
    available: int, costs: Iterable[tuple[str, int]], within: int
) -> tuple[str, int] | None:
    """The next reward (the cheapest the member cannot afford yet) and the points missing, if
    at most ``within`` are missing; else None."""
    ahead = [(cost, key) for key, cost in costs if cost > available]
    if not ahead:
        return None
    cost, key = min(ahead)
    missing = cost - available
    return (key, missing) if missing <= within else None


def statement_due(day_of_month: int, day: date) -> bool:
    """The statement goes out on ``day_of_month``, or on the last day of a shorter month."""
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(day_of_month, last)


def anniversary_on(since: date, day: date) -> bool:
    """``day`` is a whole number of years (>= 1) after ``since``; 29 February counts on
    28 February in common years."""
    if day.year <= since.year:
        return False
    try:
        due = since.replace(year=day.year)
    except ValueError:
        due = date(day.year, 2, 28)
    return due == day


def check_references(
    automations: list[AutomationDef],
    *,
    rewards: AbstractSet[str],
    cards: AbstractSet[str],
    tiers: AbstractSet[str],
    segments: AbstractSet[str],
    templates: AbstractSet[str] | None,
) -> None:
    """Every key an automation names exists in the document (``templates``: the programme's
    and the built-in ones; None when they cannot be known). Raises ``ValueError("path: …")``."""
    seen: set[str] = set()
    for i, a in enumerate(automations):
        path = f"automations.{i}"
        if a.key in seen:
            raise ValueError(f"{path}.key: {a.key!r} is used twice")
        seen.add(a.key)
        named = [(f"{path}.trigger.cards", c, cards, "stamp card") for c in a.trigger.cards]
        named += [(f"{path}.trigger.tiers", t, tiers, "tier") for t in a.trigger.tiers]
        named += [(f"{path}.trigger.rewards", r, rewards, "reward") for r in a.trigger.rewards]
        for segment, where in ((a.trigger.segment, "trigger"), (a.audience.segment, "audience")):
            if segment is not None:
                named.append((f"{path}.{where}.segment", segment, segments, "segment"))
        if isinstance(a.action, VoucherAction):
            named.append((f"{path}.action.reward", a.action.reward, rewards, "reward"))
        if isinstance(a.action, MessageAction) and templates is not None:
            named.append((f"{path}.action.template", a.action.template, templates, "template"))
        for where, key, known, what in named:
            if key not in known:
                raise ValueError(f"{where}: unknown {what} {key!r}")
