"""Charities, donations of points, and the donation report.

A donation's domain idempotency key is the request's Idempotency-Key: a retried donation never
gives twice, even after the stored response has expired.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Response
from pydantic import Field, model_validator

from treu.activities.model import Money
from treu.api.deps import Rt, Who, member_for, needs, programme_id_for
from treu.api.pagination import PeriodFrom, PeriodTo
from treu.api.schemas import _In, _Out
from treu.auth.model import Permission as P
from treu.donations.service import (
    CharityView,
    DonationTotal,
    DonationView,
    donate_points,
    donate_wallet,
    donation_report,
    list_charities,
)
from treu.storage.uow import UnitOfWork

router = APIRouter(tags=["donations"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes the request happen once; send a new random value per operation",
    ),
]


class CharityRead(_Out):
    object: Literal["charity"] = "charity"
    key: str
    name: str
    description: str | None
    url: str | None
    wallet: bool = Field(description="takes wallet money (round-ups)")
    points_per_step: int | None = Field(description="none: donations of points not offered now")
    amount_per_step: Decimal | None
    currency: str

    @classmethod
    def of(cls, c: CharityView) -> CharityRead:
        return cls(
            key=c.key,
            name=c.name,
            description=c.description,
            url=c.url,
            wallet=c.wallet,
            points_per_step=c.points_per_step,
            amount_per_step=c.amount_per_step,
            currency=c.currency,
        )


class DonationCreate(_In):
    """Points (``points``), or wallet money: ``amount``, or the round-up of a purchase total
    (``round_up_of``), with ``currency``."""

    charity: str = Field(min_length=1, max_length=64)
    points: int | None = Field(
        default=None, gt=0, le=100_000_000, description="whole steps of the charity's rate"
    )
    amount: Money | None = Field(default=None, description="wallet money to give")
    round_up_of: Money | None = Field(
        default=None, description="a purchase total: its round-up to the next whole unit"
    )
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")

    @model_validator(mode="after")
    def _one_source(self) -> DonationCreate:
        given = [f for f in ("points", "amount", "round_up_of") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give one of points, amount or round_up_of")
        if given != ["points"] and self.currency is None:
            raise ValueError("a donation of wallet money needs its currency")
        return self


class DonationRead(_Out):
    object: Literal["donation"] = "donation"
    id: str
    member_id: str
    charity: str
    source: Literal["points", "wallet"]
    points: int
    amount: Decimal
    currency: str
    transfer_id: str
    created_at: datetime
    replayed: bool = False

    @classmethod
    def of(cls, d: DonationView) -> DonationRead:
        return cls(
            id=d.id,
            member_id=d.member_id,
            charity=d.charity,
            source="points" if d.unit == "points" else "wallet",
            points=d.points,
            amount=d.amount,
            currency=d.currency,
            transfer_id=d.transfer_id,
            created_at=d.created_at,
            replayed=d.replayed,
        )


class DonationTotalRead(_Out):
    charity: str
    name: str
    amount: Decimal
    currency: str
    donors: int = Field(description="distinct members who gave in the period")
    points: int
    donations: int


class DonationReportRead(_Out):
    object: Literal["donation_report"] = "donation_report"
    start: date | None = Field(alias="from")
    end: date | None = Field(alias="to")
    charities: list[DonationTotalRead]

    @classmethod
    def of(
        cls, start: date | None, end: date | None, totals: list[DonationTotal]
    ) -> DonationReportRead:
        return cls.model_validate(
            {
                "from": start,
                "to": end,
                "charities": [DonationTotalRead(**t.__dict__) for t in totals],
            }
        )


@router.get("/v1/programmes/{programme}/charities", dependencies=[needs(P.REWARDS_READ)])
def charities(rt: Rt, who: Who, programme: str) -> list[CharityRead]:
    """The charities members can donate to, with the rate of each (points per step, money)."""

    def go(uow: UnitOfWork) -> list[CharityRead]:
        programme_id = programme_id_for(uow, who, programme)
        return [CharityRead.of(c) for c in list_charities(uow, programme_id=programme_id)]

    return rt.read(go)


@router.post("/v1/members/{member_id}/donations", status_code=201, dependencies=[needs(P.REDEEM)])
def donate(
    rt: Rt,
    who: Who,
    member_id: str,
    body: DonationCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DonationRead:
    """Give points to a charity in whole steps (``invalid_amount`` otherwise, nothing changes),
    or wallet money to a charity that takes it (an amount, or a purchase's round-up)."""
    key = idempotency_key or f"api-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> DonationRead:
        member_for(uow, who, member_id)
        if body.points is not None:
            done = donate_points(
                uow,
                tenant_id=who.tenant_id,
                member_id=member_id,
                charity=body.charity,
                points=body.points,
                idempotency_key=key,
            )
        else:
            assert body.currency is not None  # the body's validator
            done = donate_wallet(
                uow,
                tenant_id=who.tenant_id,
                member_id=member_id,
                charity=body.charity,
                currency=body.currency,
                amount=body.amount,
                round_up_of=body.round_up_of,
                idempotency_key=key,
            )
        return DonationRead.of(done)

    read = rt.write(go)
    if read.replayed:
        response.status_code = 200
    return read


@router.get("/v1/programmes/{programme}/donations/report", dependencies=[needs(P.DONATIONS_READ)])
def report(
    rt: Rt,
    who: Who,
    programme: str,
    start: PeriodFrom = None,
    end: PeriodTo = None,
) -> DonationReportRead:
    """Per charity: money raised, distinct donors and points given in the period."""

    def go(uow: UnitOfWork) -> DonationReportRead:
        programme_id = programme_id_for(uow, who, programme)
        totals = donation_report(uow, programme_id=programme_id, start=start, end=end)
        return DonationReportRead.of(start, end, totals)

    return rt.read(go)
