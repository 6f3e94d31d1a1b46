"""What if? A period of real history replayed under a proposed programme document (pure).

Every activity of members in the period — purchases, actions, returns — is evaluated again by
the rule engine (``treu.rules.model.evaluate``) under the proposal, with exactly the inputs it
had: the basket rebuilt from the stored purchase (``build_basket`` with the proposal's earning
base), the programme-time clock, store and channel, the member's attributes, first-purchase
flag and standing (tier, membership plans) as stored on the activity, the caps already used
(awards before the period, then the replay's own) and the campaign budgets left. A return is
recomputed as the till does: each rule keeps the smaller of what it gave and what it gives on
the basket that is left.

The replay changes only what the proposal can change; everything else is the real ledger:

* **points issued** = the real points issued − the real points of the replayed activities + the
  replayed points (campaign gifts, referral points, manual adjustments stay as they were);
* **points taken back**: a return's points due under the proposal, taken back as far as the
  member really gave back (the real points taken plus the change in what is due);
* **points redeemed**: each redemption of the period at the reward's cost in the proposal (0 if
  the proposal no longer offers it);
* **points expired**: each lot earned in the period gets the proposal's expiry date and the
  proposal's amount, and loses what was really spent from it before that date; what is left
  then (if before the period's end) expires. Lots from before the period expire as they did;
* **liability** = the real outstanding points at the end + the differences above, at the
  proposal's point value, plus the real wallets.

So the replay of an unchanged document reproduces the real totals exactly (a test proves it),
and every difference is traceable to an activity, a redemption or a lot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from treu.activities.model import Basket, PurchaseIn, build_basket
from treu.ledger.model import add_months, expires_at, start_of_day
from treu.mechanics.model import Standing
from treu.memberships.model import implied_rules as membership_rules
from treu.programmes.model import ProgrammeDocument
from treu.rules.model import EarnContext, MemberFacts, Period, Rule, evaluate
from treu.tiers.model import implied_rules as tier_rules


@dataclass(frozen=True)
class Act:
    """One stored activity of a member, as the replay needs it."""

    id: str
    type: Literal["purchase", "return", "action"]
    member_id: str
    occurred_at: datetime
    payload: dict[str, Any]
    channel: str | None
    action_type: str | None
    first_purchase: bool
    attributes: dict[str, Any]
    standing: Standing
    purchase_id: str | None  # a return's purchase
    real_points: int  # the stored awards: earned (>= 0), or due back for a return (<= 0)
    real_taken: int = 0  # a return: points really taken back (what was due, less forgiven)


@dataclass(frozen=True)
class Prior:
    """What was used before the period: awards of the month before (caps per day, week and
    month), per member and rule over the whole lifetime, per action target, per budget."""

    recent: list[tuple[str, str, datetime, int]] = field(default_factory=list)
    lifetime: dict[tuple[str, str], int] = field(default_factory=dict)
    per_target: dict[tuple[str, str, str], int] = field(default_factory=dict)
    budget_used: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LotTrace:
    """A real lot earned by an activity of the period: its amount, and what left it."""

    activity_id: str
    amount: int
    expired: int  # really expired before the period's end
    draws: list[tuple[datetime, int]]  # spending, reversals (+) and give-backs (−), in time


@dataclass(frozen=True)
class Replayed:
    points: dict[str, int]  # activity id -> points under the proposal (returns: <= 0, due)
    taken: dict[str, int]  # return id -> points taken back under the proposal


def earning_rules(doc: ProgrammeDocument) -> list[Rule]:
    """The document's rules and those its tiers and plans imply (as ``mechanics`` composes
    them)."""
    return list(doc.rules) + tier_rules(doc.tiers) + membership_rules(doc.memberships)


def period_bounds(at: datetime, period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The day, ISO week or month of ``at`` in programme time (the caps' windows)."""
    if period is Period.LIFETIME:
        return datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)
    day = at.astimezone(tz).date()
    if period is Period.DAY:
        first, last = day, day + timedelta(days=1)
    elif period is Period.WEEK:
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        last = add_months(first, 1)
    return start_of_day(first, tz), start_of_day(last, tz)


