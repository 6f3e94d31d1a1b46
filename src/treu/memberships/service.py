"""Paid memberships' use cases: report payments, failures and cancellations; read a member's
memberships and the plans active at an instant (for the rules and the till); the nightly status
transitions and the annual dividend; the revenue report.

The fee is the shop's revenue, recorded in ``membership_payments`` (never points, never wallet
money). A dividend is wallet money (store credit), posted through :mod:`treu.wallet.service`.

Import rule: this module must not import ``treu.mechanics.service`` or ``treu.activities.service``
(they import it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Row, and_, func, insert, select, update

from treu.activities.model import PurchaseIn, build_basket
from treu.activities.tables import activities
from treu.errors import ErrorCode, InvalidInput, NotFound
from treu.ids import new_id
from treu.ledger.model import TransferKind, start_of_day
from treu.members.service import get_member
from treu.memberships.model import (
    Facts,
    PlanDef,
    Status,
    paid_until,
    period_for,
    status_at,
)
from treu.memberships.model import Period as PaidPeriod
from treu.memberships.tables import membership_dividends, membership_payments, memberships
from treu.money import from_minor, to_minor
from treu.programmes.model import Programme
from treu.programmes.service import load_programme, load_revision
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork
from treu.wallet import service as wallet
from treu.wallet.model import percent_of


@dataclass(frozen=True)
class MembershipView:
    id: str
    member_id: str
    plan: PlanDef
    status: Status
    started_at: datetime
    paid_until: datetime | None  # None: lifetime
    cancelled_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True)
class PlanRevenue:
    plan_key: str
    payments: int
    fees: Decimal
    dividends: Decimal
    dividends_paid: int


@dataclass(frozen=True)
class MembershipReport:
    currency: str
    start: date | None
    end: date | None
    plans: list[PlanRevenue]


def plan_of(programme: Programme, key: str) -> PlanDef:
    plan = next((p for p in programme.document.memberships if p.key == key), None)
    if plan is None:
        raise NotFound(ErrorCode.PLAN_NOT_FOUND, f"no membership plan {key!r}")
    return plan


# --- reading -----------------------------------------------------------------------------


def active_plans(
    uow: UnitOfWork, programme: Programme, member_id: str, at: datetime
) -> frozenset[str]:
    """Keys of the plans whose perks are on for the member at ``at`` (building block)."""
    plans = {p.key: p for p in programme.document.memberships}
    if not plans:
        return frozenset()
    return frozenset(
        row.plan_key
        for row in _rows(uow, member_id)
        if row.plan_key in plans
        and (status := status_at(plans[row.plan_key], _facts(uow, row), at)) is not None
        and status.has_perks
    )


def list_memberships(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> list[MembershipView]:
    """The member's memberships with their status now (plans no longer offered are left out)."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    plans = {p.key: p for p in programme.document.memberships}
    return [
        _view(uow, plans[row.plan_key], row)
        for row in _rows(uow, member_id)
        if row.plan_key in plans
    ]


# --- reporting payments, failures, cancellations -------------------------------------------


def report_payment(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    plan_key: str,
    amount: Decimal,
    currency: str,
    external_id: str,
    paid_at: datetime | None = None,
    outcome: Literal["paid", "failed"] = "paid",
) -> MembershipView:
    """A payment the shop took (or failed to take) for a plan: the first activates the
    membership, later ones renew it, a failure makes it past_due. Once per ``external_id``:
    a retry answers the membership as it is."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    plan = plan_of(programme, plan_key)
    _check_money(programme, plan, amount, currency)
    lock_members(uow, member_id)
    if _payment_known(uow, programme.id, external_id):
        return _replayed(uow, plan, member_id)
    now = uow.now()
    at = min(paid_at or now, now)
    row = _membership_row(uow, programme, member_id, plan, at)
    before = _status(uow, plan, row, at)
    period: PaidPeriod | None = None
    if outcome == "paid":
        continuing = before is not None and before is not Status.EXPIRED
        previous = row.paid_until if continuing else None
        period = period_for(plan, at, previous, programme.tz)
    uow.conn.execute(
        insert(membership_payments).values(
            id=new_id("membership_payment"),
            tenant_id=tenant_id,
            programme_id=programme.id,
            membership_id=row.id,
            member_id=member_id,
            plan_key=plan.key,
            external_id=external_id,
            outcome=outcome,
            amount_minor=to_minor(amount, programme.currency),
            currency=programme.currency,
            paid_at=at,
            period_start=None if period is None else period.start,
            period_end=None if period is None else period.end,
            recorded_at=now,
        )
    )
    changes: dict[str, Any] = {"updated_at": now}
    if outcome == "failed":
        changes["failed_at"] = at
    else:
        changes["cancelled_at"] = None  # paying again takes a cancellation back
    uow.conn.execute(update(memberships).where(memberships.c.id == row.id).values(**changes))
    row = _row(uow, row.id)
    after = _status(uow, plan, row, now)
    assert after is not None
    _sync_paid_until(uow, row)
    if outcome == "failed":
        event = "past_due"
    elif before is None or before is Status.EXPIRED:
        event = "activated"
    else:
        event = "renewed"
    _announce(uow, programme, _row(uow, row.id), plan, event, after)
    uow.commit()
    return _view(uow, plan, _row(uow, row.id))


def cancel_membership(
    uow: UnitOfWork, *, tenant_id: str, member_id: str, plan_key: str
) -> MembershipView:
    """The member cancels: the paid period runs to its end (a lifetime plan ends now).
    Cancelling again changes nothing."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    plan = plan_of(programme, plan_key)
    lock_members(uow, member_id)
    row = _find_row(uow, member_id, plan.key)
    if row is None:
        raise NotFound(
            ErrorCode.MEMBERSHIP_NOT_FOUND, f"{member_id} has no {plan.key!r} membership"
        )
    if row.cancelled_at is not None:
        return _view(uow, plan, row, replayed=True)
    now = uow.now()
    uow.conn.execute(
        update(memberships)
        .where(memberships.c.id == row.id)
        .values(cancelled_at=now, updated_at=now)
    )
    row = _row(uow, row.id)
    after = _status(uow, plan, row, now)
    assert after is not None
    _announce(uow, programme, row, plan, "cancelled", after)
    uow.commit()
    return _view(uow, plan, row)


