"""Analytics use cases: read the facts from storage, count and model them in memory.

Nothing here writes. Facts are read with SQLAlchemy Core into Polars frames (one query per
table, only the columns the KPIs need) and handed to the pure modules; a programme with a
columnar store (``treu.analytics.store``) is read from its Parquet files instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Select, case, func, literal, select

from treu.activities.tables import activities, awards
from treu.analytics import clv, cohorts, kpis, rfm, uplift, whatif
from treu.analytics import store as columnar
from treu.analytics.cohorts import Basis, Cohorts
from treu.analytics.kpis import Facts
from treu.analytics.model import KpiSet
from treu.analytics.periods import PeriodUnit, Window, windows
from treu.automations.tables import automation_runs
from treu.config import get_settings
from treu.donations.tables import donations
from treu.errors import ErrorCode, InvalidInput, NotFound
from treu.jobs.tables import job_runs
from treu.ledger.model import start_of_day
from treu.ledger.tables import lot_allocations, lots, transfers
from treu.mechanics.model import Standing
from treu.members.tables import members
from treu.memberships.tables import membership_dividends, membership_payments
from treu.money import exponent, from_minor
from treu.programmes.model import Programme, ProgrammeDocument, parse_document
from treu.programmes.service import load_programme
from treu.programmes.tables import stores
from treu.referrals.tables import referrals
from treu.rewards.tables import redemptions, rewards
from treu.rules.model import Period
from treu.segments.tables import segment_members
from treu.storage.uow import UnitOfWork
from treu.tiers import model as tier_model
from treu.tiers import service as tiers_service
from treu.tiers.tables import member_tiers

Split = Literal["store", "tier", "segment"]


FETCH = 100_000  # rows per chunk when reading facts: bounded memory at millions of rows


def frame(uow: UnitOfWork, query: Select[Any], schema: kpis.Schema) -> pl.DataFrame:
    """The rows of ``query`` as a frame of ``schema`` (columns in the query's order), fetched
    in chunks so that millions of rows never sit in memory as Python tuples at once."""
    # per statement: options set on the connection would stay on it (a server-side cursor
    # for every later statement of the unit of work, and no executemany on PostgreSQL)
    result = uow.conn.execute(query, execution_options={"yield_per": FETCH})
    parts = [
        pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
        for rows in result.partitions()
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


# --- facts -------------------------------------------------------------------------------


def read_facts(
    uow: UnitOfWork, programme: Programme, *, since: datetime | None, until: datetime
) -> Facts:
    """The programme's facts before ``until``; activities only from ``since`` (the ledger and
    the members from the beginning: balances and member counts are cumulative)."""
    pid = programme.id
    store_key = select(stores.c.key).where(stores.c.id == activities.c.store_id).scalar_subquery()
    acts = select(
        activities.c.id,
        activities.c.type,
        activities.c.member_id,
        store_key,
        activities.c.occurred_at,
        activities.c.paid_minor,
    ).where(
        activities.c.programme_id == pid,
        activities.c.type.in_(("purchase", "return")),
        activities.c.occurred_at < until,
    )
    if since is not None:
        acts = acts.where(activities.c.occurred_at >= since)
    people = select(members.c.id, members.c.enrolled_at).where(
        members.c.programme_id == pid,
        members.c.status != "merged",
        members.c.enrolled_at < until,
    )
    moves = select(
        transfers.c.kind,
        transfers.c.unit,
        transfers.c.amount,
        transfers.c.posted_at,
        transfers.c.member_id,
        transfers.c.debit_account_id,
        transfers.c.credit_account_id,
    ).where(
        transfers.c.programme_id == pid,
        transfers.c.unit.in_(("points", "wallet")),
        transfers.c.posted_at < until,
    )
    ledger = frame(
        uow, moves, {**kpis.TRANSFERS, "debit_kind": pl.String, "credit_kind": pl.String}
    )
    return Facts.of(
        activities=frame(uow, acts, kpis.ACTIVITIES),
        members=frame(uow, people, kpis.MEMBERS),
        transfers=with_account_kinds(ledger),
        money=_money_events(uow, pid, until),
        referrals=frame(
            uow,
            select(referrals.c.referrer_id, referrals.c.created_at, referrals.c.converted_at).where(
                referrals.c.programme_id == pid, referrals.c.created_at < until
            ),
            kpis.REFERRALS,
        ),
    )


def with_account_kinds(ledger: pl.DataFrame) -> pl.DataFrame:
    """Account ids end in their kind (``acc_…_poi_available``, ``acc_…_wal_issuance``): the
    member side and the system side are told apart without joining ``accounts``."""
    kind = "_([a-z]+)$"
    return ledger.with_columns(
        pl.col("debit_kind").str.extract(kind),
        pl.col("credit_kind").str.extract(kind),
    )


def _money_events(uow: UnitOfWork, pid: str, until: datetime) -> pl.DataFrame:
    p, d, g = membership_payments, membership_dividends, donations
    parts = [
        select(literal("fee"), p.c.member_id, p.c.paid_at, p.c.amount_minor).where(
            p.c.programme_id == pid, p.c.outcome == "paid", p.c.paid_at < until
        ),
        select(literal("dividend"), d.c.member_id, d.c.paid_at, d.c.amount_minor).where(
            d.c.programme_id == pid, d.c.paid_at < until
        ),
        select(literal("donation"), g.c.member_id, g.c.created_at, g.c.amount_minor).where(
            g.c.programme_id == pid, g.c.unit == "points", g.c.created_at < until
        ),
    ]
    return pl.concat([frame(uow, q, kpis.MONEY) for q in parts])


# --- KPIs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiReport:
    programme: str  # the programme's key
    currency: str
    unit: PeriodUnit
    first: date
    end: date
    programme_sets: list[KpiSet]
    splits: dict[str, list[KpiSet]] = field(default_factory=dict)  # scope -> sets
    # Where the facts came from: "database", "store" (the columnar store, as of ``as_of``) or
    # "given" (a caller passed them).
    source: str = "database"
    as_of: datetime | None = None

    def all_sets(self) -> list[KpiSet]:
        return [*self.programme_sets, *(s for sets in self.splits.values() for s in sets)]


def programme_kpis(
    uow: UnitOfWork,
    *,
    programme_id: str,
    unit: PeriodUnit,
    first: date,
    end: date,
    split: Split | None = None,
    store: str | None = None,
    facts: Facts | None = None,
    source: Source = "auto",
) -> KpiReport:
    """The KPIs of every ``unit`` period covering the days ``[first, end)``, for the programme
    and, with ``split``, per store, tier or segment (``store``: that store only).

    ``source``: "auto" counts from the columnar store when it is configured and as fresh as
    the last nightly run, else from the database; "database" or "store" insist (no fresh
    store: ``not_found``). ``facts`` given: counted as they are. The report names its source."""
    programme = load_programme(uow, programme_id)
    periods = _windows(unit, first, end)
    tz = programme.tz
    since, until = periods[0].previous().instants(tz)[0], periods[-1].instants(tz)[1]
    used, as_of = "given", None
    if facts is None:
        info, used = _facts_source(uow, programme_id, source)
        if info is None:
            facts = read_facts(uow, programme, since=since, until=until)
        else:
            facts, as_of = _store_facts(info, since, until), info.as_of
    doc = programme.document

    def sets(scoped: Facts, scope: str) -> list[KpiSet]:
        return kpis.count(
            scoped,
            periods,
            tz,
            scope=scope,
            currency=doc.currency,
            point_value=doc.point_value,
        )

    groups: dict[str, Facts] = {}
    if store is not None:
        if store not in store_keys(uow, programme_id):
            raise NotFound(ErrorCode.STORE_NOT_FOUND, f"no store {store!r} in this programme")
        groups[f"store:{store}"] = facts.for_store(store)
    if split == "store":
        for key in store_keys(uow, programme_id):
            groups[f"store:{key}"] = facts.for_store(key)
    elif split == "tier":
        for key, ids in member_groups(uow, programme, "tier").items():
            groups[f"tier:{key}"] = facts.for_members(ids)
    elif split == "segment":
        for key, ids in member_groups(uow, programme, "segment").items():
            groups[f"segment:{key}"] = facts.for_members(ids)
    return KpiReport(
        doc.key,
        doc.currency,
        unit,
        periods[0].first,
        periods[-1].end,
        sets(facts, "programme"),
        {scope: sets(scoped, scope) for scope, scoped in groups.items()},
        used,
        as_of,
    )


def _windows(unit: PeriodUnit, first: date, end: date) -> list[Window]:
    try:
        if first.year < 1900 or end.year > 9000:
            raise ValueError("dates must lie between the years 1900 and 9000")
        return windows(unit, first, end)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            str(exc),
            errors=[{"path": "to", "message": str(exc)}],
        ) from None


def store_keys(uow: UnitOfWork, programme_id: str) -> list[str]:
    return list(
        uow.conn.execute(
            select(stores.c.key).where(stores.c.programme_id == programme_id).order_by(stores.c.key)
        ).scalars()
    )


def member_groups(
    uow: UnitOfWork, programme: Programme, by: Literal["tier", "segment"]
) -> dict[str, list[str]]:
    """Members per current tier (no row: the lowest tier) or per segment (as last computed)."""
    if by == "segment":
        groups: dict[str, list[str]] = {}
        for key, member_id in uow.conn.execute(
            select(segment_members.c.segment, segment_members.c.member_id)
            .where(segment_members.c.programme_id == programme.id)
            .order_by(segment_members.c.segment, segment_members.c.member_id)
        ):
            groups.setdefault(key, []).append(member_id)
        return groups
    settings = programme.document.tiers
    if settings is None:
        return {}
    rows = uow.conn.execute(
        select(members.c.id, member_tiers.c.tier_key)
        .select_from(members.outerjoin(member_tiers, member_tiers.c.member_id == members.c.id))
        .where(members.c.programme_id == programme.id, members.c.status != "merged")
    )
    tiers: dict[str, list[str]] = {level.key: [] for level in settings.levels}
    for member_id, key in rows:
        tiers[key if key in tiers else settings.lowest.key].append(member_id)
    return tiers


# --- cohorts -----------------------------------------------------------------------------


def read_member_purchases(
    uow: UnitOfWork, programme_id: str, *, since: datetime | None, until: datetime
) -> pl.DataFrame:
    """Members' purchases (``member_id``, ``occurred_at``, ``paid_minor``) before ``until``."""
    query = select(activities.c.member_id, activities.c.occurred_at, activities.c.paid_minor).where(
        activities.c.programme_id == programme_id,
        activities.c.type == "purchase",
        activities.c.member_id.is_not(None),
        activities.c.occurred_at < until,
    )
    if since is not None:
        query = query.where(activities.c.occurred_at >= since)
    schema = {"member_id": pl.String, "occurred_at": kpis.UTC_TIME, "paid_minor": pl.Int64}
    return frame(uow, query, schema)


