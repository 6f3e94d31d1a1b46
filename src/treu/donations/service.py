"""Use cases for donations: list charities, donate points, the donation report.

A donation is one transaction: lock the member, check the step, spend the points from their lots
(soonest expiry first) into the programme's donation account, write the donation row with the
money it is worth. The idempotency key makes a retried request return the first donation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from treu.donations.model import (
    CharityDef,
    DonationRate,
    check_period,
    donation_amount,
    round_up_minor,
)
from treu.donations.tables import donations
from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound, Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import MemberAccount, SystemAccount, TransferKind, Unit, start_of_day
from treu.members.model import MemberStatus
from treu.members.service import get_member, touch_member
from treu.money import format_money, from_minor, to_minor
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.rewards.model import RewardKind
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork, is_unique_violation


@dataclass(frozen=True)
class CharityView:
    key: str
    name: str
    description: str | None
    url: str | None
    wallet: bool  # takes wallet money (round-ups)
    points_per_step: int | None  # None: listed, but no donation reward offers it now
    amount_per_step: Decimal | None
    currency: str


@dataclass(frozen=True)
class DonationView:
    id: str
    member_id: str
    charity: str
    unit: str  # what was given: points, or wallet money
    points: int  # 0 for wallet money
    amount: Decimal
    currency: str
    transfer_id: str
    created_at: datetime
    replayed: bool = False


@dataclass(frozen=True)
class DonationTotal:
    charity: str
    name: str
    amount: Decimal
    currency: str
    donors: int
    points: int
    donations: int


def list_charities(uow: UnitOfWork, *, programme_id: str) -> list[CharityView]:
    programme = load_programme(uow, programme_id)
    rates = _rates(programme)
    views = []
    for charity in programme.document.charities:
        rate = rates.get(charity.key)
        views.append(
            CharityView(
                charity.key,
                charity.name,
                charity.description,
                charity.url,
                charity.wallet,
                rate.points_per_step if rate else None,
                from_minor(rate.amount_per_step_minor, programme.currency) if rate else None,
                programme.currency,
            )
        )
    return views


def donate_points(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    charity: str,
    points: int,
    idempotency_key: str,
) -> DonationView:
    """Give ``points`` (whole steps) to ``charity``; ``invalid_amount`` and nothing changes if
    they are not whole steps, ``insufficient_points`` if the member has fewer."""
    asked = _Asked(member_id, charity, "points", points, None)
    replay, programme = _begin(uow, tenant_id, idempotency_key, asked)
    if replay:
        return replay
    amount_minor = donation_amount(_rate(programme, charity), points)
    reason = _reason(programme, charity, amount_minor)

    def move() -> str:
        return postings.spend(
            uow,
            programme,
            member_id=member_id,
            amount=points,
            kind=TransferKind.DONATE,
            credit=postings.system_acc(programme, SystemAccount.DONATION),
            key=f"donate:{idempotency_key}",
            at=uow.now(),
            reason=reason,
        )

    return _record(uow, programme, idempotency_key, asked, amount_minor, move)


def donate_wallet(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    charity: str,
    currency: str,
    idempotency_key: str,
    amount: Decimal | None = None,
    round_up_of: Decimal | None = None,
) -> DonationView:
    """Give wallet money to ``charity``: ``amount``, or the round-up of a purchase total
    (``round_up_of`` 23.40 gives 0.60). The charity must accept wallet money (``wallet: true``);
    ``insufficient_funds`` if the wallet holds less."""
    if (amount is None) == (round_up_of is None):
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "give either amount or round_up_of",
            errors=[{"path": "amount", "message": "give either amount or round_up_of"}],
        )
    member = get_member(uow, member_id, tenant_id=tenant_id)
    if currency.upper() != load_programme(uow, member.programme_id).currency:
        raise InvalidInput(
            ErrorCode.CURRENCY_MISMATCH,
            f"the wallet is not in {currency}",
            errors=[{"path": "currency", "message": "must be the programme's currency"}],
        )
    if round_up_of is not None:
        minor = round_up_minor(to_minor(round_up_of, currency, field="round_up_of"), currency)
    else:
        assert amount is not None
        minor = to_minor(amount, currency)
    asked = _Asked(member_id, charity, "wallet", 0, minor)
    replay, programme = _begin(uow, tenant_id, idempotency_key, asked)
    if replay:
        return replay
    _charity(programme, charity, wallet=True)
    reason = _reason(programme, charity, minor)
    if minor <= 0:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            "a donation is more than zero",
            errors=[{"path": "amount", "message": "must be more than 0"}],
        )

    def move() -> str:
        return postings.post(
            uow,
            programme,
            kind=TransferKind.DONATE,
            debit=postings.member_acc(member_id, MemberAccount.AVAILABLE, Unit.WALLET),
            credit=postings.system_acc(programme, SystemAccount.DONATION, Unit.WALLET),
            amount=minor,
            key=f"donate:{idempotency_key}",
            member_id=member_id,
            at=uow.now(),
            reason=reason,
            unit=Unit.WALLET,
        )

    return _record(uow, programme, idempotency_key, asked, minor, move)


@dataclass(frozen=True)
class _Asked:
    """What a donation request asked for: a replay must ask for the same."""

    member_id: str
    charity: str
    unit: str
    points: int
    amount_minor: int | None  # wallet donations: the money


def _begin(
    uow: UnitOfWork, tenant_id: str, key: str, asked: _Asked
) -> tuple[DonationView | None, Programme]:
    """Lock the member; the first donation if ``key`` was used already; else check the member
    may donate. Returns (replay, programme)."""
    member = get_member(uow, asked.member_id, tenant_id=tenant_id)
    lock_members(uow, asked.member_id)
    programme = load_programme(uow, member.programme_id)
    replay = _replay(uow, tenant_id, key, asked)
    if replay is None and member.status is not MemberStatus.ACTIVE:
        raise Rejected(ErrorCode.MEMBER_BLOCKED, f"member {member.id} is {member.status}")
    return replay, programme


def _record(
    uow: UnitOfWork,
    programme: Programme,
    key: str,
    asked: _Asked,
    amount_minor: int,
    move: Callable[[], str],
) -> DonationView:
    """Post the transfer (``move``), write the donation, publish ``donation.made``, commit."""
    now = uow.now()
    donation_id = new_id("donation")
    try:
        transfer_id = move()
        uow.conn.execute(
            insert(donations).values(
                id=donation_id,
                tenant_id=programme.tenant_id,
                programme_id=programme.id,
                member_id=asked.member_id,
                charity=asked.charity,
                unit=asked.unit,
                points=asked.points,
                amount_minor=amount_minor,
                currency=programme.currency,
                transfer_id=transfer_id,
                idempotency_key=key,
                created_at=now,
            )
        )
    except IntegrityError as exc:
        # Two members' requests sharing a key: the other committed first (see redeem_reward).
        if not is_unique_violation(exc):
            raise
        uow.rollback()
        return _replay(uow, programme.tenant_id, key, asked) or _gone()
    touch_member(uow, asked.member_id, now, purchase=False)
    view = DonationView(
        donation_id,
        asked.member_id,
        asked.charity,
        asked.unit,
        asked.points,
        from_minor(amount_minor, programme.currency),
        programme.currency,
        transfer_id,
        now,
    )
    uow.publish(
        Event(
            programme.tenant_id,
            "donation.made",
            {
                "donation_id": donation_id,
                "member_id": asked.member_id,
                "charity": asked.charity,
                "source": asked.unit,
                "points": asked.points,
                "amount": str(view.amount),
                "currency": programme.currency,
            },
        )
    )
    uow.commit()
    return view


def donation_report(
    uow: UnitOfWork,
    *,
    programme_id: str,
    start: date | None = None,
    end: date | None = None,
) -> list[DonationTotal]:
    """Per charity: money raised, distinct donors, points given, in ``[start, end)`` (programme
    days; open ends: since the start, until now). Every listed charity appears, even at zero."""
    check_period(start, end)
    programme = load_programme(uow, programme_id)
    query = (
        select(
            donations.c.charity,
            donations.c.currency,
            func.sum(donations.c.amount_minor),
            func.count(func.distinct(donations.c.member_id)),
            func.sum(donations.c.points),
            func.count(),
        )
        .where(donations.c.programme_id == programme_id)
        .group_by(donations.c.charity, donations.c.currency)
        .order_by(donations.c.charity, donations.c.currency)
    )
    if start is not None:
        query = query.where(donations.c.created_at >= start_of_day(start, programme.tz))
    if end is not None:
        query = query.where(donations.c.created_at < start_of_day(end, programme.tz))
    names = {c.key: c.name for c in programme.document.charities}
    totals = [
        DonationTotal(
            charity,
            names.get(charity, charity),  # a charity since removed keeps its key as its name
            from_minor(int(amount), currency),
            currency,
            int(donors),
            int(points),
            int(count),
        )
        for charity, currency, amount, donors, points, count in uow.conn.execute(query)
    ]
    given = {t.charity for t in totals}
    totals += [
        DonationTotal(c.key, c.name, from_minor(0, programme.currency), programme.currency, 0, 0, 0)
        for c in programme.document.charities
        if c.key not in given
    ]
    return sorted(totals, key=lambda t: t.charity)


# --- internals ---------------------------------------------------------------------------


def _rates(programme: Programme) -> dict[str, DonationRate]:
    rates: dict[str, DonationRate] = {}
    for reward in programme.document.rewards:
        if reward.kind is not RewardKind.DONATION or not reward.active:
            continue
        # RewardDef's validator guarantees all three on a donation reward
        assert reward.charity is not None
        assert reward.points_per_step is not None
        assert reward.amount_per_step is not None
        rates[reward.charity] = DonationRate(
            reward.charity,
            reward.points_per_step,
            to_minor(reward.amount_per_step, programme.currency, field="amount_per_step"),
        )
    return rates


def _charity(programme: Programme, charity: str, *, wallet: bool = False) -> CharityDef:
    found = next((c for c in programme.document.charities if c.key == charity), None)
    if found is None:
        raise NotFound(ErrorCode.CHARITY_NOT_FOUND, f"no charity {charity!r} in this programme")
    if wallet and not found.wallet:
        raise Rejected(ErrorCode.REWARD_UNAVAILABLE, f"{found.name} does not take wallet donations")
    return found


def _reason(programme: Programme, charity: str, amount_minor: int) -> str:
    """What the member's history says: "Donation of 20.00 USD to ..."."""
    name = _charity(programme, charity).name
    return f"Donation of {format_money(amount_minor, programme.currency)} to {name}"


