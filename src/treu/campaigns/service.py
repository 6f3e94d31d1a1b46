"""Campaign mechanics: welcome gift, launch bonus, enrolment anniversaries, surprises.

Each award is one row in ``campaign_awards`` whose ``occasion`` is unique per tenant: the row is
inserted first (ON CONFLICT DO NOTHING), and only the request that inserted it gives the points
(``ledger.postings.earn``) and the voucher (``rewards.service.grant_voucher``), inside the
caller's transaction. A retried enrolment, purchase or nightly run finds the row and gives
nothing twice.

The hooks run in their caller's transaction with the member locked and never commit; this
module must not import the mechanics or activities services (they import it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update

from treu.campaigns.model import (
    Gift,
    in_launch_window,
    is_anniversary,
    iso_week,
    lucky,
)
from treu.campaigns.tables import campaign_awards, campaign_visits
from treu.errors import Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import activates_at, expires_at, start_of_day
from treu.mechanics.model import ActivityDone, Effect
from treu.members.tables import members
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.rewards.service import grant_voucher
from treu.storage.locks import lock_members
from treu.storage.sql import insert_or_skip
from treu.storage.uow import Event, UnitOfWork

MECHANIC = "campaigns"


def after_enrolment(
    uow: UnitOfWork, programme: Programme, member_id: str, at: datetime
) -> list[Effect]:
    """The welcome gift, and the launch bonus if the member joined within its window."""
    settings = programme.document.campaigns
    effects: list[Effect] = []
    if settings.welcome is not None:
        effects += _give(
            uow,
            programme,
            member_id,
            at,
            settings.welcome,
            "welcome",
            f"welcome:{member_id}",
            "Welcome gift",
        )
    bonus = settings.launch_bonus
    if bonus is not None and in_launch_window(bonus, programme.local_date(at)):
        effects += _give(
            uow,
            programme,
            member_id,
            at,
            bonus,
            "launch_bonus",
            f"launch:{member_id}",
            "Launch bonus",
        )
    return effects


def after_activity(uow: UnitOfWork, done: ActivityDone) -> list[Effect]:
    """Surprises for a purchase: the Nth visit-week or visit, or a lucky draw."""
    if done.type != "purchase":
        return []
    settings = done.programme.document.campaigns
    effects: list[Effect] = []
    surprise = settings.surprise
    if surprise is not None:
        if surprise.per == "week":
            period = iso_week(done.programme.local_date(done.occurred_at))
        else:
            period = done.activity_id
        count = _count_visit(uow, done, surprise.per, period)
        if count and count % surprise.every == 0:
            what = "visit-week" if surprise.per == "week" else "visit"
            effects += _give(
                uow,
                done.programme,
                done.member_id,
                done.occurred_at,
                surprise,
                "surprise",
                f"surprise:{done.member_id}:{surprise.per}:{count}",
                f"Surprise for the {_ordinal(count)} {what}",
                activity_id=done.activity_id,
            )
    chance = settings.random_surprise
    if chance is not None and lucky(done.member_id, done.activity_id, chance.probability):
        used = uow.conn.execute(
            select(func.count()).where(
                campaign_awards.c.programme_id == done.programme.id,
                campaign_awards.c.campaign == "random_surprise",
            )
        ).scalar_one()
        # A budget, not a hard guarantee under concurrency: two members' purchases at the same
        # moment may both see the last unit (each member is locked, not the programme).
        if used < chance.budget:
            effects += _give(
                uow,
                done.programme,
                done.member_id,
                done.occurred_at,
                chance,
                "random_surprise",
                f"random:{done.activity_id}",
                "A surprise",
                activity_id=done.activity_id,
            )
    return effects


def anniversaries_due(uow: UnitOfWork, *, programme_id: str, day: date) -> list[str]:
    """Active members who joined on this day in an earlier year (programme time), if the
    programme has an anniversary gift."""
    programme = load_programme(uow, programme_id)
    if programme.document.campaigns.anniversary is None:
        return []
    rows = uow.conn.execute(
        select(members.c.id, members.c.enrolled_at)
        .where(members.c.programme_id == programme_id, members.c.status == "active")
        .order_by(members.c.id)
    ).all()
    return [m for m, joined in rows if is_anniversary(programme.local_date(joined), day)]


def award_anniversary(
    uow: UnitOfWork, *, programme_id: str, member_id: str, day: date
) -> list[Effect]:
    """The anniversary gift of ``day``'s year, once per member and year; the caller commits."""
    programme = load_programme(uow, programme_id)
    gift = programme.document.campaigns.anniversary
    if gift is None:
        return []
    lock_members(uow, member_id)
    joined = uow.conn.execute(
        select(members.c.enrolled_at).where(members.c.id == member_id)
    ).scalar_one()
    years = day.year - programme.local_date(joined).year
    return _give(
        uow,
        programme,
        member_id,
        max(start_of_day(day, programme.tz), uow.now()),
        gift,
        "anniversary",
        f"anniversary:{member_id}:{day.year}",
        f"{years} {'year' if years == 1 else 'years'} with us",
    )


