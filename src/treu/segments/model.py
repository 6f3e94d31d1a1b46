"""Segments as data, and the pure decision whether a member belongs to one.

A segment is a named rule over a member's facts: ``all`` conditions must hold and, if ``any``
is given, at least one of ``any``. A condition is a one-key mapping (``{purchases: {min: 4,
within_days: 30}}``), and ``all``/``any``/``not`` nest, so the built-in ``inactive`` ("no
purchase for 90 days but one ever, or none and enrolled more than 30 days ago") is data too.

The service computes a :class:`MemberFacts` per member (one at a time, or set-based for a
whole programme) and :func:`matches` decides. Windows are calendar days in the programme's
timezone: ``within_days: 30`` evaluated on day D means "since local midnight of D-30", and
weekday/time-of-day patterns are read on the local wall clock, so a daylight-saving switch
moves nothing. Facts hold only what happened up to the evaluation instant.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from treu.analytics.rfm import SEGMENTS as RFM_SEGMENTS
from treu.money import to_minor

Key = str
Days = int


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:  # Monday is 0, as date.weekday()
        return list(Weekday).index(self)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _days(**kwargs: Any) -> Any:
    return Field(ge=1, le=36600, **kwargs)


class Recency(_Spec):
    within_days: Days = _days()


class Inactivity(_Spec):
    days: Days = _days()


def _hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (07:00)") from None


class Frequency(_Spec):
    """``min`` to ``max`` purchases in the window, counting only those on ``weekdays`` and
    ``between`` two local times (half-open: 07:00–09:00 counts 07:00 and 08:59, not 09:00; an
    end before the start spans midnight). No ``within_days``: since enrolment."""

    min: int = Field(default=1, ge=0)
    max: int | None = Field(default=None, ge=0)
    within_days: Days | None = _days(default=None)
    weekdays: list[Weekday] | None = Field(default=None, min_length=1)
    between: tuple[str, str] | None = None

    @field_validator("between")
    @classmethod
    def _times(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None:
            start, end = (_hhmm(v) for v in value)
            if start == end:
                raise ValueError("start and end are the same time: the window would be empty")
        return value

    @model_validator(mode="after")
    def _range(self) -> Frequency:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    @model_validator(mode="after")
    def _parsed(self) -> Frequency:
        # parsed once: ``counts`` runs for every purchase of every member in a recompute
        days = None if self.weekdays is None else frozenset(d.number for d in self.weekdays)
        window = None if self.between is None else tuple(_hhmm(v) for v in self.between)
        self._days, self._window = days, window
        return self

    _days: frozenset[int] | None = PrivateAttr(default=None)
    _window: tuple[time, ...] | None = PrivateAttr(default=None)

    def counts(self, local: datetime) -> bool:
        """Whether a purchase at this local wall-clock time is one the pattern counts."""
        if self._days is not None and local.weekday() not in self._days:
            return False
        if self._window is None:
            return True
        start, end = self._window
        now = local.time()
        return start <= now < end if start < end else now >= start or now < end


def _amount(**kwargs: Any) -> Any:
    return Field(ge=0, le=Decimal("100000000"), allow_inf_nan=False, **kwargs)


class Monetary(_Spec):
    """Net spend (paid minus returned) in the programme currency, in the window."""

    min: Decimal = _amount()
    max: Decimal | None = _amount(default=None)
    within_days: Days | None = _days(default=None)

    @model_validator(mode="after")
    def _range(self) -> Monetary:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Period(_Spec):
    """Local calendar dates, both included."""

    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.to < self.from_:
            raise ValueError(f"to ({self.to}) is before from ({self.from_})")
        return self


_Labels = list[str] | None


class Bought(_Spec):
    """At least one purchase in the window with a line of one of these categories, brands or
    SKUs (lines as the purchase sent them; a purchase given as a bare total has none)."""

    categories: _Labels = Field(default=None, min_length=1)
    brands: _Labels = Field(default=None, min_length=1)
    skus: _Labels = Field(default=None, min_length=1)
    within_days: Days | None = _days(default=None)

    @model_validator(mode="after")
    def _something(self) -> Bought:
        if not (self.categories or self.brands or self.skus):
            raise ValueError("name at least one of categories, brands, skus")
        return self


class Score(_Spec):
    """A model score between 0 and 1 (P(alive), churn risk), both bounds included. A member
    without the score (never bought; the models not fitted on too little history) matches
    no range."""

    min: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    max: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> Score:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    def holds(self, value: float | None) -> bool:
        return value is not None and self.min <= value <= self.max


class BirthdayMonth(_Spec):
    month: int = Field(ge=1, le=12)


Scalar = str | int | bool | None


class AttributeIs(_Spec):
    name: str = Field(min_length=1, max_length=64)
    equals: Scalar = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_test(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # ``equals: null`` reads as "not given" (a stored document dumps both keys): to match
            # a missing attribute, write ``in: [null]``.
            given = [k for k in ("equals", "in", "in_") if data.get(k) is not None]
            if len(given) != 1:
                raise ValueError("give exactly one of equals, in (for a missing value: in: [null])")
        return data

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        value = attributes.get(self.name)
        allowed = self.in_ if self.in_ is not None else [self.equals]
        # bool is an int in Python: True must not equal 1 here
        return any(value == a and type(value) is type(a) for a in allowed)


CONDITIONS = (
    "last_purchase",
    "inactive",
    "purchases",
    "spend",
    "tier",
    "membership",
    "active_between",
    "bought",
    "first_purchase_within_days",
    "enrolled_within_days",
    "birthday",
    "attribute",
    "consent",
    "rfm_segment",
    "churn_risk",
    "p_alive",
    "all",
    "any",
    "not",
)
# Conditions on the analytics scores (treu.analytics): computed for the whole programme at once.
SCORE_KINDS = frozenset({"rfm_segment", "churn_risk", "p_alive"})


_ALIASES = {"all_": "all", "any_": "any", "not_": "not"}


class Condition(_Spec):
    """Exactly one of the fields: ``{purchases: {min: 4, within_days: 30}}``."""

    last_purchase: Recency | None = None
    inactive: Inactivity | None = None
    purchases: Frequency | None = None
    spend: Monetary | None = None
    tier: list[Key] | None = Field(default=None, min_length=1)
    membership: list[Key] | None = Field(default=None, min_length=1)
    active_between: Period | None = None
    bought: Bought | None = None
    first_purchase_within_days: Days | None = Field(default=None, ge=0, le=36600)
    enrolled_within_days: Days | None = _days(default=None)
    birthday: Literal["this_month"] | BirthdayMonth | None = None
    attribute: AttributeIs | None = None
    consent: Literal["email", "sms", "push"] | None = None
    rfm_segment: list[str] | None = Field(default=None, min_length=1)
    churn_risk: Score | None = None
    p_alive: Score | None = None
    all_: list[Condition] | None = Field(default=None, alias="all", min_length=1)
    any_: list[Condition] | None = Field(default=None, alias="any", min_length=1)
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        if isinstance(data, Condition):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"a condition is a mapping with one of: {', '.join(CONDITIONS)}")
        # A stored document is dumped with every field, the unused ones as None.
        data = {k: v for k, v in data.items() if v is not None}
        unknown = [k for k in data if k not in CONDITIONS]
        if unknown:
            raise ValueError(f"unknown condition {unknown[0]!r}; known: {', '.join(CONDITIONS)}")
        if len(data) != 1:
            given = ", ".join(data) or "nothing"
            raise ValueError(f"a condition has exactly one key, got {given}")
        return data

    @field_validator("rfm_segment")
    @classmethod
    def _rfm_segments(cls, value: list[str] | None) -> list[str] | None:
        unknown = [v for v in value or () if v not in RFM_SEGMENTS]
        if unknown:
            raise ValueError(
                f"unknown RFM segment {unknown[0]!r}; known: {', '.join(RFM_SEGMENTS)}"
            )
        return value

    @property
    def kind(self) -> str:
        # The one field given (the validator drops the unused ones): read per member and
        # condition in a recompute, so not a scan over every field.
        (name,) = self.model_fields_set
        return _ALIASES.get(name, name)

    def _value(self, name: str) -> Any:
        return getattr(self, {"all": "all_", "any": "any_", "not": "not_"}.get(name, name))

    def children(self) -> list[Condition]:
        return [*(self.all_ or ()), *(self.any_ or ()), *([self.not_] if self.not_ else [])]


class SegmentDef(_Spec):
    """A segment of a programme document (or a built-in one)."""

    key: Key = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    static: bool = Field(default=False, description="members come from an uploaded list")
    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")

    @model_validator(mode="after")
    def _has_rule(self) -> SegmentDef:
        if not self.static and self.all_ is None and self.any_ is None:
            raise ValueError("give all or any (or static: true for an uploaded list)")
        return self

    def conditions(self) -> Iterable[Condition]:
        """Every condition, nested ones included."""
        stack = [*(self.all_ or ()), *(self.any_ or ())]
        while stack:
            condition = stack.pop()
            yield condition
            stack.extend(condition.children())

    def kinds(self) -> frozenset[str]:
        return frozenset(c.kind for c in self.conditions())


# --- built-in segments ---------------------------------------------------------------------

BUILT_IN_KEYS = ("new", "active", "inactive", "premium")


def built_in_segments(top_tier: str | None, paid_plans: Iterable[str]) -> list[SegmentDef]:
    """``new``, ``active``, ``inactive`` and ``premium`` for a programme whose highest tier is
    ``top_tier`` (None: fewer than two tiers) and whose paid plans are ``paid_plans``."""
    premium: list[dict[str, Any]] = [{"tier": [top_tier]}] if top_tier else []
    plans = sorted(paid_plans)
    premium += [{"membership": plans}] if plans else []
    inactive = [
        {"all": [{"purchases": {"min": 1}}, {"not": {"last_purchase": {"within_days": 90}}}]},
        {"all": [{"purchases": {"min": 0, "max": 0}}, {"not": {"enrolled_within_days": 30}}]},
    ]
    built = [
        {
            "key": "new",
            "name": "New members",
            "description": "Enrolled within the last 30 days.",
            "all": [{"enrolled_within_days": 30}],
        },
        {
            "key": "active",
            "name": "Active members",
            "description": "At least one purchase within the last 90 days.",
            "all": [{"last_purchase": {"within_days": 90}}],
        },
        {
            "key": "inactive",
            "name": "Inactive members",
            "description": "No purchase for 90 days but at least one ever, or never a purchase "
            "and enrolled more than 30 days ago.",
            "any": inactive,
        },
        {
            "key": "premium",
            "name": "Premium members",
            "description": "In the top tier or with an active paid membership.",
            # An empty ``any`` matches no one: a programme without tiers (or with one) and
            # without paid plans has no premium members.
            "any": premium,
        },
    ]
    return [SegmentDef.model_validate(b) for b in built]


def effective_segments(
    defined: Iterable[SegmentDef], top_tier: str | None, paid_plans: Iterable[str]
) -> list[SegmentDef]:
    """The programme's segments: the built-ins, each replaced by a programme segment with its
    key, then the programme's own in document order."""
    own = {s.key: s for s in defined}
    built = [own.pop(b.key, b) for b in built_in_segments(top_tier, paid_plans)]
    return [*built, *own.values()]


