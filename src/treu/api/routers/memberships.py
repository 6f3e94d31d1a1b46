"""Paid memberships: the plans, a member's memberships, payments and cancellations reported by
the shop, and the revenue report.

A payment's domain idempotency key is its ``external_id`` (the shop's payment id): a retried
report never renews twice, even after the stored response has expired.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import AwareDatetime, Field

from treu.api.deps import Rt, Who, member_for, needs, programme_id_for
from treu.api.pagination import PeriodFrom, PeriodTo
from treu.api.routers.rewards import IdempotencyKey
from treu.api.schemas import Money, _In, _Out
from treu.auth.model import Permission as P
from treu.memberships.model import PlanDef
from treu.memberships.service import (
    MembershipReport,
    MembershipView,
    cancel_membership,
    list_memberships,
    membership_report,
    report_payment,
)
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork

router = APIRouter(tags=["memberships"])

PlanKey = Annotated[str, Path(min_length=1, max_length=64, description="The plan's key")]


class PlanRead(_Out):
    object: Literal["plan"] = "plan"
    key: str
    name: str
    billing: str = Field(description="monthly, yearly or lifetime (one-off)")
    fee: Money
    perks: list[str] = Field(description='What the till reads, e.g. "10 % on Classes"')
    free_shipping: bool
    earn_multiplier: Decimal | None

    @classmethod
    def of(cls, plan: PlanDef, currency: str) -> PlanRead:
        return cls(
            key=plan.key,
            name=plan.name,
            billing=plan.billing,
            fee=Money(amount=plan.fee, currency=currency),
            perks=plan.perks.labels(),
            free_shipping=plan.perks.free_shipping,
            earn_multiplier=plan.perks.earn_multiplier,
        )


class MembershipRead(_Out):
    object: Literal["membership"] = "membership"
    id: str
    member_id: str
    plan: str
    name: str
    status: str = Field(description="active, past_due, cancelled (until paid_until) or expired")
    perks_on: bool = Field(description="whether the plan's perks apply now")
    perks: list[str]
    free_shipping: bool
    started_at: datetime
    paid_until: datetime | None = Field(description="null: lifetime")
    cancelled_at: datetime | None
    replayed: bool = False

    @classmethod
    def of(cls, m: MembershipView) -> MembershipRead:
        return cls(
            id=m.id,
            member_id=m.member_id,
            plan=m.plan.key,
            name=m.plan.name,
            status=m.status.value,
            perks_on=m.status.has_perks,
            perks=m.plan.perks.labels(),
            free_shipping=m.plan.perks.free_shipping,
            started_at=m.started_at,
            paid_until=m.paid_until,
            cancelled_at=m.cancelled_at,
            replayed=m.replayed,
        )


class MembershipPaymentCreate(_In):
    plan: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(description="the plan's fee, exactly")
    currency: str = Field(min_length=3, max_length=3)
    external_id: str = Field(min_length=1, max_length=128, description="the shop's payment id")
    paid_at: AwareDatetime | None = Field(default=None, description="default: now")
    outcome: Literal["paid", "failed"] = "paid"


class PlanRevenueRead(_Out):
    plan: str
    payments: int
    fees: Money
    dividends: Money
    dividends_paid: int


class MembershipReportRead(_Out):
    object: Literal["membership_report"] = "membership_report"
    start: date | None = Field(alias="from")
    end: date | None = Field(alias="to")
    plans: list[PlanRevenueRead]

    @classmethod
    def of(cls, r: MembershipReport) -> MembershipReportRead:
        return cls.model_validate(
            {
                "from": r.start,
                "to": r.end,
                "plans": [
                    PlanRevenueRead(
                        plan=p.plan_key,
                        payments=p.payments,
                        fees=Money(amount=p.fees, currency=r.currency),
                        dividends=Money(amount=p.dividends, currency=r.currency),
                        dividends_paid=p.dividends_paid,
                    )
                    for p in r.plans
                ],
            }
        )


@router.get("/v1/programmes/{programme}/plans", dependencies=[needs(P.PROGRAMMES_READ)])
def plans(rt: Rt, who: Who, programme: str) -> list[PlanRead]:
    """The membership plans on offer, with fee and perks."""

    def go(uow: UnitOfWork) -> list[PlanRead]:
        found = load_programme(uow, programme_id_for(uow, who, programme))
        return [PlanRead.of(p, found.currency) for p in found.document.memberships]

    return rt.read(go)


@router.get("/v1/members/{member_id}/memberships", dependencies=[needs(P.MEMBERS_READ)])
def memberships(rt: Rt, who: Who, member_id: str) -> list[MembershipRead]:
    """The member's memberships and their status now."""

    def go(uow: UnitOfWork) -> list[MembershipRead]:
        member_for(uow, who, member_id)
        found = list_memberships(uow, tenant_id=who.tenant_id, member_id=member_id)
        return [MembershipRead.of(m) for m in found]

    return rt.read(go)


@router.post(
    "/v1/members/{member_id}/memberships/payments",
    status_code=201,
    dependencies=[needs(P.MEMBERSHIPS_WRITE)],
)
def pay(
    rt: Rt,
    who: Who,
    member_id: str,
    body: MembershipPaymentCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MembershipRead:
    """A membership payment the shop took (or failed to take): activates, renews or makes the
    membership past_due. The amount must be the plan's fee (``invalid_amount``), in the
    programme's currency (``currency_mismatch``). Once per ``external_id``."""

    def go(uow: UnitOfWork) -> MembershipRead:
        member_for(uow, who, member_id)
        view = report_payment(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            plan_key=body.plan,
            amount=body.amount,
            currency=body.currency,
            external_id=body.external_id,
            paid_at=body.paid_at,
            outcome=body.outcome,
        )
        return MembershipRead.of(view)

    read = rt.write(go)
    if read.replayed:
        response.status_code = 200
    return read


@router.post(
    "/v1/members/{member_id}/memberships/{plan}/cancel",
    dependencies=[needs(P.MEMBERSHIPS_WRITE)],
)
def cancel(
    rt: Rt, who: Who, member_id: str, plan: PlanKey, idempotency_key: IdempotencyKey = None
) -> MembershipRead:
    """The member cancels: perks stay on to the end of the paid period (a lifetime plan ends
    now). Cancelling again changes nothing."""

    def go(uow: UnitOfWork) -> MembershipRead:
        member_for(uow, who, member_id)
        return MembershipRead.of(
            cancel_membership(uow, tenant_id=who.tenant_id, member_id=member_id, plan_key=plan)
        )

    return rt.write(go)


@router.get("/v1/programmes/{programme}/reports/memberships", dependencies=[needs(P.REPORTS_READ)])
def report(
    rt: Rt,
    who: Who,
    programme: str,
    start: PeriodFrom = None,
    end: PeriodTo = None,
) -> MembershipReportRead:
    """Per plan: fees taken (revenue) and dividends paid (cost) in the period."""

    def go(uow: UnitOfWork) -> MembershipReportRead:
        programme_id = programme_id_for(uow, who, programme)
        return MembershipReportRead.of(
            membership_report(uow, programme_id=programme_id, start=start, end=end)
        )

    return rt.read(go)