class _Usage:
    """Awards given so far (before the period, then by the replay), for caps and budgets."""

    def __init__(self, prior: Prior) -> None:
        self.recent: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
        for member, rule, at, points in prior.recent:
            self.recent[(member, rule)].append((at, points))
        self.lifetime = defaultdict(int, prior.lifetime)
        self.per_target = defaultdict(int, prior.per_target)
        self.budget_used = defaultdict(int, prior.budget_used)

    def used(self, member: str, rule: str, period: Period, at: datetime, tz: ZoneInfo) -> int:
        if period is Period.LIFETIME:
            return self.lifetime[(member, rule)]
        start, end = period_bounds(at, period, tz)
        return sum(p for t, p in self.recent[(member, rule)] if start <= t < end)

    def add(self, member: str, rule: str, at: datetime, points: int, target: str | None) -> None:
        self.recent[(member, rule)].append((at, points))
        self.lifetime[(member, rule)] += points
        self.budget_used[rule] += points
        if target is not None:
            self.per_target[(member, rule, target)] += points


def _basket(payload: dict[str, Any], doc: ProgrammeDocument) -> Basket:
    return build_basket(PurchaseIn.model_validate(payload), doc.currency, doc.earning_base)


def _facts(act: Act, first_purchase: bool) -> MemberFacts:
    return MemberFacts(
        attributes=act.attributes,
        is_first_purchase=first_purchase,
        tier=act.standing.tier,
        memberships=act.standing.memberships,
    )


def replay(
    doc: ProgrammeDocument,
    tz: ZoneInfo,
    acts: Iterable[Act],
    prior: Prior,
    purchases: dict[str, Act],
) -> Replayed:
    """Each activity's points under ``doc``, in the order they happened. ``purchases``: the
    purchases the returns name (also those before the period, whose returns keep their real
    points)."""
    rules = earning_rules(doc)
    usage = _Usage(prior)
    points: dict[str, int] = {}
    taken: dict[str, int] = {}
    given: dict[str, dict[str, int]] = {}  # purchase id -> rule -> points still given
    original: dict[str, dict[str, int]] = {}  # purchase id -> rule -> points first given
    returned: dict[str, list[int]] = {}  # purchase id -> minor units returned per line
    for act in sorted(acts, key=lambda a: (a.occurred_at, a.id)):
        if act.type == "return":
            _return(doc, tz, rules, act, purchases, usage, given, original, returned, points, taken)
            continue
        target = act.payload.get("target") if act.type == "action" else None
        ctx = _context(doc, tz, rules, act, usage, target)
        awards = evaluate(rules, ctx)
        points[act.id] = sum(a.points for a in awards)
        if act.type == "purchase":
            original[act.id] = {a.rule_key: a.points for a in awards}
            given[act.id] = dict(original[act.id])
        for a in awards:
            usage.add(act.member_id, a.rule_key, act.occurred_at, a.points, target)
    return Replayed(points, taken)


def _context(
    doc: ProgrammeDocument,
    tz: ZoneInfo,
    rules: list[Rule],
    act: Act,
    usage: _Usage,
    target: str | None,
) -> EarnContext:
    kind: Literal["purchase", "action"] = "purchase" if act.type == "purchase" else "action"
    mine = [r for r in rules if r.when.activity == kind]
    used = {
        (r.key, period): usage.used(act.member_id, r.key, period, act.occurred_at, tz)
        for r in mine
        for period in r.caps.per_member
    }
    per_target = {
        r.key: usage.per_target[(act.member_id, r.key, target)]
        for r in mine
        if target is not None and r.caps.per_target is not None
    }
    budgets = {
        r.key: r.caps.budget - usage.budget_used[r.key] for r in mine if r.caps.budget is not None
    }
    return EarnContext(
        activity=kind,
        local_time=act.occurred_at.astimezone(tz).replace(tzinfo=None),
        basket=_basket(act.payload, doc) if kind == "purchase" else None,
        action_type=act.action_type,
        channel=act.channel,
        store=act.payload.get("store"),
        member=_facts(act, act.first_purchase),
        used_per_member=used,
        target=target,
        used_per_target=per_target,
        budget_left=budgets,
        rounding=doc.rounding,
    )