# --- facts and the decision ---------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    at: datetime  # UTC
    net_minor: int  # paid minus returned (up to the evaluation instant)
    categories: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MemberFacts:
    """What the evaluator needs of one member, as of one instant.

    ``purchases`` and ``activity_times`` hold everything at or after ``since`` (None: ever);
    the counts and first/last instants are over the member's whole history.
    """

    member_id: str
    enrolled_at: datetime
    birthday: date | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tier: str | None = None
    plans: frozenset[str] = frozenset()  # active membership plans
    consents: frozenset[str] = frozenset()  # channels with marketing consent
    uploaded: frozenset[str] = frozenset()  # static segments the member was uploaded to
    purchase_count: int = 0
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    last_activity_at: datetime | None = None
    # The analytics scores as of the evaluation instant (treu.analytics: RFM by quintile over
    # the programme's buyers, P(alive) and churn risk from BG/NBD); None: not scored.
    rfm_segment: str | None = None
    p_alive: float | None = None
    churn_risk: float | None = None
    since: datetime | None = None
    purchases: tuple[Purchase, ...] = ()
    activity_times: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class Context:
    today: date
    tz: ZoneInfo
    currency: str

    def window_start(self, days: int) -> datetime:
        """Local midnight ``days`` days before today, as an aware instant."""
        return datetime.combine(self.today - timedelta(days=days), time(0), tzinfo=self.tz)