def cohort_report(
    uow: UnitOfWork,
    *,
    programme_id: str,
    first: date,
    end: date,
    basis: Basis = "enrolment",
    source: Source = "auto",
) -> Cohorts:
    """Monthly cohorts from the month of ``first`` to the month before ``end``: how many of
    each stayed buying, month by month, until ``end`` (``source``: as for
    :func:`programme_kpis`)."""
    programme = load_programme(uow, programme_id)
    months = _windows(PeriodUnit.MONTH, first, end)
    tz = programme.tz
    since, until = months[0].instants(tz)[0], months[-1].instants(tz)[1]
    schema = {"id": pl.String, "enrolled_at": kpis.UTC_TIME, "first_purchase_at": kpis.UTC_TIME}
    info, used = _facts_source(uow, programme_id, source)
    if info is None:
        people = frame(
            uow,
            select(members.c.id, members.c.enrolled_at, members.c.first_purchase_at).where(
                members.c.programme_id == programme_id, members.c.status != "merged"
            ),
            schema,
        )
    else:
        people = info.read("members").select(list(schema))
    bought = _member_purchases(uow, programme_id, info, since=since, until=until)
    table = cohorts.retention(
        people, bought, tz, first=months[0].first, end=months[-1].end, basis=basis
    )
    return replace(table, source=used, as_of=None if info is None else info.as_of)


