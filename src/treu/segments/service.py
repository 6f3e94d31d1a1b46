"""Use cases for segments: who belongs, recomputing stored membership, static uploads, sizes.

Two ways to the same answer, on purpose:

* :func:`member_matches` reads one member's facts through the other packages' own building
  blocks (``tiers.tier_at``, ``memberships.active_plans``) and the member's activities;
* :func:`recompute_segments` reads the facts of a whole programme set-based, with one grouped
  query per kind of fact the segments need (never one query per member), and evaluates every
  segment in Python with the same pure :func:`treu.segments.model.matches`.

A property test holds the two equal. The stored membership (``segment_members``) changes only
by the difference to the last recompute, and each change is an event (``segment.entered``,
``segment.left``): a second recompute on the same day writes and publishes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select, text, tuple_

from treu.activities.tables import activities
from treu.analytics.service import member_scores
from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound
from treu.ledger.model import start_of_day
from treu.members.model import MemberStatus
from treu.members.service import find_member
from treu.members.tables import consents, identifiers, members
from treu.memberships import service as memberships_service
from treu.memberships.model import Facts as PlanFacts
from treu.memberships.model import Period as PaidPeriod
from treu.memberships.model import status_at
from treu.memberships.tables import membership_payments, memberships
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.segments.model import (
    BUILT_IN_KEYS,
    SCORE_KINDS,
    CsvRow,
    MemberFacts,
    Needs,
    Purchase,
    SegmentDef,
    check_segments,
    effective_segments,
    mask_email,
    mask_name,
    matches,
    member_references,
    needs,
)
from treu.segments.tables import segment_members, segment_uploads
from treu.storage.uow import Event, UnitOfWork, UowFactory
from treu.tiers import service as tiers_service
from treu.tiers.tables import tier_history

# --- the programme's segments ---------------------------------------------------------------


def segments_of(programme: Programme) -> list[SegmentDef]:
    """Built-ins (or the programme's overrides of them), then the programme's own."""
    doc = programme.document
    levels = doc.tiers.levels if doc.tiers else []
    top = levels[-1].key if len(levels) >= 2 else None  # one tier: everyone, not "premium"
    paid = [p.key for p in doc.memberships if p.fee > 0]
    return effective_segments(doc.segments, top, paid)


def segment_def(programme: Programme, key: str) -> SegmentDef:
    found = next((s for s in segments_of(programme) if s.key == key), None)
    if found is None:
        raise NotFound(ErrorCode.UNKNOWN_SEGMENT, f"no segment {key!r} in this programme")
    return found


# --- one member -----------------------------------------------------------------------------


def member_matches(
    uow: UnitOfWork, programme: Programme, segment: str, member_id: str, *, at: datetime
) -> bool:
    """Whether the member belongs to ``segment`` at ``at``, evaluated now (not the stored
    membership). A member who is not active (blocked, erased, merged) belongs to no segment."""
    defn = segment_def(programme, segment)
    facts = member_facts(uow, programme, member_id, at=at)
    if facts is not None and defn.kinds() & SCORE_KINDS:
        # scores are relative to the whole programme (RFM quintiles, the fitted models)
        facts = replace(facts, **_scores(uow, programme, at).get(member_id, {}))
    return facts is not None and _matches(defn, facts, programme, at)


def member_facts(
    uow: UnitOfWork, programme: Programme, member_id: str, *, at: datetime
) -> MemberFacts | None:
    """The member's facts as of ``at``; None for no active member of the programme by then."""
    row = uow.conn.execute(
        select(members).where(members.c.id == member_id, members.c.programme_id == programme.id)
    ).first()
    if row is None or row.status != MemberStatus.ACTIVE or row.enrolled_at > at:
        return None
    rows = uow.conn.execute(
        select(
            activities.c.id,
            activities.c.type,
            activities.c.occurred_at,
            activities.c.paid_minor,
            activities.c.purchase_id,
            activities.c.payload,
        )
        .where(activities.c.member_id == member_id, activities.c.occurred_at <= at)
        .order_by(activities.c.occurred_at, activities.c.id)
    ).all()
    returned: dict[str, int] = defaultdict(int)
    for r in rows:
        if r.type == "return":
            returned[r.purchase_id] += r.paid_minor or 0
    bought = [
        _purchase(r.occurred_at, r.paid_minor, returned[r.id], r.payload)
        for r in rows
        if r.type == "purchase"
    ]
    granted: dict[str, bool] = {}
    for channel, yes in uow.conn.execute(
        select(consents.c.channel, consents.c.granted)
        .where(consents.c.member_id == member_id, consents.c.recorded_at <= at)
        .order_by(consents.c.id)
    ):
        granted[channel] = bool(yes)
    uploaded = uow.conn.execute(
        select(segment_uploads.c.segment).where(
            segment_uploads.c.programme_id == programme.id,
            segment_uploads.c.member_id == member_id,
        )
    ).scalars()
    return MemberFacts(
        member_id=member_id,
        enrolled_at=row.enrolled_at,
        birthday=row.birthday,
        attributes=dict(row.attributes or {}),
        tier=tiers_service.tier_at(uow, programme, member_id, at),
        plans=memberships_service.active_plans(uow, programme, member_id, at),
        consents=frozenset(c for c, yes in granted.items() if yes),
        uploaded=frozenset(uploaded),
        purchase_count=len(bought),
        first_purchase_at=bought[0].at if bought else None,
        last_purchase_at=max((p.at for p in bought), default=None),
        last_activity_at=max((r.occurred_at for r in rows), default=None),
        since=None,
        purchases=tuple(bought),
        activity_times=tuple(r.occurred_at for r in rows),
    )


def _purchase(at: datetime, paid: int | None, returned: int, payload: Any) -> Purchase:
    lines = payload.get("lines") or [] if isinstance(payload, dict) else []
    return Purchase(
        at=at,
        net_minor=max(0, (paid or 0) - returned),
        categories=frozenset(str(x["category"]) for x in lines if x.get("category")),
        brands=frozenset(str(x["brand"]) for x in lines if x.get("brand")),
        skus=frozenset(str(x["sku"]) for x in lines if x.get("sku")),
    )


def _matches(defn: SegmentDef, facts: MemberFacts, programme: Programme, at: datetime) -> bool:
    return matches(
        defn,
        facts,
        today=programme.local_date(at),
        tz=programme.tz,
        currency=programme.currency,
    )


# --- a whole programme, set-based -----------------------------------------------------------


def programme_facts(
    uow: UnitOfWork, programme: Programme, defs: Iterable[SegmentDef], *, at: datetime
) -> dict[str, MemberFacts]:
    """Every active member's facts as of ``at``, loading only what ``defs`` read: a handful of
    grouped queries whatever the number of members."""
    defs = list(defs)
    need = needs(defs, today=programme.local_date(at), tz=programme.tz)
    facts = {
        r.id: MemberFacts(
            member_id=r.id,
            enrolled_at=r.enrolled_at,
            birthday=r.birthday,
            attributes=dict(r.attributes or {}),
            since=need.since if need.windowed else at,
        )
        for r in uow.conn.execute(
            select(
                members.c.id, members.c.enrolled_at, members.c.birthday, members.c.attributes
            ).where(
                members.c.programme_id == programme.id,
                members.c.status == MemberStatus.ACTIVE.value,
                members.c.enrolled_at <= at,
            )
        )
    }
    updates: dict[str, dict[str, Any]] = defaultdict(dict)
    _purchase_totals(uow, programme, at, updates)
    if "inactive" in need.kinds:
        _last_activity(uow, programme, at, updates)
    if need.windowed:
        _windowed(uow, programme, at, need, updates)
    if "tier" in need.kinds:
        _tiers(uow, programme, at, facts, updates)
    if "membership" in need.kinds:
        _plans(uow, programme, at, updates)
    if "consent" in need.kinds:
        _consents(uow, programme, at, updates)
    if any(d.static for d in defs):
        _uploads(uow, programme, updates)
    if need.kinds & SCORE_KINDS:
        for member_id, scores in _scores(uow, programme, at).items():
            updates[member_id].update(scores)
    return {
        member_id: replace(f, **updates[member_id]) if member_id in updates else f
        for member_id, f in facts.items()
    }


def _purchase_totals(
    uow: UnitOfWork, programme: Programme, at: datetime, out: dict[str, dict[str, Any]]
) -> None:
    query = (
        select(
            activities.c.member_id,
            func.count(),
            func.min(activities.c.occurred_at),
            func.max(activities.c.occurred_at),
        )
        .where(
            activities.c.programme_id == programme.id,
            activities.c.type == "purchase",
            activities.c.member_id.is_not(None),
            activities.c.occurred_at <= at,
        )
        .group_by(activities.c.member_id)
    )
    for member_id, count, first, last in uow.conn.execute(query):
        out[member_id].update(purchase_count=count, first_purchase_at=first, last_purchase_at=last)


def _last_activity(
    uow: UnitOfWork, programme: Programme, at: datetime, out: dict[str, dict[str, Any]]
) -> None:
    query = (
        select(activities.c.member_id, func.max(activities.c.occurred_at))
        .where(
            activities.c.programme_id == programme.id,
            activities.c.member_id.is_not(None),
            activities.c.occurred_at <= at,
        )
        .group_by(activities.c.member_id)
    )
    for member_id, last in uow.conn.execute(query):
        out[member_id]["last_activity_at"] = last


def _windowed(
    uow: UnitOfWork,
    programme: Programme,
    at: datetime,
    need: Needs,
    out: dict[str, dict[str, Any]],
) -> None:
    """Purchases (net of returns up to ``at``) and activity instants since ``need.since``."""
    in_window = [
        activities.c.programme_id == programme.id,
        activities.c.member_id.is_not(None),
        activities.c.occurred_at <= at,
    ]
    if need.since is not None:
        # A return comes after its purchase: returns of purchases in the window are in it too.
        in_window.append(activities.c.occurred_at >= need.since)
    returned: dict[str, int] = {
        purchase_id: int(total or 0)
        for purchase_id, total in uow.conn.execute(
            select(activities.c.purchase_id, func.sum(activities.c.paid_minor))
            .where(*in_window, activities.c.type == "return")
            .group_by(activities.c.purchase_id)
        )
    }
    columns: list[Any] = [
        activities.c.id,
        activities.c.member_id,
        activities.c.type,
        activities.c.occurred_at,
        activities.c.paid_minor,
    ]
    if need.lines:  # only the lines of the stored purchase, not the whole of it
        columns.append(activities.c.payload["lines"].label("lines"))
    bought: dict[str, list[Purchase]] = defaultdict(list)
    times: dict[str, list[datetime]] = defaultdict(list)
    rows = uow.conn.execute(
        select(*columns).where(*in_window).order_by(activities.c.occurred_at, activities.c.id)
    ).all()  # fetched at once: row by row costs more than the query on SQLite
    for r in rows:
        times[r.member_id].append(r.occurred_at)
        if r.type == "purchase":
            payload = {"lines": r.lines} if need.lines else None
            bought[r.member_id].append(
                _purchase(r.occurred_at, r.paid_minor, returned.get(r.id, 0), payload)
            )
    for member_id, instants in times.items():
        out[member_id]["activity_times"] = tuple(instants)
        out[member_id]["purchases"] = tuple(bought.get(member_id, ()))


def _tiers(
    uow: UnitOfWork,
    programme: Programme,
    at: datetime,
    facts: Mapping[str, MemberFacts],
    out: dict[str, dict[str, Any]],
) -> None:
    """``tiers.tier_at`` for every member at once: the latest history row up to ``at``."""
    settings = programme.document.tiers
    if settings is None:
        return
    latest: dict[str, str] = {}
    for member_id, key in uow.conn.execute(
        select(tier_history.c.member_id, tier_history.c.to_tier)
        .where(tier_history.c.programme_id == programme.id, tier_history.c.at <= at)
        .order_by(tier_history.c.at, tier_history.c.id)
    ):
        latest[member_id] = key
    for member_id in facts:
        key = latest.get(member_id)
        out[member_id]["tier"] = key if settings.level(key) is not None else settings.lowest.key


def _plans(
    uow: UnitOfWork, programme: Programme, at: datetime, out: dict[str, dict[str, Any]]
) -> None:
    """``memberships.active_plans`` for every member at once."""
    plans = {p.key: p for p in programme.document.memberships}
    periods: dict[str, list[PaidPeriod]] = defaultdict(list)
    for membership_id, start, end in uow.conn.execute(
        select(
            membership_payments.c.membership_id,
            membership_payments.c.period_start,
            membership_payments.c.period_end,
        )
        .where(
            membership_payments.c.programme_id == programme.id,
            membership_payments.c.outcome == "paid",
        )
        .order_by(membership_payments.c.period_start)
    ):
        periods[membership_id].append(PaidPeriod(start, end))
    active: dict[str, set[str]] = defaultdict(set)
    for row in uow.conn.execute(
        select(memberships).where(memberships.c.programme_id == programme.id)
    ):
        if row.plan_key not in plans:
            continue
        facts = PlanFacts(tuple(periods[row.id]), row.failed_at, row.cancelled_at)
        status = status_at(plans[row.plan_key], facts, at)
        if status is not None and status.has_perks:
            active[row.member_id].add(row.plan_key)
    for member_id, keys in active.items():
        out[member_id]["plans"] = frozenset(keys)


def _consents(
    uow: UnitOfWork, programme: Programme, at: datetime, out: dict[str, dict[str, Any]]
) -> None:
    latest: dict[str, dict[str, bool]] = defaultdict(dict)
    for member_id, channel, granted in uow.conn.execute(
        select(consents.c.member_id, consents.c.channel, consents.c.granted)
        .join(members, members.c.id == consents.c.member_id)
        .where(members.c.programme_id == programme.id, consents.c.recorded_at <= at)
        .order_by(consents.c.id)
    ):
        latest[member_id][channel] = bool(granted)
    for member_id, channels in latest.items():
        out[member_id]["consents"] = frozenset(c for c, yes in channels.items() if yes)


def _scores(uow: UnitOfWork, programme: Programme, at: datetime) -> dict[str, dict[str, Any]]:
    """RFM segment, P(alive) and churn risk of every member who bought before ``at``: the
    analytics scoring (treu.analytics.service.member_scores) on the database's purchases —
    never a columnar store, which may be older than ``at``."""
    scored = member_scores(uow, programme_id=programme.id, at=at, source="database").frame
    return {
        row["member_id"]: {
            "rfm_segment": row["segment"],
            "p_alive": row["p_alive"],
            "churn_risk": row["churn_risk"],
        }
        for row in scored.select("member_id", "segment", "p_alive", "churn_risk").iter_rows(
            named=True
        )
    }


def _uploads(uow: UnitOfWork, programme: Programme, out: dict[str, dict[str, Any]]) -> None:
    uploaded: dict[str, set[str]] = defaultdict(set)
    for segment, member_id in uow.conn.execute(
        select(segment_uploads.c.segment, segment_uploads.c.member_id).where(
            segment_uploads.c.programme_id == programme.id
        )
    ):
        uploaded[member_id].add(segment)
    for member_id, keys in uploaded.items():
        out[member_id]["uploaded"] = frozenset(keys)


def evaluate(
    uow: UnitOfWork, programme: Programme, defs: Iterable[SegmentDef], *, at: datetime
) -> dict[str, list[str]]:
    """Each segment's members at ``at`` (sorted ids), set-based, without storing anything."""
    defs = list(defs)
    facts = programme_facts(uow, programme, defs, at=at)
    return {
        d.key: sorted(m for m, f in facts.items() if _matches(d, f, programme, at)) for d in defs
    }


# --- stored membership ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recomputed:
    entered: int
    left: int
    sizes: dict[str, int]  # members per segment recomputed, afterwards

    @property
    def changes(self) -> int:
        return self.entered + self.left


def recompute(
    uow: UnitOfWork, programme: Programme, *, at: datetime, only: str | None = None
) -> Recomputed:
    """Bring the stored membership to the segments as of ``at`` (building block: no commit).

    ``only``: one segment's key; otherwise every segment, and stored members of segments the
    programme no longer has leave them.
    """
    _serialise(uow, programme.id)
    defs = [segment_def(programme, only)] if only else segments_of(programme)
    now = evaluate(uow, programme, defs, at=at)
    stored = select(segment_members.c.segment, segment_members.c.member_id).where(
        segment_members.c.programme_id == programme.id
    )
    if only:
        stored = stored.where(segment_members.c.segment == only)
    before: dict[str, set[str]] = defaultdict(set)
    for key, member_id in uow.conn.execute(stored):
        before[key].add(member_id)
    entered = [(k, m) for k, ids in now.items() for m in ids if m not in before[k]]
    still = {k: set(ids) for k, ids in now.items()}
    left = [(k, m) for k in sorted(before) for m in sorted(before[k]) if m not in still.get(k, ())]
    _store(uow, programme, entered, left, at)
    return Recomputed(len(entered), len(left), {k: len(ids) for k, ids in now.items()})


def _serialise(uow: UnitOfWork, programme_id: str) -> None:
    """One recompute of a programme at a time (the nightly step and an on-demand one would
    otherwise both insert the same rows). A transaction-scoped advisory lock, not a row lock:
    locking the programme row would block every insert referencing it (foreign key checks).
    SQLite's ``BEGIN IMMEDIATE`` already serialises writers."""
    if uow.dialect == "postgresql":
        key = f"segments:{programme_id}"
        uow.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


_CHUNK = 500


def _store(
    uow: UnitOfWork,
    programme: Programme,
    entered: list[tuple[str, str]],
    left: list[tuple[str, str]],
    at: datetime,
) -> None:
    for i in range(0, len(left), _CHUNK):
        chunk = left[i : i + _CHUNK]
        uow.conn.execute(
            delete(segment_members).where(
                segment_members.c.programme_id == programme.id,
                tuple_(segment_members.c.segment, segment_members.c.member_id).in_(chunk),
            )
        )
    if entered:
        uow.conn.execute(
            insert(segment_members),
            [
                {
                    "programme_id": programme.id,
                    "segment": key,
                    "member_id": member_id,
                    "tenant_id": programme.tenant_id,
                    "entered_at": at,
                }
                for key, member_id in entered
            ],
        )
    for kind, changes in (("segment.entered", entered), ("segment.left", left)):
        for key, member_id in changes:
            uow.publish(Event(programme.tenant_id, kind, {"member_id": member_id, "segment": key}))


def recompute_segments(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """The nightly step: every segment as of the start of ``day`` in programme time. Returns
    the number of changes (members who entered or left a segment)."""
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        done = recompute(uow, programme, at=start_of_day(day, programme.tz))
        uow.commit()
        return done.changes


def recompute_segment(
    uow: UnitOfWork, *, programme_id: str, segment: str | None = None
) -> Recomputed:
    """On demand: one segment (or all) as of now. A use case: commits."""
    programme = load_programme(uow, programme_id)
    done = recompute(uow, programme, at=uow.now(), only=segment)
    uow.commit()
    return done


def member_segments(uow: UnitOfWork, member_id: str) -> frozenset[str]:
    """The segments a member is in, as the last recompute (or static upload) left them."""
    return frozenset(
        uow.conn.execute(
            select(segment_members.c.segment).where(segment_members.c.member_id == member_id)
        ).scalars()
    )


def segment_member_ids(uow: UnitOfWork, programme: Programme, segment: str) -> list[str]:
    """The segment's members as of the last recompute, in id order."""
    return list(
        uow.conn.execute(
            select(segment_members.c.member_id)
            .where(
                segment_members.c.programme_id == programme.id,
                segment_members.c.segment == segment,
            )
            .order_by(segment_members.c.member_id)
        ).scalars()
    )


def segment_sizes(uow: UnitOfWork, programme: Programme) -> dict[str, int]:
    """Members per segment as of the last recompute (segments without members: absent)."""
    return {
        key: int(count)
        for key, count in uow.conn.execute(
            select(segment_members.c.segment, func.count())
            .where(segment_members.c.programme_id == programme.id)
            .group_by(segment_members.c.segment)
        )
    }


def segment_size(uow: UnitOfWork, programme: Programme, segment: str) -> int:
    segment_def(programme, segment)
    return int(
        uow.conn.execute(
            select(func.count()).where(
                segment_members.c.programme_id == programme.id,
                segment_members.c.segment == segment,
            )
        ).scalar_one()
    )


# --- views: definitions with sizes, previews ------------------------------------------------


@dataclass(frozen=True)
class SegmentView:
    definition: SegmentDef
    built_in: bool  # one of new/active/inactive/premium (perhaps as the programme overrides it)
    size: int  # members as of the last recompute


def list_segments(uow: UnitOfWork, programme: Programme) -> list[SegmentView]:
    sizes = segment_sizes(uow, programme)
    return [
        SegmentView(d, d.key in BUILT_IN_KEYS, sizes.get(d.key, 0)) for d in segments_of(programme)
    ]


def get_segment(uow: UnitOfWork, programme: Programme, key: str) -> SegmentView:
    defn = segment_def(programme, key)
    return SegmentView(defn, key in BUILT_IN_KEYS, segment_size(uow, programme, key))


@dataclass(frozen=True)
class MemberPreview:
    """A member of a sample, masked: enough to recognise, not to export a mailing list."""

    id: str
    name: str | None
    email: str | None
    entered_at: datetime | None  # None in an ad-hoc preview (nothing stored)


def preview_members(
    uow: UnitOfWork,
    programme: Programme,
    segment: str,
    *,
    limit: int = 20,
    starting_after: str | None = None,
) -> list[MemberPreview]:
    """Up to ``limit`` stored members of the segment after ``starting_after``, in id order."""
    segment_def(programme, segment)
    query = (
        select(segment_members.c.member_id, segment_members.c.entered_at)
        .where(
            segment_members.c.programme_id == programme.id,
            segment_members.c.segment == segment,
        )
        .order_by(segment_members.c.member_id)
        .limit(limit)
    )
    if starting_after is not None:
        query = query.where(segment_members.c.member_id > starting_after)
    rows = uow.conn.execute(query).all()
    return _previews(uow, [r.member_id for r in rows], {r.member_id: r.entered_at for r in rows})


def _previews(
    uow: UnitOfWork, member_ids: list[str], entered: Mapping[str, datetime]
) -> list[MemberPreview]:
    if not member_ids:
        return []
    names: dict[str, str | None] = {
        r.id: r.name
        for r in uow.conn.execute(
            select(members.c.id, members.c.name).where(members.c.id.in_(member_ids))
        )
    }
    emails: dict[str, str] = {
        r.member_id: r.value
        for r in uow.conn.execute(
            select(identifiers.c.member_id, identifiers.c.value).where(
                identifiers.c.member_id.in_(member_ids), identifiers.c.kind == "email"
            )
        )
    }
    return [
        MemberPreview(m, mask_name(names.get(m)), mask_email(emails.get(m)), entered.get(m))
        for m in member_ids
    ]


@dataclass(frozen=True)
class AdHocResult:
    size: int
    sample: list[MemberPreview]


def preview_definition(
    uow: UnitOfWork, programme: Programme, definition: Mapping[str, Any], *, sample: int = 10
) -> AdHocResult:
    """Evaluate a definition that is not stored (``key`` and ``name`` may be left out) as of
    now: its size and the first ``sample`` members, in id order. Stores nothing."""
    defn = parse_segment(programme, {"key": "preview", "name": "Preview", **definition})
    ids = evaluate(uow, programme, [defn], at=uow.now())[defn.key]
    return AdHocResult(len(ids), _previews(uow, ids[:sample], {}))


def parse_segment(programme: Programme, data: Mapping[str, Any]) -> SegmentDef:
    """A segment definition checked as the programme document would check it (field paths in
    ``details["errors"]``, ``invalid_segment``)."""
    doc = programme.document
    try:
        defn = SegmentDef.model_validate(dict(data))
        tiers = doc.tiers.keys() if doc.tiers else ()
        check_segments([defn], tiers, [p.key for p in doc.memberships])
    except ValidationError as exc:
        errors = [
            {"path": ".".join(str(p) for p in e["loc"]) or "(definition)", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise _invalid(errors) from None
    except ValueError as exc:
        path, _, message = str(exc).partition(": ")
        path = path.replace("segments.0", "(definition)")
        raise _invalid([{"path": path, "message": message}]) from None
    return defn


def _invalid(errors: list[dict[str, str]]) -> InvalidInput:
    summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
    return InvalidInput(ErrorCode.INVALID_SEGMENT, f"invalid segment: {summary}", errors=errors)


# --- static segments ------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reference: str
    code: str  # member_not_found, invalid_identifier
    message: str


@dataclass(frozen=True)
class UploadReport:
    segment: str
    rows: int  # references read
    members: int  # distinct members now on the list
    rejected: list[RejectedRow]  # rows naming no member of the programme (nothing stored)
    entered: int
    left: int


def upload_static_segment(
    uow: UnitOfWork, programme: Programme, segment: str, member_refs: Iterable[str | CsvRow]
) -> UploadReport:
    """Replace the uploaded list of a static segment and recompute that segment (a use case:
    commits). Rows naming no member are reported, not stored; the rest is stored."""
    defn = segment_def(programme, segment)
    if not defn.static:
        raise Conflict(
            ErrorCode.SEGMENT_NOT_STATIC,
            f"segment {segment!r} is defined by rules; only a static segment takes an upload",
        )
    rows = [r if isinstance(r, CsvRow) else CsvRow(i, r) for i, r in enumerate(member_refs, 1)]
    found: set[str] = set()
    rejected = []
    for row in rows:
        try:
            found.add(find_member(uow, programme_id=programme.id, reference=row.reference).id)
        except (NotFound, InvalidInput) as exc:
            rejected.append(RejectedRow(row.line, row.reference, exc.code.value, exc.message))
    now = uow.now()
    uow.conn.execute(
        delete(segment_uploads).where(
            segment_uploads.c.programme_id == programme.id, segment_uploads.c.segment == segment
        )
    )
    if found:
        uow.conn.execute(
            insert(segment_uploads),
            [
                {
                    "programme_id": programme.id,
                    "segment": segment,
                    "member_id": member_id,
                    "tenant_id": programme.tenant_id,
                    "uploaded_at": now,
                }
                for member_id in sorted(found)
            ],
        )
    done = recompute(uow, programme, at=now, only=segment)
    uow.commit()
    return UploadReport(segment, len(rows), len(found), rejected, done.entered, done.left)


def upload_static_csv(
    uow: UnitOfWork, programme: Programme, segment: str, csv_text: str
) -> UploadReport:
    """:func:`upload_static_segment` from the text of a CSV file (see
    :func:`treu.segments.model.member_references`)."""
    try:
        rows = member_references(csv_text)
    except ValueError as exc:
        raise _invalid([{"path": "(body)", "message": str(exc)}]) from None
    return upload_static_segment(uow, programme, segment, rows)
