"""Analytics: KPIs, cohorts, member value and RFM, uplift, "what if" — all reads.

Every route names its programme with ``?programme=<key>`` and needs ``reports:read`` (the
``read`` and ``admin`` scopes have it). KPIs and member scores also come as CSV or Parquet
(``?format=csv``) for BI tools. Guide: docs/analytics.md.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from treu.analytics.export import MEDIA_TYPES, encode, kpi_frame, scores_frame
from treu.analytics.periods import PeriodUnit, default_range
from treu.analytics.service import (
    KpiReport,
    MemberScores,
    Source,
    ValueSettings,
    WhatIf,
    cohort_report,
    member_scores,
    member_value,
    programme_kpis,
    simulate_programme,
    uplift_report,
)
from treu.analytics.uplift import Interval, Uplift
from treu.analytics.whatif import Totals
from treu.api.deps import Rt, Who, member_for, needs, programme_id_for
from treu.api.pagination import PeriodFrom, PeriodTo
from treu.api.schemas import _In, _Out
from treu.auth.model import Permission as P
from treu.members.service import resolve_member_id
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

ProgrammeKey = Annotated[str, Query(min_length=1, max_length=64, description="Programme key")]
Format = Annotated[
    Literal["json", "csv", "parquet"], Query(description="json, or a file for BI tools")
]
Months = Annotated[int, Query(ge=1, le=120, description="CLV horizon in months")]
Discount = Annotated[
    Decimal, Query(ge=0, le=1, description="Annual discount rate of the CLV (0.10 = 10 %)")
]
Margin = Annotated[Decimal, Query(gt=0, le=1, description="Gross margin (1: revenue)")]
SourceQuery = Annotated[
    Source,
    Query(
        description="auto: the columnar store when it is as fresh as the last nightly run, "
        "else the database; database or store: insist (store without a fresh one: 404)"
    ),
]
SourceField = Field(default="database", description="Where the facts came from: database or store")
AsOfField = Field(
    default=None, description="With source store: the instant the store's copy was made"
)


def _file(data: bytes, fmt: Literal["csv", "parquet"], name: str) -> Response:
    return Response(
        data,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def _range(uow: UnitOfWork, programme_id: str, unit: PeriodUnit, first: Any, end: Any) -> Any:
    if first is not None and end is not None:
        return first, end
    programme = load_programme(uow, programme_id)
    start, stop = default_range(unit, programme.local_date(uow.now()))
    return first or start, end or stop


# --- KPIs ----------------------------------------------------------------------------------


class KpiReportRead(_Out):
    object: Literal["kpi_report"] = "kpi_report"
    programme: str
    currency: str
    period: PeriodUnit
    from_: date = Field(alias="from")
    to: date
    kpis: list[dict[str, Any]] = Field(description="One row per period: see docs/kpis.md")
    splits: dict[str, list[dict[str, Any]]] = Field(
        description="Per store, tier or segment (``store:<key>`` …): the same rows"
    )
    source: str = SourceField
    as_of: datetime | None = AsOfField

    @classmethod
    def of(cls, report: KpiReport) -> KpiReportRead:
        return cls.model_validate(
            {
                "programme": report.programme,
                "currency": report.currency,
                "period": report.unit,
                "from": report.first,
                "to": report.end,
                "kpis": [s.as_row() for s in report.programme_sets],
                "splits": {k: [s.as_row() for s in v] for k, v in report.splits.items()},
                "source": report.source,
                "as_of": report.as_of,
            }
        )


@router.get(
    "/kpis",
    dependencies=[needs(P.REPORTS_READ)],
    response_model=KpiReportRead,
    response_model_by_alias=True,
)
def get_kpis(
    rt: Rt,
    who: Who,
    programme: ProgrammeKey,
    period: PeriodUnit = PeriodUnit.MONTH,
    start: PeriodFrom = None,
    end: PeriodTo = None,
    store: Annotated[str | None, Query(max_length=64, description="This store only")] = None,
    split: Annotated[
        Literal["store", "tier", "segment"] | None, Query(description="Also per …")
    ] = None,
    format: Format = "json",
    source: SourceQuery = "auto",
) -> Any:
    """The programme's KPIs per ``period`` (day, week, month, quarter, year in programme time)
    for the whole periods covering ``from`` … ``to`` (default: the last 12 periods); rates are
    rounded to 6 decimals, the counts they come from are in the same row."""

    def go(uow: UnitOfWork) -> KpiReport:
        programme_id = programme_id_for(uow, who, programme)
        first, stop = _range(uow, programme_id, period, start, end)
        return programme_kpis(
            uow,
            programme_id=programme_id,
            unit=period,
            first=first,
            end=stop,
            split=split,
            store=store,
            source=source,
        )

    report = rt.read(go)
    if format != "json":
        return _file(encode(kpi_frame(report.all_sets()), format), format, "kpis")
    return KpiReportRead.of(report)


# --- cohorts -------------------------------------------------------------------------------


class CohortRead(_Out):
    cohort: str
    members: int
    active: list[int]
    rates: list[str | None]


class CohortsRead(_Out):
    object: Literal["cohorts"] = "cohorts"
    basis: Literal["enrolment", "first_purchase"]
    cohorts: list[CohortRead]
    series: list[dict[str, Any]] = Field(description="Chart-ready: cohort, offset, rate …")
    source: str = SourceField
    as_of: datetime | None = AsOfField


@router.get("/cohorts", dependencies=[needs(P.REPORTS_READ)])
def get_cohorts(
    rt: Rt,
    who: Who,
    programme: ProgrammeKey,
    start: PeriodFrom = None,
    end: PeriodTo = None,
    basis: Literal["enrolment", "first_purchase"] = "enrolment",
    source: SourceQuery = "auto",
) -> CohortsRead:
    """Retention by enrolment (or first purchase) month: of each month's members, how many
    bought in each month after (default: the last 12 months)."""

    def go(uow: UnitOfWork) -> CohortsRead:
        programme_id = programme_id_for(uow, who, programme)
        first, stop = _range(uow, programme_id, PeriodUnit.MONTH, start, end)
        table = cohort_report(
            uow, programme_id=programme_id, first=first, end=stop, basis=basis, source=source
        )
        return CohortsRead(
            basis=table.basis,
            cohorts=[
                CohortRead(
                    cohort=c.month,
                    members=c.size,
                    active=c.active,
                    rates=[None if r is None else f"{float(r):.4f}" for r in c.rates],
                )
                for c in table.cohorts
            ],
            series=table.series(),
            source=table.source,
            as_of=table.as_of,
        )

    return rt.read(go)


# --- member value and RFM ------------------------------------------------------------------


class MemberValueRead(_Out):
    object: Literal["member_value"] = "member_value"
    member_id: str
    currency: str
    purchased: bool = Field(description="false: no purchase yet, nothing to score")
    recency_days: int | None = None
    frequency: int | None = None
    monetary: Decimal | None = None
    rfm: str | None = Field(default=None, description="R, F and M scores, e.g. 545")
    segment: str | None = None
    p_alive: Decimal | None = None
    churn_risk: Decimal | None = Field(default=None, description="1 − P(alive)")
    expected_purchases: Decimal | None = None
    expected_spend: Decimal | None = None
    clv: Decimal | None = None
    months: int


@router.get("/members/{member_id}/value", dependencies=[needs(P.REPORTS_READ)])
def get_member_value(
    rt: Rt,
    who: Who,
    member_id: Annotated[str, Path(min_length=1, max_length=400)],
    programme: Annotated[
        str | None,
        Query(max_length=64, description="Programme key: needed for a kind:value reference"),
    ] = None,
    months: Months = 12,
    discount: Discount = Decimal("0.10"),
    margin: Margin = Decimal(1),
) -> MemberValueRead:
    """One member's RFM scores and segment, P(alive), churn risk, expected purchases and spend
    and CLV over ``months`` (models fitted on the programme's purchases). The member is a
    member id, or ``kind:value`` (``email:mia@example.org``) with ``programme``."""

    def go(uow: UnitOfWork) -> MemberValueRead:
        if programme is None:
            programme_id = member_for(uow, who, member_id).programme_id
            found = member_id
        else:
            programme_id = programme_id_for(uow, who, programme)
            found = resolve_member_id(uow, programme_id=programme_id, reference=member_id)
            member_for(uow, who, found)
        settings = ValueSettings(months, discount, margin)
        value = member_value(uow, programme_id=programme_id, member_id=found, settings=settings)
        currency = load_programme(uow, programme_id).currency
        if value is None:
            return MemberValueRead(
                member_id=found, currency=currency, purchased=False, months=months
            )
        return MemberValueRead(
            member_id=found,
            currency=currency,
            purchased=True,
            recency_days=value.recency_days,
            frequency=value.frequency,
            monetary=value.monetary,
            rfm=f"{value.r}{value.f}{value.m}",
            segment=value.segment,
            p_alive=value.p_alive,
            churn_risk=value.churn_risk,
            expected_purchases=value.expected_purchases,
            expected_spend=value.expected_spend,
            clv=value.clv,
            months=months,
        )

    return rt.read(go)


class RfmRead(_Out):
    object: Literal["rfm"] = "rfm"
    currency: str
    segments: dict[str, int] = Field(description="members per RFM segment")
    members: list[dict[str, Any]] = Field(description="per member: scores, segment, CLV …")
    source: str = SourceField
    as_of: datetime | None = AsOfField


@router.get("/rfm", dependencies=[needs(P.REPORTS_READ)])
def get_rfm(
    rt: Rt,
    who: Who,
    programme: ProgrammeKey,
    segment: Annotated[str | None, Query(max_length=64, description="Only this segment")] = None,
    months: Months = 12,
    discount: Discount = Decimal("0.10"),
    margin: Margin = Decimal(1),
    format: Format = "json",
    source: SourceQuery = "auto",
) -> Any:
    """Every member who bought, with RFM scores and segment, churn risk and CLV (the export a
    campaign or segment is built from)."""

    def go(uow: UnitOfWork) -> tuple[MemberScores, Any]:
        programme_id = programme_id_for(uow, who, programme)
        scores = member_scores(
            uow,
            programme_id=programme_id,
            settings=ValueSettings(months, discount, margin),
            source=source,
        )
        return scores, scores_frame(scores.frame, scores.currency)

    scores, table = rt.read(go)
    counts = dict(table.group_by("segment").len().sort("segment").iter_rows())
    if segment is not None:
        table = table.filter(table["segment"] == segment)
    if format != "json":
        return _file(encode(table, format), format, "members")
    return RfmRead(
        currency=scores.currency,
        segments=counts,
        members=table.to_dicts(),
        source=scores.source,
        as_of=scores.as_of,
    )


# --- uplift --------------------------------------------------------------------------------


class IntervalRead(_Out):
    estimate: float
    low: float
    high: float

    @classmethod
    def of(cls, interval: Interval | None) -> IntervalRead | None:
        if interval is None:
            return None
        return cls(estimate=interval.estimate, low=interval.low, high=interval.high)


class UpliftRead(_Out):
    object: Literal["uplift"] = "uplift"
    automation: str
    treated: int
    control: int
    purchase_rate_treated: float | None
    purchase_rate_control: float | None
    purchase_rate: IntervalRead | None = Field(description="treated − control, Newcombe")
    revenue_per_member_treated: float | None = Field(description="minor units")
    revenue_per_member_control: float | None
    revenue_per_member: IntervalRead | None = Field(description="treated − control, Welch")
    points_per_member_treated: float | None
    points_per_member_control: float | None
    points_per_member: IntervalRead | None

    @classmethod
    def of(cls, u: Uplift) -> UpliftRead:
        return cls(
            automation=u.automation,
            treated=u.treated,
            control=u.control,
            purchase_rate_treated=u.purchase_rate_treated,
            purchase_rate_control=u.purchase_rate_control,
            purchase_rate=IntervalRead.of(u.purchase_rate),
            revenue_per_member_treated=u.revenue_treated_minor,
            revenue_per_member_control=u.revenue_control_minor,
            revenue_per_member=IntervalRead.of(u.revenue),
            points_per_member_treated=u.points_treated,
            points_per_member_control=u.points_control,
            points_per_member=IntervalRead.of(u.points),
        )


@router.get("/uplift", dependencies=[needs(P.REPORTS_READ)])
def get_uplift(
    rt: Rt,
    who: Who,
    programme: ProgrammeKey,
    automation: Annotated[str | None, Query(max_length=64)] = None,
    window_days: Annotated[int, Query(ge=1, le=365, description="days after each run")] = 30,
    confidence: Annotated[float, Query(ge=0.5, le=0.999)] = 0.95,
) -> list[UpliftRead]:
    """Per automation with a control group: purchase rate, revenue and points per member of
    treated against held-out members in the ``window_days`` after each run, with intervals."""

    def go(uow: UnitOfWork) -> list[UpliftRead]:
        programme_id = programme_id_for(uow, who, programme)
        found = uplift_report(
            uow,
            programme_id=programme_id,
            window_days=window_days,
            automation=automation,
            confidence=confidence,
        )
        return [UpliftRead.of(u) for u in found]

    return rt.read(go)


# --- what if -------------------------------------------------------------------------------


class SimulationCreate(_In):
    programme: str = Field(min_length=1, max_length=64, description="the programme's key")
    document: dict[str, Any] = Field(description="the proposed programme document")
    from_: date = Field(alias="from")
    to: date


class TotalsRead(_Out):
    points_issued: int
    points_taken_back: int
    points_redeemed: int
    points_expired: int
    outstanding_points: int
    point_value: Decimal
    liability: Decimal
    cost: Decimal
    tiers: dict[str, int]

    @classmethod
    def of(cls, t: Totals) -> TotalsRead:
        return cls(
            points_issued=t.points_issued,
            points_taken_back=t.points_taken_back,
            points_redeemed=t.points_redeemed,
            points_expired=t.points_expired,
            outstanding_points=t.outstanding_points,
            point_value=t.point_value,
            liability=t.liability,
            cost=t.cost,
            tiers=t.tiers,
        )


class SimulationRead(_Out):
    object: Literal["simulation"] = "simulation"
    programme: str
    currency: str
    from_: date = Field(alias="from")
    to: date
    activities: int
    changed: int
    actual: TotalsRead
    proposed: TotalsRead

    @classmethod
    def of(cls, w: WhatIf) -> SimulationRead:
        return cls.model_validate(
            {
                "programme": w.programme,
                "currency": w.currency,
                "from": w.first,
                "to": w.end,
                "activities": w.activities,
                "changed": w.changed,
                "actual": TotalsRead.of(w.actual),
                "proposed": TotalsRead.of(w.proposed),
            }
        )


@router.post(
    "/simulate",
    dependencies=[needs(P.REPORTS_READ)],
    response_model=SimulationRead,
    response_model_by_alias=True,
)
def simulate(rt: Rt, who: Who, body: SimulationCreate) -> Any:
    """Replay the members' activities of ``from`` … ``to`` under a proposed programme document
    and compare points issued, taken back, redeemed and expired, liability, cost and tiers with
    what happened. Writes nothing."""

    def go(uow: UnitOfWork) -> SimulationRead:
        programme_id = programme_id_for(uow, who, body.programme)
        return SimulationRead.of(
            simulate_programme(
                uow,
                programme_id=programme_id,
                document=body.document,
                first=body.from_,
                end=body.to,
            )
        )

    return rt.read(go)