def matches(
    defn: SegmentDef, facts: MemberFacts, *, today: date, tz: ZoneInfo, currency: str
) -> bool:
    """Whether the member belongs to the segment on ``today`` (programme time)."""
    ctx = Context(today, tz, currency)
    if defn.static and defn.key not in facts.uploaded:
        return False
    if not all(holds(c, facts, ctx) for c in defn.all_ or ()):
        return False
    return defn.any_ is None or any(holds(c, facts, ctx) for c in defn.any_)


def holds(condition: Condition, facts: MemberFacts, ctx: Context) -> bool:
    kind = condition.kind
    return bool(_CHECKS[kind](condition._value(kind), facts, ctx))


def _start(days: int | None, facts: MemberFacts, ctx: Context) -> datetime | None:
    start = None if days is None else ctx.window_start(days)
    if facts.since is not None and (start is None or start < facts.since):
        raise ValueError(f"facts since {facts.since} do not cover a window from {start}")
    return start


def _in_window(purchases: Iterable[Purchase], start: datetime | None) -> list[Purchase]:
    return [p for p in purchases if start is None or p.at >= start]


def _last_purchase(spec: Recency, f: MemberFacts, ctx: Context) -> bool:
    return f.last_purchase_at is not None and f.last_purchase_at >= ctx.window_start(
        spec.within_days
    )