def _rate(programme: Programme, charity: str) -> DonationRate:
    name = _charity(programme, charity).name
    rate = _rates(programme).get(charity)
    if rate is None:
        raise Rejected(
            ErrorCode.REWARD_UNAVAILABLE, f"donations of points to {name} are not offered"
        )
    return rate


def _replay(uow: UnitOfWork, tenant_id: str, key: str, asked: _Asked) -> DonationView | None:
    row = uow.conn.execute(
        select(donations).where(
            donations.c.tenant_id == tenant_id, donations.c.idempotency_key == key
        )
    ).first()
    if row is None:
        return None
    was = _Asked(
        row.member_id,
        row.charity,
        row.unit,
        int(row.points),
        int(row.amount_minor) if row.unit == "wallet" else None,
    )
    if was != asked:
        raise Conflict(
            ErrorCode.IDEMPOTENCY_KEY_REUSE,
            f"idempotency key {key!r} was used for a different donation",
        )
    return DonationView(
        row.id,
        row.member_id,
        row.charity,
        row.unit,
        int(row.points),
        from_minor(int(row.amount_minor), row.currency),
        row.currency,
        row.transfer_id,
        row.created_at,
        replayed=True,
    )


def _gone() -> DonationView:
    raise RuntimeError("a donation conflicted but cannot be read back")