def _return(
    doc: ProgrammeDocument,
    tz: ZoneInfo,
    rules: list[Rule],
    act: Act,
    purchases: dict[str, Act],
    usage: _Usage,
    given: dict[str, dict[str, int]],
    original: dict[str, dict[str, int]],
    returned: dict[str, list[int]],
    points: dict[str, int],
    taken: dict[str, int],
) -> None:
    purchase = purchases.get(act.purchase_id or "")
    if purchase is None or purchase.id not in original:  # bought before the period: as it was
        points[act.id], taken[act.id] = act.real_points, act.real_taken
        return
    basket = _basket(purchase.payload, doc)
    so_far = returned.setdefault(purchase.id, [0] * len(basket.lines))
    for i, amount in enumerate(act.payload.get("returned_minor", [])):
        if i < len(so_far):
            so_far[i] += int(amount)
    ctx = EarnContext(
        "purchase",
        purchase.occurred_at.astimezone(tz).replace(tzinfo=None),
        basket=basket.after_returns(so_far),
        channel=purchase.channel,
        store=purchase.payload.get("store"),
        member=_facts(purchase, purchase.first_purchase),
        rounding=doc.rounding,
    )
    recomputed = {a.rule_key: a.points for a in evaluate(rules, ctx)}
    due = 0
    for key, earned in original[purchase.id].items():
        back = given[purchase.id][key] - min(earned, recomputed.get(key, 0))
        if back > 0:
            given[purchase.id][key] -= back
            usage.add(act.member_id, key, purchase.occurred_at, -back, None)
            due += back
    real_due = -act.real_points
    points[act.id] = -due
    taken[act.id] = max(0, min(due, act.real_taken + due - real_due))


# --- comparing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The ledger of the period, as it was or as it would have been."""

    points_issued: int
    points_taken_back: int
    points_redeemed: int
    points_expired: int
    outstanding_points: int  # at the end of the period
    point_value: Decimal
    wallet_outstanding: Decimal  # money in wallets and gift cards at the end
    other_cost: Decimal  # cashback, credit, dividends, donations (as they were)
    tiers: dict[str, int]  # members per tier at the end

    @property
    def liability(self) -> Decimal:
        return self.outstanding_points * self.point_value + self.wallet_outstanding

    @property
    def cost(self) -> Decimal:
        return self.points_redeemed * self.point_value + self.other_cost


def lot_expiry(lot: LotTrace, amount: int, expires: datetime | None, end: datetime) -> int:
    """The points of a lot of ``amount`` expiring at ``expires`` that are left then, given the
    real spending from the lot (capped at what the lot would have held)."""
    if expires is None or expires >= end:
        return 0
    drawn = sum(a for at, a in lot.draws if at < expires)
    return max(0, amount - max(0, drawn))


def expired_delta(
    doc: ProgrammeDocument,
    tz: ZoneInfo,
    acts: Iterable[Act],
    lots: dict[str, LotTrace],
    points: dict[str, int],
    end: datetime,
) -> int:
    """Points expired under the proposal minus those really expired, over the lots earned by
    the period's activities (an inactivity policy is not replayed: its lots count as real)."""
    if doc.expiry.type == "inactivity":
        return 0
    delta = 0
    for act in acts:
        if act.type == "return":
            continue
        lot = lots.get(act.id, LotTrace(act.id, 0, 0, []))
        expiry = expires_at(doc.expiry, act.occurred_at, tz)
        delta += lot_expiry(lot, points.get(act.id, 0), expiry, end) - lot.expired
    return delta


def last_day(end: date) -> date:
    return end - timedelta(days=1)