def _inactive(spec: Inactivity, f: MemberFacts, ctx: Context) -> bool:
    last = max(f.enrolled_at, f.last_activity_at or f.enrolled_at)
    return last < ctx.window_start(spec.days)


def _purchases(spec: Frequency, f: MemberFacts, ctx: Context) -> bool:
    if spec.within_days is None and spec.weekdays is None and spec.between is None:
        count = f.purchase_count  # ever: the all-time count, whatever the facts' window
    else:
        start = _start(spec.within_days, f, ctx)
        window = _in_window(f.purchases, start)
        count = sum(1 for p in window if spec.counts(p.at.astimezone(ctx.tz)))
    return count >= spec.min and (spec.max is None or count <= spec.max)


def _spend(spec: Monetary, f: MemberFacts, ctx: Context) -> bool:
    total = sum(p.net_minor for p in _in_window(f.purchases, _start(spec.within_days, f, ctx)))
    low = to_minor(spec.min, ctx.currency)
    return total >= low and (spec.max is None or total <= to_minor(spec.max, ctx.currency))


def _active_between(spec: Period, f: MemberFacts, ctx: Context) -> bool:
    start = datetime.combine(spec.from_, time(0), tzinfo=ctx.tz)
    end = datetime.combine(spec.to + timedelta(days=1), time(0), tzinfo=ctx.tz)
    if f.since is not None and start < f.since:
        raise ValueError(f"facts since {f.since} do not cover {spec.from_}")
    return any(start <= t < end for t in f.activity_times)


def _bought(spec: Bought, f: MemberFacts, ctx: Context) -> bool:
    wanted = (set(spec.categories or ()), set(spec.brands or ()), set(spec.skus or ()))
    return any(
        p.categories & wanted[0] or p.brands & wanted[1] or p.skus & wanted[2]
        for p in _in_window(f.purchases, _start(spec.within_days, f, ctx))
    )


def _first_purchase(days: int, f: MemberFacts, ctx: Context) -> bool:
    first = f.first_purchase_at
    return first is not None and first - f.enrolled_at <= timedelta(days=days)


def _enrolled(days: int, f: MemberFacts, ctx: Context) -> bool:
    return f.enrolled_at >= ctx.window_start(days)


def _birthday(spec: Literal["this_month"] | BirthdayMonth, f: MemberFacts, ctx: Context) -> bool:
    month = spec.month if isinstance(spec, BirthdayMonth) else ctx.today.month
    return f.birthday is not None and f.birthday.month == month


_CHECKS: dict[str, Any] = {
    "last_purchase": _last_purchase,
    "inactive": _inactive,
    "purchases": _purchases,
    "spend": _spend,
    "tier": lambda keys, f, ctx: f.tier in keys,
    "membership": lambda keys, f, ctx: bool(f.plans & set(keys)),
    "active_between": _active_between,
    "bought": _bought,
    "first_purchase_within_days": _first_purchase,
    "enrolled_within_days": _enrolled,
    "birthday": _birthday,
    "attribute": lambda spec, f, ctx: spec.holds(f.attributes),
    "consent": lambda channel, f, ctx: channel in f.consents,
    "rfm_segment": lambda keys, f, ctx: f.rfm_segment in keys,
    "churn_risk": lambda spec, f, ctx: spec.holds(f.churn_risk),
    "p_alive": lambda spec, f, ctx: spec.holds(f.p_alive),
    "all": lambda items, f, ctx: all(holds(c, f, ctx) for c in items),
    "any": lambda items, f, ctx: any(holds(c, f, ctx) for c in items),
    "not": lambda item, f, ctx: not holds(item, f, ctx),
}


# --- what the facts must cover ------------------------------------------------------------


@dataclass(frozen=True)
class Needs:
    """Which facts a set of segments reads: the service loads only those."""

    since: datetime | None  # purchases/activities from here (None: the whole history)
    windowed: bool  # any condition reads individual purchases or activity times
    lines: bool  # a ``bought`` condition reads the purchases' lines
    kinds: frozenset[str]


