"""Merging two members of a programme: the person signed up twice (a card at the till, an
account online) and wants one balance.

Everything moves to the member that stays: identifiers, consents, activities and their awards
(so caps and first purchase count once), vouchers and redemptions, and the points — lot by lot,
each keeping its activation, expiry and purchase, so returns and expiry work as before; a debt
moves too and is paid from the points; the wallet money moves as one transfer. The merged member
keeps its id and history and points to the one that stays.
"""

from __future__ import annotations

from sqlalchemy import select, update

from treu.activities.tables import activities, awards
from treu.auth.tables import member_login_codes
from treu.errors import Conflict, ErrorCode, InvalidInput, Rejected
from treu.ledger import postings
from treu.ledger.tables import holds, lots
from treu.members.model import Member, MemberStatus
from treu.members.service import get_member
from treu.members.tables import consents, identifiers, members
from treu.programmes.service import load_programme
from treu.rewards.tables import redemptions, vouchers
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork
from treu.wallet import service as wallet


def merge_members(
    uow: UnitOfWork, *, tenant_id: str, keep_id: str, merge_id: str, actor: str
) -> Member:
    """Merge ``merge_id`` into ``keep_id``; returns the member that stays. Merging the same
    pair again is a no-op."""
    if keep_id == merge_id:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "a member cannot be merged into itself")
    keep = get_member(uow, keep_id, tenant_id=tenant_id)
    gone = get_member(uow, merge_id, tenant_id=tenant_id)
    lock_members(uow, keep_id, merge_id)
    if gone.status is MemberStatus.MERGED:
        row = uow.conn.execute(select(members.c.merged_into_id).where(members.c.id == merge_id))
        if row.scalar() == keep_id:
            return keep
        raise Conflict(ErrorCode.MEMBER_ERASED, f"member {merge_id} was merged into another")
    for member in (keep, gone):
        if member.status in (MemberStatus.ERASED, MemberStatus.MERGED):
            raise Rejected(ErrorCode.MEMBER_ERASED, f"member {member.id} is {member.status}")
    if keep.programme_id != gone.programme_id:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR, "only members of the same programme can be merged"
        )
    if uow.conn.execute(
        select(holds.c.id).where(holds.c.member_id == merge_id, holds.c.status == "held")
    ).first():
        raise Conflict(
            ErrorCode.HOLD_NOT_OPEN,
            f"member {merge_id} has points held at a checkout: capture or void them first",
        )
    programme = load_programme(uow, keep.programme_id)
    now = uow.now()
    moved = 0
    for (lot_id,) in uow.conn.execute(
        select(lots.c.id)
        .where(lots.c.member_id == merge_id, lots.c.remaining > 0)
        .order_by(lots.c.id)
    ).all():
        moved += postings.move_lot(
            uow, programme, lot_id=lot_id, to_member=keep_id, key=f"merge:{lot_id}", at=now
        )
    owed = postings.move_debt(
        uow,
        programme,
        from_member=merge_id,
        to_member=keep_id,
        key=f"merge-debt:{merge_id}",
        at=now,
    )
    if owed:
        spendable = [
            lot_id
            for (lot_id,) in uow.conn.execute(
                select(lots.c.id)
                .where(lots.c.member_id == keep_id, lots.c.status == "active", lots.c.remaining > 0)
                .order_by(lots.c.expires_at, lots.c.id)
            )
        ]
        postings.settle_debt(
            uow, programme, member_id=keep_id, lot_id=spendable, key=f"merge:{merge_id}", at=now
        )
    wallet.move_wallet(
        uow,
        programme,
        from_member=merge_id,
        to_member=keep_id,
        key=f"merge-wallet:{merge_id}",
        at=now,
    )
    uow.conn.execute(member_login_codes.delete().where(member_login_codes.c.member_id == merge_id))
    for table in (identifiers, consents, activities, awards, vouchers, redemptions):
        uow.conn.execute(
            update(table).where(table.c.member_id == merge_id).values(member_id=keep_id)
        )
    earliest = [t for t in (keep.first_purchase_at, gone.first_purchase_at) if t is not None]
    latest = [t for t in (keep.last_activity_at, gone.last_activity_at) if t is not None]
    uow.conn.execute(
        update(members)
        .where(members.c.id == keep_id)
        .values(
            name=keep.name or gone.name,
            birthday=keep.birthday or gone.birthday,
            locale=keep.locale or gone.locale,
            attributes={**gone.attributes, **keep.attributes},
            first_purchase_at=min(earliest) if earliest else None,
            last_activity_at=max(latest) if latest else None,
        )
    )
    uow.conn.execute(
        update(members)
        .where(members.c.id == merge_id)
        .values(status=MemberStatus.MERGED.value, merged_into_id=keep_id)
    )
    uow.publish(
        Event(
            tenant_id,
            "member.merged",
            {
                "member_id": keep_id,
                "merged_member_id": merge_id,
                "points_moved": moved,
                "debt_moved": owed,
                "actor": actor,
            },
        )
    )
    result = get_member(uow, keep_id, tenant_id=tenant_id)
    uow.commit()
    return result