# --- nightly ---------------------------------------------------------------------------------


def advance_statuses(uow: UnitOfWork, *, programme_id: str, at: datetime) -> int:
    """Announce every membership whose status changed by ``at`` (a period ran out: past_due,
    expired). Idempotent: the announced status is stored with the membership."""
    programme = load_programme(uow, programme_id)
    plans = {p.key: p for p in programme.document.memberships}
    rows = uow.conn.execute(
        select(memberships).where(
            memberships.c.programme_id == programme_id, memberships.c.status != "expired"
        )
    ).all()
    changed = 0
    for row in rows:
        plan = plans.get(row.plan_key)
        status = None if plan is None else status_at(plan, _facts(uow, row), at)
        if plan is None or status is None or status.value == row.status:
            continue
        _announce(uow, programme, row, plan, status.value, status)
        changed += 1
    return changed


@dataclass(frozen=True)
class DividendDue:
    member_id: str
    plan_key: str
    year: int
    eligible_minor: int
    amount_minor: int


# A missed night is caught up for this long after the pay date; after that the year's purchases
# are not scanned again every night.
CATCH_UP = timedelta(days=30)


def dividends_due(uow: UnitOfWork, *, programme_id: str, day: date) -> list[DividendDue]:
    """The dividends to pay on ``day``: for each plan with a dividend whose pay date this year
    has come (up to :data:`CATCH_UP` ago: a missed night is caught up), last year's eligible
    purchases (net of returns, excluded categories left out, only those made while the plan was
    active) of each member not paid yet."""
    programme = load_programme(uow, programme_id)
    due: list[DividendDue] = []
    for plan in programme.document.memberships:
        dividend = plan.perks.dividend
        if dividend is None:
            continue
        pay_day = dividend.paid_on.in_year(day.year)
        if not pay_day <= day < pay_day + CATCH_UP:
            continue
        year = day.year - 1
        paid = set(
            uow.conn.execute(
                select(membership_dividends.c.member_id).where(
                    membership_dividends.c.programme_id == programme_id,
                    membership_dividends.c.plan_key == plan.key,
                    membership_dividends.c.year == year,
                )
            ).scalars()
        )
        excluded = set(dividend.exclude_categories)
        for member_id, eligible in _eligible_per_member(uow, programme, plan.key, year, excluded):
            amount = percent_of(eligible, dividend.percent)
            if member_id not in paid and amount > 0:
                due.append(DividendDue(member_id, plan.key, year, eligible, amount))
    return due