def _member_purchases(
    uow: UnitOfWork,
    programme_id: str,
    info: columnar.StoreInfo | None,
    *,
    since: datetime | None,
    until: datetime,
) -> pl.DataFrame:
    """Members' purchases from the database (``info`` None) or the columnar store."""
    if info is None:
        return read_member_purchases(uow, programme_id, since=since, until=until)
    at = pl.col("occurred_at")
    until = until.astimezone(UTC)
    since = None if since is None else since.astimezone(UTC)
    acts = info.read("activities").filter(
        pl.col("type") == "purchase", pl.col("member_id").is_not_null(), at < until
    )
    if since is not None:
        acts = acts.filter(at >= since)
    return acts.select("member_id", "occurred_at", "paid_minor")


# --- customer value and RFM --------------------------------------------------------------


@dataclass(frozen=True)
class ValueSettings:
    """How CLV is computed: over ``months``, discounted at ``annual_discount`` a year, at a
    ``margin`` (1: revenue, 0.3: a 30 % gross margin)."""

    months: int = 12
    annual_discount: Decimal = Decimal("0.10")
    margin: Decimal = Decimal(1)


@dataclass(frozen=True)
class MemberScores:
    """Per member who ever bought: RFM and, where the models could be fitted, P(alive), churn
    risk, expected purchases and spend and CLV (money in minor units, floats: estimates)."""

    currency: str
    at: datetime
    settings: ValueSettings
    frame: pl.DataFrame
    bgnbd: clv.BgNbd | None
    gamma_gamma: clv.GammaGamma | None
    source: str = "database"  # or "store": the columnar store, as of ``as_of``
    as_of: datetime | None = None