def needs(defs: Iterable[SegmentDef], *, today: date, tz: ZoneInfo) -> Needs:
    ctx = Context(today, tz, "EUR")
    starts: list[datetime | None] = []
    kinds: set[str] = set()
    for defn in defs:
        for c in defn.conditions():
            kinds.add(c.kind)
            starts += _reads_from(c, ctx)
    since = None if None in starts else min((s for s in starts if s is not None), default=None)
    return Needs(since, bool(starts), "bought" in kinds, frozenset(kinds))


def _reads_from(c: Condition, ctx: Context) -> list[datetime | None]:
    """Where the condition starts reading individual purchases or activities (None: the
    whole history); nothing if it reads only the member's totals."""
    spec = c._value(c.kind)
    if c.kind == "active_between":
        return [datetime.combine(spec.from_, time(0), tzinfo=ctx.tz)]
    if c.kind == "purchases" and spec.weekdays is None and spec.between is None:
        if spec.within_days is None:
            return []  # the all-time count
    elif c.kind not in ("spend", "bought", "purchases"):
        return []
    return [None if spec.within_days is None else ctx.window_start(spec.within_days)]


def check_segments(
    segments: list[SegmentDef], tier_keys: Iterable[str], plan_keys: Iterable[str]
) -> None:
    """Keys are unique, and tiers and plans named exist (errors carry the document path)."""
    tiers, plans = set(tier_keys), set(plan_keys)
    seen: set[str] = set()
    for i, segment in enumerate(segments):
        if segment.key in seen:
            raise ValueError(f"segments.{i}.key: {segment.key!r} is used twice")
        seen.add(segment.key)
        for condition in segment.conditions():
            unknown = [t for t in condition.tier or () if t not in tiers]
            if unknown:
                raise ValueError(f"segments.{i}: unknown tier {unknown[0]!r}")
            unknown = [p for p in condition.membership or () if p not in plans]
            if unknown:
                raise ValueError(f"segments.{i}: unknown membership plan {unknown[0]!r}")


# --- static uploads and previews ----------------------------------------------------------

REFERENCE_COLUMNS = ("reference", "member", "email", "phone", "card", "external")


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line of the CSV, as a spreadsheet shows it
    reference: str  # ``mbr_…`` or ``kind:value``, as find_member takes it


def member_references(text: str) -> list[CsvRow]:
    """The member references of an uploaded CSV: one column of them.

    With a header row, the first column named ``reference``/``member`` (ids or ``kind:value``)
    or ``email``/``phone``/``card``/``external`` (bare values of that kind) is read; without
    one, the first column, where a bare value with an ``@`` is an e-mail address. Empty cells
    are skipped; the delimiter is a comma or a semicolon (as spreadsheets in Germany save).
    """
    rows = list(_csv_rows(text))
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0][1]]
    column = next((i for i, name in enumerate(header) if name in REFERENCE_COLUMNS), None)
    kind = None
    if column is not None:
        kind = header[column] if header[column] not in ("reference", "member") else None
        rows = rows[1:]
    elif not _looks_like_reference(rows[0][1][0] if rows[0][1] else ""):
        raise ValueError(
            "the first row is neither a member reference nor a header naming a column "
            f"({', '.join(REFERENCE_COLUMNS)})"
        )
    found = []
    for line, cells in rows:
        value = cells[column or 0].strip() if len(cells) > (column or 0) else ""
        if value:
            found.append(CsvRow(line, _as_reference(value, kind)))
    return found


def _csv_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    lines = text.lstrip("\ufeff").splitlines()
    sample = next((line for line in lines if line.strip()), "")
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    for number, cells in enumerate(reader, start=1):
        if any(c.strip() for c in cells):
            yield number, cells


def _looks_like_reference(value: str) -> bool:
    value = value.strip()
    return value.startswith("mbr_") or ":" in value or "@" in value


def _as_reference(value: str, kind: str | None) -> str:
    if kind is not None:
        return f"{kind}:{value}"
    if not value.startswith("mbr_") and ":" not in value and "@" in value:
        return f"email:{value}"
    return value


def mask_name(name: str | None) -> str | None:
    """``Mia Schulz`` → ``M** S*****``: enough to recognise a sample, not to read a list."""
    if not name:
        return name
    return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())


def mask_email(address: str | None) -> str | None:
    """``mia@example.org`` → ``m**@example.org``."""
    if not address or "@" not in address:
        return address
    local, _, domain = address.rpartition("@")
    return f"{local[0]}{'*' * max(len(local) - 1, 2)}@{domain}"