def pay_dividend(uow: UnitOfWork, *, programme_id: str, due: DividendDue) -> bool:
    """Credit one dividend as store credit, once per member, plan and year (False: paid
    already)."""
    programme = load_programme(uow, programme_id)
    lock_members(uow, due.member_id)
    known = uow.conn.execute(
        select(membership_dividends.c.id).where(
            membership_dividends.c.member_id == due.member_id,
            membership_dividends.c.plan_key == due.plan_key,
            membership_dividends.c.year == due.year,
        )
    ).first()
    if known is not None:
        return False
    now = uow.now()
    transfer_id = wallet.credit(
        uow,
        programme,
        member_id=due.member_id,
        amount_minor=due.amount_minor,
        kind=TransferKind.CREDIT,
        key=f"dividend:{due.plan_key}:{due.member_id}:{due.year}",
        at=now,
        reason=f"{due.year} dividend ({due.plan_key})",
    )
    uow.conn.execute(
        insert(membership_dividends).values(
            id=new_id("dividend"),
            tenant_id=programme.tenant_id,
            programme_id=programme_id,
            member_id=due.member_id,
            plan_key=due.plan_key,
            year=due.year,
            eligible_minor=due.eligible_minor,
            amount_minor=due.amount_minor,
            transfer_id=transfer_id,
            paid_at=now,
        )
    )
    currency = programme.currency
    uow.publish(
        Event(
            programme.tenant_id,
            "membership.dividend_paid",
            {
                "member_id": due.member_id,
                "plan": due.plan_key,
                "year": due.year,
                "amount": str(from_minor(due.amount_minor, currency)),
                "currency": currency,
            },
        )
    )
    uow.commit()
    return True


# --- report ----------------------------------------------------------------------------------


def membership_report(
    uow: UnitOfWork, *, programme_id: str, start: date | None, end: date | None
) -> MembershipReport:
    """Fees taken and dividends paid per plan from day ``start`` up to (not including) day
    ``end`` in programme time (open ends: everything): the memberships' revenue and their
    cost, for the programme's KPIs."""
    programme = load_programme(uow, programme_id)
    currency = programme.currency
    start_at = start_of_day(start or date(1970, 1, 1), programme.tz)
    end_at = start_of_day(end or date(9999, 12, 31), programme.tz)
    fees = {
        key: (int(n), int(total))
        for key, n, total in uow.conn.execute(
            select(
                membership_payments.c.plan_key,
                func.count(),
                func.sum(membership_payments.c.amount_minor),
            )
            .where(
                membership_payments.c.programme_id == programme_id,
                membership_payments.c.outcome == "paid",
                membership_payments.c.paid_at >= start_at,
                membership_payments.c.paid_at < end_at,
            )
            .group_by(membership_payments.c.plan_key)
        )
    }
    dividends = {
        key: (int(n), int(total))
        for key, n, total in uow.conn.execute(
            select(
                membership_dividends.c.plan_key,
                func.count(),
                func.sum(membership_dividends.c.amount_minor),
            )
            .where(
                membership_dividends.c.programme_id == programme_id,
                membership_dividends.c.paid_at >= start_at,
                membership_dividends.c.paid_at < end_at,
            )
            .group_by(membership_dividends.c.plan_key)
        )
    }
    keys = [p.key for p in programme.document.memberships]
    keys += sorted((set(fees) | set(dividends)) - set(keys))
    return MembershipReport(
        currency,
        start,
        end,
        [
            PlanRevenue(
                key,
                fees.get(key, (0, 0))[0],
                from_minor(fees.get(key, (0, 0))[1], currency),
                from_minor(dividends.get(key, (0, 0))[1], currency),
                dividends.get(key, (0, 0))[0],
            )
            for key in keys
        ],
    )


# --- helpers ---------------------------------------------------------------------------------


def _check_money(programme: Programme, plan: PlanDef, amount: Decimal, currency: str) -> None:
    if currency.upper() != programme.currency:
        raise InvalidInput(
            ErrorCode.CURRENCY_MISMATCH,
            f"the programme counts in {programme.currency}, the payment is in {currency}",
            errors=[{"path": "currency", "message": f"must be {programme.currency}"}],
        )
    if to_minor(amount, programme.currency) != to_minor(plan.fee, programme.currency):
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            f"the {plan.name} fee is {plan.fee} {programme.currency}, not {amount}",
            errors=[{"path": "amount", "message": f"must be {plan.fee}"}],
        )


def _rows(uow: UnitOfWork, member_id: str) -> list[Row[Any]]:
    return list(
        uow.conn.execute(
            select(memberships)
            .where(memberships.c.member_id == member_id)
            .order_by(memberships.c.id)
        ).all()
    )


def _row(uow: UnitOfWork, membership_id: str) -> Row[Any]:
    return uow.conn.execute(select(memberships).where(memberships.c.id == membership_id)).one()


def _find_row(uow: UnitOfWork, member_id: str, plan_key: str) -> Row[Any] | None:
    return uow.conn.execute(
        select(memberships).where(
            memberships.c.member_id == member_id, memberships.c.plan_key == plan_key
        )
    ).first()


def _membership_row(
    uow: UnitOfWork, programme: Programme, member_id: str, plan: PlanDef, at: datetime
) -> Row[Any]:
    found = _find_row(uow, member_id, plan.key)
    if found is not None:
        return found
    membership_id = new_id("membership")
    uow.conn.execute(
        insert(memberships).values(
            id=membership_id,
            tenant_id=programme.tenant_id,
            programme_id=programme.id,
            member_id=member_id,
            plan_key=plan.key,
            status=Status.EXPIRED.value,  # nothing announced yet
            started_at=at,
            updated_at=uow.now(),
        )
    )
    return _row(uow, membership_id)