def member_scores(
    uow: UnitOfWork,
    *,
    programme_id: str,
    at: datetime | None = None,
    settings: ValueSettings | None = None,
    source: Source = "auto",
) -> MemberScores:
    """Fit BG/NBD and Gamma-Gamma on the programme's purchase history up to ``at`` (default:
    now) and score every member who bought; too little history leaves the model columns empty
    (RFM needs no model). ``source``: as for :func:`programme_kpis` (the store holds the
    purchases up to its ``as_of``; an ``at`` before that reads the same from either)."""
    programme = load_programme(uow, programme_id)
    at = (at or uow.now()).astimezone(UTC)
    settings = settings or ValueSettings()
    info, used = _facts_source(uow, programme_id, source)
    bought = _member_purchases(uow, programme_id, info, since=None, until=at)
    scores = score_members(bought, programme.tz, programme.currency, at, settings)
    return replace(scores, source=used, as_of=None if info is None else info.as_of)


def score_members(
    bought: pl.DataFrame, tz: ZoneInfo, currency: str, at: datetime, settings: ValueSettings
) -> MemberScores:
    summary = rfm.score(rfm.summarise(bought, tz, at))
    x, t_x, big_t = (summary[c].to_numpy().astype(float) for c in ("x", "t_x", "T"))
    bg: clv.BgNbd | None
    gg: clv.GammaGamma | None
    try:
        bg = clv.fit_bgnbd(x, t_x, big_t)
    except clv.FitError:
        bg = None
    try:
        gg = clv.fit_gamma_gamma(x, summary["repeat_mean_minor"].to_numpy())
    except clv.FitError:
        gg = None
    if gg is not None and gg.q <= 1:  # no finite mean spend: the model does not apply
        gg = None
    none = pl.lit(None, pl.Float64)
    columns: dict[str, Any] = {
        name: none
        for name in ("p_alive", "churn_risk", "expected_purchases", "expected_spend_minor")
    }
    columns["clv_minor"] = none
    if bg is not None:
        alive = bg.p_alive(x, t_x, big_t)
        weeks = settings.months * 52.0 / 12.0
        columns["p_alive"] = pl.Series(alive)
        columns["churn_risk"] = pl.Series(1.0 - alive)
        columns["expected_purchases"] = pl.Series(bg.expected_purchases(weeks, x, t_x, big_t))
        if gg is not None:
            spend = gg.expected_spend(x, summary["repeat_mean_minor"].to_numpy())
            columns["expected_spend_minor"] = pl.Series(spend)
            columns["clv_minor"] = pl.Series(
                clv.clv(
                    bg,
                    spend,
                    x,
                    t_x,
                    big_t,
                    months=settings.months,
                    annual_discount=float(settings.annual_discount),
                    margin=float(settings.margin),
                )
            )
    scored = summary.with_columns(
        **{
            name: value.alias(name) if isinstance(value, pl.Expr) else value
            for name, value in columns.items()
        }
    )
    return MemberScores(currency, at, settings, scored, bg, gg)


@dataclass(frozen=True)
class MemberValue:
    member_id: str
    currency: str
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: str
    p_alive: Decimal | None
    churn_risk: Decimal | None
    expected_purchases: Decimal | None
    expected_spend: Decimal | None
    clv: Decimal | None
    months: int


def member_value(
    uow: UnitOfWork,
    *,
    programme_id: str,
    member_id: str,
    settings: ValueSettings | None = None,
) -> MemberValue | None:
    """One member's scores (None: the member never bought)."""
    scores = member_scores(uow, programme_id=programme_id, settings=settings)
    rows = scores.frame.filter(pl.col("member_id") == member_id).to_dicts()
    if not rows:
        return None
    row = rows[0]
    currency = scores.currency
    return MemberValue(
        member_id,
        currency,
        int(row["recency_days"]),
        int(row["frequency"]),
        from_minor(int(row["monetary_minor"]), currency),
        int(row["r"]),
        int(row["f"]),
        int(row["m"]),
        str(row["segment"]),
        _places(row["p_alive"], 4),
        _places(row["churn_risk"], 4),
        _places(row["expected_purchases"], 2),
        _money(row["expected_spend_minor"], currency),
        _money(row["clv_minor"], currency),
        scores.settings.months,
    )


def _places(value: float | None, places: int) -> Decimal | None:
    if value is None:
        return None
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))


def _money(minor: float | None, currency: str) -> Decimal | None:
    if minor is None:
        return None
    return from_minor(int(Decimal(repr(minor)).quantize(Decimal(1))), currency)


# --- uplift ------------------------------------------------------------------------------


