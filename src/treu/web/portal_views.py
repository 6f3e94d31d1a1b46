"""What the member portal shows, read through the services: the card page, rewards, history.

Nothing here decides anything the services decide; it arranges their answers for a page
(which reward is next, how full a card is) and says each history entry as a sentence in the
member's language, from the reasons the ledger and the rule engine recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from treu.activities.service import ActivityResult, get_activity
from treu.errors import NotFound
from treu.ledger.model import Balances
from treu.ledger.service import HistoryEntry, get_balances, member_history
from treu.members.model import Member
from treu.memberships.service import list_memberships
from treu.money import exponent
from treu.programmes.model import Programme
from treu.rewards.model import VoucherStatus
from treu.rewards.service import RewardLine, VoucherView, list_rewards, list_vouchers
from treu.stamps.service import StampCardView, member_stamp_cards
from treu.storage.uow import UnitOfWork
from treu.tiers.model import Metric
from treu.tiers.service import tier_status
from treu.wallet.service import get_wallet
from treu.web.i18n import Formats


@dataclass(frozen=True)
class RewardOption:
    key: str
    name: str
    cost: int
    description: str | None
    affordable: bool
    missing: int


@dataclass(frozen=True)
class NextReward:
    name: str
    cost: int
    missing: int
    percent: int


@dataclass(frozen=True)
class TierProgress:
    name: str
    next_name: str | None
    value: str
    target: str | None
    missing: str | None
    percent: int
    perks: list[str]


@dataclass(frozen=True)
class Perks:
    name: str
    status: str
    paid_until: datetime | None
    perks: list[str]


@dataclass(frozen=True)
class CardPage:
    balances: Balances
    wallet_minor: int
    next_reward: NextReward | None
    affordable: int
    stamp_cards: list[StampCardView]
    tier: TierProgress | None
    vouchers: list[VoucherView]
    memberships: list[Perks]


def card_page(uow: UnitOfWork, programme: Programme, member: Member, fmt: Formats) -> CardPage:
    balances = get_balances(uow, tenant_id=member.tenant_id, member_id=member.id)
    options = reward_options(uow, programme, balances.available)
    ahead = [o for o in options if not o.affordable]
    nxt = None
    if ahead:
        cheapest = min(ahead, key=lambda o: (o.cost, o.name))
        percent = _percent(balances.available, cheapest.cost)
        nxt = NextReward(cheapest.name, cheapest.cost, cheapest.missing, percent)
    wallet = get_wallet(uow, tenant_id=member.tenant_id, member_id=member.id)
    return CardPage(
        balances=balances,
        wallet_minor=int(wallet.available.scaleb(exponent(wallet.currency))),
        next_reward=nxt,
        affordable=sum(o.affordable for o in options),
        stamp_cards=[
            c
            for c in member_stamp_cards(uow, tenant_id=member.tenant_id, member_id=member.id)
            if c.status == "open"
        ],
        tier=tier_progress(uow, programme, member, fmt),
        vouchers=usable_vouchers(uow, member, uow.now()),
        memberships=[
            Perks(m.plan.name, m.status.value, m.paid_until, m.plan.perks.labels())
            for m in list_memberships(uow, tenant_id=member.tenant_id, member_id=member.id)
            if m.status.has_perks
        ],
    )


def reward_options(uow: UnitOfWork, programme: Programme, available: int) -> list[RewardOption]:
    """The rewards a member can buy with points, cheapest first (gifts that are only given and
    donations are elsewhere)."""
    return [
        RewardOption(
            r.key,
            r.name,
            r.cost,
            r.definition.get("description"),
            r.cost <= available,
            max(0, r.cost - available),
        )
        for r in list_rewards(uow, programme_id=programme.id)
        if _buyable(r) and r.cost is not None
    ]


def _buyable(reward: RewardLine) -> bool:
    return reward.cost is not None and reward.kind != "donation" and reward.stock != 0


def usable_vouchers(uow: UnitOfWork, member: Member, now: datetime) -> list[VoucherView]:
    found = [
        v
        for v in list_vouchers(uow, tenant_id=member.tenant_id, member_id=member.id)
        if v.status is VoucherStatus.ISSUED and (v.expires_at is None or now < v.expires_at)
    ]
    return sorted(found, key=lambda v: (v.expires_at or datetime.max.replace(tzinfo=UTC), v.id))


def tier_progress(
    uow: UnitOfWork, programme: Programme, member: Member, fmt: Formats
) -> TierProgress | None:
    settings = programme.document.tiers
    if settings is None:
        return None
    status = tier_status(uow, programme, member.id)

    def say(units: int) -> str:
        if settings.metric is Metric.SPEND:
            return fmt.minor(units)
        if settings.metric is Metric.VISITS:
            return fmt.ngettext("%(n)s visit", "%(n)s visits", units) % {"n": fmt.number(units)}
        return fmt.points(units)

    target = None
    percent = 100
    if status.next is not None:
        goal = settings.threshold_units(status.next, exponent(programme.currency))
        target = say(goal)
        percent = _percent(status.value, goal)
    return TierProgress(
        status.tier.name,
        status.next.name if status.next else None,
        say(status.value),
        target,
        say(status.missing) if status.missing is not None else None,
        percent,
        list(status.tier.perks),
    )


def _percent(value: int, goal: int) -> int:
    return 100 if goal <= 0 else max(0, min(100, value * 100 // goal))


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    when: datetime
    amount: str  # "+12 Punkte", "−3 Stempel", "+1,20 €"
    positive: bool
    sentence: str
    pending: bool
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryPage:
    lines: list[HistoryLine]
    page: int
    pages: int


def history_page(
    uow: UnitOfWork,
    programme: Programme,
    member: Member,
    fmt: Formats,
    *,
    page: int = 1,
    per_page: int = 25,
) -> HistoryPage:
    """The member's history, newest first, one sentence per entry."""
    entries = member_history(uow, tenant_id=member.tenant_id, member_id=member.id)
    entries.reverse()
    pages = max(1, -(-len(entries) // per_page))
    page = min(max(1, page), pages)
    shown = entries[(page - 1) * per_page : page * per_page]
    today = programme.local_date(uow.now())
    sayer = _Sayer(uow, programme, member, fmt, today)
    return HistoryPage([sayer.line(e) for e in shown], page, pages)


class _Sayer:
    def __init__(
        self, uow: UnitOfWork, programme: Programme, member: Member, fmt: Formats, today: date
    ) -> None:
        self.uow = uow
        self.member = member
        self.fmt = fmt
        self.today = today
        self.rule_names = {r.key: r.name for r in programme.document.rules}
        self._activities: dict[str, ActivityResult | None] = {}
        self._vouchers: list[VoucherView] | None = None

    def line(self, entry: HistoryEntry) -> HistoryLine:
        fmt = self.fmt
        amount = self._amount(entry)
        day = fmt.day(entry.posted_at, today=self.today)
        sentence = self._sentence(entry, amount.lstrip("+−"), day)
        return HistoryLine(
            entry.posted_at, amount, entry.points > 0, sentence, entry.pending, entry.explanations
        )

    def _amount(self, entry: HistoryEntry) -> str:
        fmt = self.fmt
        sign = "+" if entry.points > 0 else "−"
        n = abs(entry.points)
        if entry.unit == "stamps":
            text = fmt.ngettext("%(n)s stamp", "%(n)s stamps", n) % {"n": fmt.number(n)}
        elif entry.unit == "wallet":
            text = fmt.minor(n)
        else:
            text = fmt.points(n)
        return sign + text

    def _activity(self, activity_id: str | None) -> ActivityResult | None:
        if activity_id is None:
            return None
        if activity_id not in self._activities:
            try:
                found: ActivityResult | None = get_activity(
                    self.uow, tenant_id=self.member.tenant_id, activity_id=activity_id
                )
            except NotFound:
                found = None
            self._activities[activity_id] = found
        return self._activities[activity_id]

    def _sentence(self, entry: HistoryEntry, amount: str, day: str) -> str:
        _ = self.fmt.gettext
        values: dict[str, Any] = {"amount": amount, "date": day}
        activity = self._activity(entry.activity_id)
        kind = activity.type if activity else None
        if entry.unit == "stamps":
            return self._stamps(entry, kind, values)
        if entry.unit == "wallet":
            return self._wallet(entry, values)
        if entry.kind == "earn":
            if kind == "purchase":
                text = _("%(amount)s for the purchase of %(date)s") % values
            elif kind == "action":
                text = _("%(amount)s for an action on %(date)s") % values
            else:
                text = _("%(amount)s received on %(date)s") % values
                return text + (f": {entry.reason}" if entry.reason else "")
            return text + self._rules(activity)
        if entry.kind == "reverse":
            text = _("%(amount)s taken back for the return of %(date)s") % values
            return text + self._rules(activity)
        if entry.kind == "hold":
            reward = self._reward_at(entry.posted_at)
            if reward:
                return _("%(amount)s redeemed for %(reward)s on %(date)s") % {
                    **values,
                    "reward": reward,
                }
            return _("%(amount)s redeemed on %(date)s") % values
        simple = {
            "void": _("%(amount)s back: redemption cancelled on %(date)s"),
            "restore": _("%(amount)s back: voucher cancelled on %(date)s"),
            "expire": _("%(amount)s expired on %(date)s"),
            "donate": _("%(amount)s donated on %(date)s"),
            "merge": _("%(amount)s moved from a merged account on %(date)s"),
        }
        if entry.kind == "adjust":
            text = _("%(amount)s corrected by the team on %(date)s") % values
            if entry.reason:
                text += _(", reason: %(reason)s") % {"reason": entry.reason}
            return text
        if entry.kind in simple:
            return simple[entry.kind] % values
        return f"{amount} ({entry.kind}), {day}"

    def _rules(self, activity: ActivityResult | None) -> str:
        if activity is None or not activity.awards:
            return ""
        fmt = self.fmt
        names = [self.rule_names.get(a.rule_key, a.rule_key) for a in activity.awards]
        if len(names) == 1:
            return fmt.gettext(", rule: %(rules)s") % {"rules": names[0]}
        parts = [
            f"{name} ({fmt.points(a.points)})"
            for name, a in zip(names, activity.awards, strict=True)
        ]
        return fmt.gettext(", rules: %(rules)s") % {"rules": "; ".join(parts)}

    def _stamps(self, entry: HistoryEntry, kind: str | None, values: dict[str, Any]) -> str:
        _ = self.fmt.gettext
        if entry.kind == "complete":
            return _("Stamp card full on %(date)s: %(amount)s became a voucher") % values
        if entry.kind == "expire":
            return _("%(amount)s expired on %(date)s") % values
        if entry.points < 0:
            return _("%(amount)s taken back for the return of %(date)s") % values
        if kind == "purchase":
            return _("%(amount)s for the purchase of %(date)s") % values
        return _("%(amount)s received on %(date)s") % values

    def _wallet(self, entry: HistoryEntry, values: dict[str, Any]) -> str:
        _ = self.fmt.gettext
        said = {
            "cashback": _("%(amount)s cashback for the purchase of %(date)s"),
            "pay": _("%(amount)s paid with store credit on %(date)s"),
            "credit": _("%(amount)s store credit on %(date)s"),
            "load": _("%(amount)s gift card loaded on %(date)s"),
            "redeem_card": _("%(amount)s from a gift card on %(date)s"),
        }
        text = said.get(entry.kind, _("%(amount)s store credit on %(date)s")) % values
        return text + (f": {entry.reason}" if entry.reason and entry.kind == "credit" else "")

    def _reward_at(self, at: datetime) -> str | None:
        """The reward a redemption's hold paid for: its voucher was issued in the same instant
        (one transaction: hold → voucher → capture)."""
        if self._vouchers is None:
            self._vouchers = list_vouchers(
                self.uow, tenant_id=self.member.tenant_id, member_id=self.member.id
            )
        return next((v.reward_name for v in self._vouchers if v.issued_at == at), None)