def _facts(uow: UnitOfWork, row: Row[Any]) -> Facts:
    periods = tuple(
        PaidPeriod(start, end)
        for start, end in uow.conn.execute(
            select(membership_payments.c.period_start, membership_payments.c.period_end)
            .where(
                membership_payments.c.membership_id == row.id,
                membership_payments.c.outcome == "paid",
            )
            .order_by(membership_payments.c.period_start)
        )
    )
    return Facts(periods, row.failed_at, row.cancelled_at)


def _status(uow: UnitOfWork, plan: PlanDef, row: Row[Any], at: datetime) -> Status | None:
    return status_at(plan, _facts(uow, row), at)


def _sync_paid_until(uow: UnitOfWork, row: Row[Any]) -> None:
    uow.conn.execute(
        update(memberships)
        .where(memberships.c.id == row.id)
        .values(paid_until=paid_until(_facts(uow, row).periods))
    )


def _announce(
    uow: UnitOfWork,
    programme: Programme,
    row: Row[Any],
    plan: PlanDef,
    event: str,
    status: Status,
) -> None:
    uow.conn.execute(
        update(memberships).where(memberships.c.id == row.id).values(status=status.value)
    )
    uow.publish(
        Event(
            programme.tenant_id,
            f"membership.{event}",
            {
                "member_id": row.member_id,
                "plan": plan.key,
                "status": status.value,
                "paid_until": None if row.paid_until is None else row.paid_until.isoformat(),
            },
        )
    )


def _payment_known(uow: UnitOfWork, programme_id: str, external_id: str) -> bool:
    return (
        uow.conn.execute(
            select(membership_payments.c.id).where(
                and_(
                    membership_payments.c.programme_id == programme_id,
                    membership_payments.c.external_id == external_id,
                )
            )
        ).first()
        is not None
    )


def _replayed(uow: UnitOfWork, plan: PlanDef, member_id: str) -> MembershipView:
    row = _find_row(uow, member_id, plan.key)
    assert row is not None
    return _view(uow, plan, row, replayed=True)


def _view(
    uow: UnitOfWork, plan: PlanDef, row: Row[Any], *, replayed: bool = False
) -> MembershipView:
    status = _status(uow, plan, row, uow.now()) or Status.EXPIRED
    return MembershipView(
        row.id,
        row.member_id,
        plan,
        status,
        row.started_at,
        row.paid_until,
        row.cancelled_at,
        replayed,
    )


def _eligible_per_member(
    uow: UnitOfWork, programme: Programme, plan_key: str, year: int, excluded: set[str]
) -> list[tuple[str, int]]:
    """Per member, the paid amount of their ``year`` purchases made while ``plan_key`` was
    active (the standing snapshot of each purchase says so), net of returns, without the
    excluded categories."""
    tz = programme.tz
    start, end = start_of_day(date(year, 1, 1), tz), start_of_day(date(year + 1, 1, 1), tz)
    purchases = uow.conn.execute(
        select(
            activities.c.id,
            activities.c.member_id,
            activities.c.revision_id,
            activities.c.payload,
            activities.c.standing,
        )
        .where(
            activities.c.programme_id == programme.id,
            activities.c.type == "purchase",
            activities.c.member_id.is_not(None),
            activities.c.occurred_at >= start,
            activities.c.occurred_at < end,
        )
        .order_by(activities.c.id)
    ).all()
    mine = [p for p in purchases if plan_key in ((p.standing or {}).get("memberships") or [])]
    if not mine:
        return []
    returned: dict[str, list[int]] = defaultdict(list)
    for purchase_id, payload in uow.conn.execute(
        select(activities.c.purchase_id, activities.c.payload).where(
            activities.c.type == "return",
            activities.c.purchase_id.in_([p.id for p in mine]),
        )
    ):
        so_far = returned[purchase_id]
        for i, amount in enumerate(payload["returned_minor"]):
            so_far.extend([0] * (i + 1 - len(so_far)))
            so_far[i] += amount
    revisions: dict[str, Programme] = {}
    per_member: dict[str, int] = defaultdict(int)
    for p in mine:
        revision = revisions.get(p.revision_id) or load_revision(uow, p.revision_id)
        revisions[p.revision_id] = revision
        basket = build_basket(
            PurchaseIn.model_validate(p.payload),
            revision.currency,
            revision.document.earning_base,
        ).after_returns(returned.get(p.id, []))
        per_member[p.member_id] += sum(
            line.paid_minor
            for line in basket.lines
            if not line.is_shipping and line.category not in excluded
        )
    return sorted(per_member.items())