def uplift_report(
    uow: UnitOfWork,
    *,
    programme_id: str,
    window_days: int = 30,
    automation: str | None = None,
    confidence: float = 0.95,
) -> list[uplift.Uplift]:
    """Per automation with a control group: treated against held-out members over the
    ``window_days`` after each run."""
    runs_q = select(
        automation_runs.c.automation,
        automation_runs.c.member_id,
        automation_runs.c.outcome,
        automation_runs.c.completed_at,
    ).where(
        automation_runs.c.programme_id == programme_id,
        automation_runs.c.outcome.in_(("done", "held_out")),
    )
    if automation is not None:
        runs_q = runs_q.where(automation_runs.c.automation == automation)
    runs = frame(uow, runs_q, {**uplift.RUNS, "at": kpis.UTC_TIME})
    if runs.is_empty():
        return []
    held = runs.filter(pl.col("outcome") == "held_out")["automation"].unique().sort()
    bought = read_member_purchases(uow, programme_id, since=None, until=uow.now())
    sign = case((transfers.c.kind == "earn", transfers.c.amount), else_=-transfers.c.amount)
    points = frame(
        uow,
        select(transfers.c.member_id, transfers.c.posted_at, sign).where(
            transfers.c.programme_id == programme_id,
            transfers.c.unit == "points",
            transfers.c.kind.in_(("earn", "reverse")),
        ),
        {"member_id": pl.String, "posted_at": kpis.UTC_TIME, "points": pl.Int64},
    )
    measured = uplift.outcomes(runs, bought, points, timedelta(days=window_days))
    return [uplift.uplift(measured, key, confidence) for key in held.to_list()]


# --- what if -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIf:
    programme: str
    currency: str
    first: date
    end: date
    activities: int  # members' activities replayed
    changed: int  # of them, those whose points differ under the proposal
    actual: whatif.Totals
    proposed: whatif.Totals


def simulate_programme(
    uow: UnitOfWork,
    *,
    programme_id: str,
    document: ProgrammeDocument | dict[str, Any],
    first: date,
    end: date,
) -> WhatIf:
    """Replay the members' activities of the days ``[first, end)`` under ``document`` and
    compare with what really happened. Reads only; the real ledger is never touched."""
    proposal = document if isinstance(document, ProgrammeDocument) else parse_document(document)
    programme = load_programme(uow, programme_id)
    if proposal.currency != programme.currency:
        raise InvalidInput(
            ErrorCode.CURRENCY_MISMATCH,
            f"the programme counts in {programme.currency}, the proposal in {proposal.currency}",
            errors=[{"path": "currency", "message": f"must be {programme.currency}"}],
        )
    tz = programme.tz
    _windows(PeriodUnit.MONTH, first, end)  # refuses an empty or absurd range
    window = Window(PeriodUnit.DAY, first, end)  # the whole range as one period
    since, until = window.instants(tz)
    real = kpis.count(
        read_facts(uow, programme, since=since, until=until),
        [window],
        tz,
        scope="programme",
        currency=programme.currency,
        point_value=programme.document.point_value,
    )[0]
    acts = _replay_acts(uow, programme_id, since, until)
    purchases = {a.id: a for a in acts if a.type == "purchase"}
    replayed = whatif.replay(
        proposal, tz, acts, _prior(uow, programme_id, proposal, since), purchases
    )
    lots = _lot_traces(uow, programme_id, since, until)
    earned_delta = sum(replayed.points[a.id] - a.real_points for a in acts if a.type != "return")
    taken_delta = sum(replayed.taken[a.id] - a.real_taken for a in acts if a.type == "return")
    redeemed_delta = _redeemed_delta(uow, programme_id, proposal, since, until)
    expired_delta = whatif.expired_delta(proposal, tz, acts, lots, replayed.points, until)
    issued, taken = real.points_issued or 0, real.points_taken_back or 0
    redeemed, expired = real.points_redeemed or 0, real.points_expired or 0
    wallet = from_minor(real.wallet_outstanding_minor or 0, programme.currency)
    other_cost = (real.programme_cost or Decimal(0)) - (real.rewards_cost or Decimal(0))
    actual_tiers, proposed_tiers = _tier_distributions(
        uow, programme, proposal, acts, replayed, window
    )
    actual = whatif.Totals(
        issued,
        taken,
        redeemed,
        expired,
        real.outstanding_points or 0,
        programme.document.point_value,
        wallet,
        other_cost,
        actual_tiers,
    )
    proposed = whatif.Totals(
        issued + earned_delta,
        taken + taken_delta,
        redeemed + redeemed_delta,
        expired + expired_delta,
        actual.outstanding_points + earned_delta - taken_delta - redeemed_delta - expired_delta,
        proposal.point_value,
        wallet,
        other_cost,
        proposed_tiers,
    )
    changed = sum(1 for a in acts if replayed.points[a.id] != a.real_points)
    return WhatIf(
        programme.document.key,
        programme.currency,
        first,
        end,
        len(acts),
        changed,
        actual,
        proposed,
    )