# --- internals ----------------------------------------------------------------------------------


def _give(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    at: datetime,
    gift: Gift,
    campaign: str,
    occasion: str,
    fallback: str,
    *,
    activity_id: str | None = None,
) -> list[Effect]:
    """Give ``gift`` for ``occasion`` once; returns what was given (nothing on a repeat)."""
    name = gift.name or fallback
    award_id = new_id("campaign_award")
    inserted = uow.conn.execute(
        _INSERT_AWARD,
        {
            "id": award_id,
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "member_id": member_id,
            "campaign": campaign,
            "occasion": occasion,
            "activity_id": activity_id,
            "explanation": name,
            "created_at": uow.now(),
        },
    ).first()
    if inserted is None:
        return []
    effects: list[Effect] = []
    values: dict[str, Any] = {}
    if gift.points:
        policy = programme.document
        postings.earn(
            uow,
            programme,
            member_id=member_id,
            amount=gift.points,
            key=f"campaign:{occasion}",
            at=at,
            activates_at=activates_at(policy.pending, at),
            expires_at=expires_at(policy.expiry, at, programme.tz),
            reason=f"{name}: {gift.points} {policy.point_name}",
        )
        values["points"] = gift.points
        effects.append(
            Effect(
                MECHANIC,
                "points.earned",
                f"{name}: {gift.points} {policy.point_name}",
                {"campaign": campaign, "occasion": occasion},
                unit="points",
                amount=gift.points,
            )
        )
    if gift.reward:
        effects.append(_voucher(uow, programme, member_id, gift.reward, campaign, occasion, name))
        if effects[-1].data.get("voucher_id"):
            values["voucher_id"] = effects[-1].data["voucher_id"]
    uow.conn.execute(
        update(campaign_awards).where(campaign_awards.c.id == award_id).values(**values)
    )
    uow.publish(
        Event(
            programme.tenant_id,
            "campaign.awarded",
            {"member_id": member_id, "campaign": campaign, "occasion": occasion, **values},
        )
    )
    return effects


def _voucher(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    reward: str,
    campaign: str,
    occasion: str,
    name: str,
) -> Effect:
    """The gift's voucher. Out of stock or withdrawn, the enrolment or purchase still goes
    through (grant_voucher refuses before it writes): the effect says no voucher was issued."""
    data: dict[str, Any] = {"campaign": campaign, "occasion": occasion, "reward": reward}
    try:
        voucher, _ = grant_voucher(
            uow,
            programme,
            member_id=member_id,
            reward_key=reward,
            grant_key=f"campaign:{occasion}",
            reason=name,
        )
    except Rejected as exc:
        data["voucher_error"] = exc.code.value
        return Effect(MECHANIC, "voucher.not_issued", f"{name}: no voucher ({exc.message})", data)
    data.update(voucher_id=voucher.id, code=voucher.code)
    return Effect(
        MECHANIC, "voucher.issued", f"{name}: voucher {voucher.reward_name} ({voucher.code})", data
    )


_INSERT_AWARD = insert_or_skip(
    campaign_awards,
    (
        "id",
        "tenant_id",
        "programme_id",
        "member_id",
        "campaign",
        "occasion",
        "activity_id",
        "explanation",
        "created_at",
    ),
    conflict=("tenant_id", "occasion"),
    returning="id",
)
_INSERT_VISIT = insert_or_skip(
    campaign_visits,
    ("id", "tenant_id", "member_id", "per", "period", "activity_id", "created_at"),
    conflict=("member_id", "per", "period", "tenant_id"),
    returning="id",
)


def _count_visit(uow: UnitOfWork, done: ActivityDone, per: str, period: str) -> int:
    """Count this purchase's week (or visit) once; the member's number of them so far, or 0 if
    the week was counted already."""
    inserted = uow.conn.execute(
        _INSERT_VISIT,
        {
            "id": new_id("campaign_visit"),
            "tenant_id": done.programme.tenant_id,
            "member_id": done.member_id,
            "per": per,
            "period": period,
            "activity_id": done.activity_id,
            "created_at": uow.now(),
        },
    ).first()
    if inserted is None:
        return 0
    return int(uow.conn.execute(_VISITS, {"member_id": done.member_id, "per": per}).scalar_one())


_VISITS = select(func.count()).where(
    campaign_visits.c.member_id == bindparam("member_id"),
    campaign_visits.c.per == bindparam("per"),
)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