def _replay_acts(
    uow: UnitOfWork, programme_id: str, since: datetime, until: datetime
) -> list[whatif.Act]:
    a = activities
    points = (
        select(func.coalesce(func.sum(awards.c.points), 0))
        .where(awards.c.activity_id == a.c.id)
        .scalar_subquery()
    )
    taken = (
        select(func.coalesce(func.sum(transfers.c.amount), 0))
        .where(
            transfers.c.activity_id == a.c.id,
            transfers.c.kind == "reverse",
            transfers.c.unit == "points",
        )
        .scalar_subquery()
    )
    rows = uow.conn.execute(
        select(
            a.c.id,
            a.c.type,
            a.c.member_id,
            a.c.occurred_at,
            a.c.payload,
            a.c.channel,
            a.c.action_type,
            a.c.first_purchase,
            a.c.member_attributes,
            a.c.standing,
            a.c.purchase_id,
            points.label("points"),
            taken.label("taken"),
        )
        .where(
            a.c.programme_id == programme_id,
            a.c.member_id.is_not(None),
            a.c.occurred_at >= since,
            a.c.occurred_at < until,
        )
        .order_by(a.c.occurred_at, a.c.id)
    )
    return [
        whatif.Act(
            r.id,
            r.type,
            r.member_id,
            r.occurred_at,
            dict(r.payload),
            r.channel,
            r.action_type,
            bool(r.first_purchase),
            dict(r.member_attributes or {}),
            Standing.from_json(r.standing),
            r.purchase_id,
            int(r.points),
            int(r.taken),
        )
        for r in rows
    ]


def _prior(
    uow: UnitOfWork, programme_id: str, proposal: ProgrammeDocument, since: datetime
) -> whatif.Prior:
    """The awards before the period that the proposal's caps and budgets count."""
    rules = whatif.earning_rules(proposal)
    base = (
        select(awards.c.member_id, awards.c.rule_key)
        .select_from(awards.join(activities, activities.c.id == awards.c.activity_id))
        .where(activities.c.programme_id == programme_id, activities.c.occurred_at < since)
    )
    recent: list[tuple[str, str, datetime, int]] = []
    if any(set(r.caps.per_member) - {Period.LIFETIME} for r in rules):
        month_before = since - timedelta(days=32)
        recent = [
            (m, k, at, int(p))
            for m, k, at, p in uow.conn.execute(
                base.add_columns(awards.c.occurred_at, awards.c.points).where(
                    awards.c.occurred_at >= month_before
                )
            )
        ]
    lifetime: dict[tuple[str, str], int] = {}
    if any(Period.LIFETIME in r.caps.per_member for r in rules):
        grouped = base.add_columns(func.sum(awards.c.points)).group_by(
            awards.c.member_id, awards.c.rule_key
        )
        lifetime = {(m, k): int(p) for m, k, p in uow.conn.execute(grouped)}
    per_target: dict[tuple[str, str, str], int] = {}
    if any(r.caps.per_target for r in rules):
        target = activities.c.payload["target"].as_string()
        query = (
            base.add_columns(target, func.sum(awards.c.points))
            .where(activities.c.type == "action", target.is_not(None))
            .group_by(awards.c.member_id, awards.c.rule_key, target)
        )
        per_target = {(m, k, t): int(p) for m, k, t, p in uow.conn.execute(query)}
    budget_used: dict[str, int] = {}
    budgeted = [r.key for r in rules if r.caps.budget is not None]
    if budgeted:
        query = (
            select(awards.c.rule_key, func.sum(awards.c.points))
            .select_from(awards.join(activities, activities.c.id == awards.c.activity_id))
            .where(
                activities.c.programme_id == programme_id,
                activities.c.occurred_at < since,
                awards.c.rule_key.in_(budgeted),
            )
            .group_by(awards.c.rule_key)
        )
        budget_used = {k: int(p) for k, p in uow.conn.execute(query)}
    return whatif.Prior(recent, lifetime, per_target, budget_used)


def _lot_traces(
    uow: UnitOfWork, programme_id: str, since: datetime, until: datetime
) -> dict[str, whatif.LotTrace]:
    """The points lots earned by the period's activities, with what left them before ``until``."""
    in_period = (
        select(activities.c.id)
        .where(
            activities.c.programme_id == programme_id,
            activities.c.occurred_at >= since,
            activities.c.occurred_at < until,
        )
        .scalar_subquery()
    )
    found = {
        lot_id: (activity_id, int(amount))
        for lot_id, activity_id, amount in uow.conn.execute(
            select(lots.c.id, lots.c.activity_id, lots.c.amount).where(
                lots.c.programme_id == programme_id,
                lots.c.unit == "points",
                lots.c.activity_id.in_(in_period),
            )
        )
    }
    draws: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    expired: dict[str, int] = defaultdict(int)
    if found:
        for lot_id, kind, at, amount in uow.conn.execute(
            select(
                lot_allocations.c.lot_id,
                transfers.c.kind,
                transfers.c.posted_at,
                lot_allocations.c.amount,
            )
            .select_from(
                lot_allocations.join(transfers, transfers.c.id == lot_allocations.c.transfer_id)
            )
            .where(lot_allocations.c.lot_id.in_(list(found)), transfers.c.posted_at < until)
        ):
            if kind == "expire":
                expired[lot_id] += int(amount)
            else:
                draws[lot_id].append((at, int(amount)))
    traces: dict[str, whatif.LotTrace] = {}
    for lot_id, (activity_id, amount) in found.items():
        traces[activity_id] = whatif.LotTrace(
            activity_id, amount, expired[lot_id], sorted(draws[lot_id])
        )
    return traces


def _redeemed_delta(
    uow: UnitOfWork,
    programme_id: str,
    proposal: ProgrammeDocument,
    since: datetime,
    until: datetime,
) -> int:
    """The period's redemptions at the proposal's reward costs, less their real points."""
    costs = {r.key: r.cost or 0 for r in proposal.rewards}
    rows = uow.conn.execute(
        select(rewards.c.key, redemptions.c.points)
        .select_from(redemptions.join(rewards, rewards.c.id == redemptions.c.reward_id))
        .where(
            redemptions.c.programme_id == programme_id,
            redemptions.c.status == "completed",
            redemptions.c.created_at >= since,
            redemptions.c.created_at < until,
        )
    )
    return sum(costs.get(key, 0) - int(points) for key, points in rows)


def _tier_distributions(
    uow: UnitOfWork,
    programme: Programme,
    proposal: ProgrammeDocument,
    acts: list[whatif.Act],
    replayed: whatif.Replayed,
    window: Window,
) -> tuple[dict[str, int], dict[str, int]]:
    """Members per tier at the period's end: as they really were, and under the proposal —
    the same, except where the proposal's levels or points qualify a member differently (then
    the tier the running qualification period gives; with unchanged levels never lower than
    the real tier, since downgrades wait for the period's end)."""
    real_settings, settings = programme.document.tiers, proposal.tiers
    at = window.instants(programme.tz)[1]
    actual: dict[str, str] = {}
    if real_settings is not None:
        for member_id in _member_ids(uow, programme.id, at):
            actual[member_id] = tiers_service.tier_at(uow, programme, member_id, at) or ""
    if settings is None:
        return _count(actual.values()), {}
    delta: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for act in acts:
        change = replayed.points[act.id] - act.real_points
        if change:
            delta[act.member_id].append((act.occurred_at, change))
    unchanged_levels = real_settings == settings
    people = actual or {m: "" for m in _member_ids(uow, programme.id, at)}
    if unchanged_levels and not delta:
        return _count(actual.values()), _count(actual.values())
    enrolled: dict[str, datetime] = {
        member_id: at
        for member_id, at in uow.conn.execute(
            select(members.c.id, members.c.enrolled_at).where(
                members.c.programme_id == programme.id
            )
        )
    }
    last = window.end - timedelta(days=1)
    proposed: dict[str, str] = {}
    by_window: dict[tier_model.Window, list[str]] = defaultdict(list)
    for member_id in people:
        enrolled_on = programme.local_date(enrolled[member_id])
        by_window[tier_model.period_containing(settings.period, last, enrolled_on)].append(
            member_id
        )
    exp = exponent(programme.currency)
    for qualification, ids in by_window.items():
        results = tiers_service.period_results(uow, programme, ids, qualification)
        start = (
            None if qualification.start is None else start_of_day(qualification.start, programme.tz)
        )
        for member_id in ids:
            moved = sum(p for t, p in delta[member_id] if start is None or t >= start)
            result = results.get(member_id, tier_model.PeriodResult())
            result = tier_model.PeriodResult(
                result.spend_minor, result.points + moved, result.visits
            )
            reached = tier_model.tier_for(settings, result, exp).key
            real = actual.get(member_id, "")
            if unchanged_levels and settings.rank(real) > settings.rank(reached):
                reached = real
            proposed[member_id] = reached
    return _count(actual.values()), _count(proposed.values())


def _member_ids(uow: UnitOfWork, programme_id: str, before: datetime) -> list[str]:
    return list(
        uow.conn.execute(
            select(members.c.id).where(
                members.c.programme_id == programme_id,
                members.c.status != "merged",
                members.c.enrolled_at < before,
            )
        ).scalars()
    )


def _count(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for key in keys:
        out[key] += 1
    return dict(sorted(out.items()))


# --- the columnar store ------------------------------------------------------------------

Source = Literal["auto", "store", "database"]


def write_store(
    uow: UnitOfWork, *, programme_id: str, directory: Path | None = None
) -> columnar.StoreInfo:
    """Copy the programme's facts into a new version of its columnar store and make it the
    current one atomically (``treu.analytics.store``); ``directory`` defaults to
    ``TREU_ANALYTICS_DIR``.

    A full rewrite, not an append: a guest purchase claimed later gets its member, a merged
    member leaves the member table — facts of the past change, so a copy of "only the days
    since the last write" would drift. The copy is exact as of ``as_of`` (when it was read);
    it is derived data, never a source of truth.
    """
    directory = directory or store_directory()
    if directory is None:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "no analytics store directory configured")
    programme = load_programme(uow, programme_id)
    as_of = uow.now()
    facts = read_facts(uow, programme, since=None, until=datetime(9999, 1, 1, tzinfo=UTC))
    people = frame(
        uow,
        select(members.c.id, members.c.first_purchase_at).where(
            members.c.programme_id == programme_id, members.c.status != "merged"
        ),
        {"id": pl.String, "first_purchase_at": kpis.UTC_TIME},
    )
    frames = {
        name: getattr(facts, name).sort(_STORE_TIMES[name], maintain_order=True)
        for name in columnar.TABLES
    }
    frames["members"] = frames["members"].join(people, on="id", how="left", maintain_order="left")
    return columnar.write(directory, programme_id, frames, as_of=as_of)


def read_store(directory: Path, programme_id: str) -> Facts:
    """The facts of the programme's current columnar store (whatever its age)."""
    info = columnar.current(directory, programme_id)
    if info is None:
        raise NotFound(ErrorCode.NOT_FOUND, f"no analytics store for {programme_id} in {directory}")
    return _store_facts(info)


# The instant each table of the store is cut by (what read_facts' queries filter on).
_STORE_TIMES = {
    "activities": "occurred_at",
    "members": "enrolled_at",
    "transfers": "posted_at",
    "money": "at",
    "referrals": "created_at",
}


def _store_facts(
    info: columnar.StoreInfo, since: datetime | None = None, until: datetime | None = None
) -> Facts:
    """The store's facts; with ``until``, what :func:`read_facts` reads for ``[since,
    until)``: activities of the range, everything else up to ``until`` — filtered while the
    files are read (the write sorts them by time: whole row groups are skipped)."""
    if until is None:
        return Facts.of(**{name: info.read(name) for name in columnar.TABLES})
    frames = {}
    for name, column in _STORE_TIMES.items():
        at = pl.col(column)
        scan = info.scan(name).filter(at < until.astimezone(UTC))
        if name == "activities" and since is not None:
            scan = scan.filter(at >= since.astimezone(UTC))
        frames[name] = scan.collect()
    return Facts.of(**frames)


def store_directory() -> Path | None:
    configured = get_settings().analytics_dir
    return Path(configured) if configured else None


def last_nightly_run(uow: UnitOfWork, programme_id: str) -> datetime | None:
    """When the programme's nightly run last finished a step (other than writing the store)."""
    found: datetime | None = uow.conn.execute(
        select(func.max(job_runs.c.finished_at)).where(
            job_runs.c.programme_id == programme_id, job_runs.c.step != STORE_STEP
        )
    ).scalar_one()
    return found


STORE_STEP = "analytics_store"  # the nightly step that writes the store (treu.jobs.nightly)


def fresh_store(uow: UnitOfWork, programme_id: str) -> columnar.StoreInfo | None:
    """The programme's store if one is configured, present and not older than the last
    nightly run (so it holds everything that run changed); None: read the database."""
    directory = store_directory()
    if directory is None:
        return None
    info = columnar.current(directory, programme_id)
    if info is None:
        return None
    last = last_nightly_run(uow, programme_id)
    if last is not None and info.as_of < last:
        return None
    return info


def _facts_source(
    uow: UnitOfWork, programme_id: str, source: Source
) -> tuple[columnar.StoreInfo | None, str]:
    """The store to read (None: the database) and the name of the source for the answer."""
    if source == "database":
        return None, "database"
    info = fresh_store(uow, programme_id)
    if info is None and source == "store":
        raise NotFound(ErrorCode.NOT_FOUND, "no analytics store as fresh as the last nightly run")
    return info, "database" if info is None else "store"
