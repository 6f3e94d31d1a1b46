"""Use cases for a member's data rights: an export of everything held about them, and erasure.

Erasure pseudonymises, it does not delete: the ledger is append-only and must stay balanced, and
a shop keeps its sales. What identifies the person goes (name, birthday, locale, attributes,
every identifier, the attributes kept with their purchases); what remains is an id with numbers
attached. Points the member can no longer use are given up to breakage on the way out, holds are
released first, pending points become available only to be given up with the rest, so nothing is
left to activate or expire later and `treu ledger verify` holds before and after.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from treu.activities.tables import activities
from treu.auth.tables import member_login_codes
from treu.donations.tables import donations
from treu.errors import ErrorCode, Rejected
from treu.ledger import postings
from treu.ledger.model import LotStatus
from treu.ledger.service import get_balances, list_lots, member_history
from treu.ledger.tables import holds, lots
from treu.members.model import MemberStatus
from treu.members.service import consent_history, get_member
from treu.members.tables import identifiers, members
from treu.memberships.service import list_memberships
from treu.messaging.service import forget_messages, list_messages
from treu.programmes.service import load_programme
from treu.referrals.tables import referrals
from treu.rewards.service import list_vouchers
from treu.stamps.service import member_stamp_cards
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork
from treu.tiers.service import tier_history_of
from treu.wallet.service import get_wallet

EXPORT_FORMAT = "treu.member-export/1"


def export_member(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> dict[str, Any]:
    """Everything Treu holds about the member, as one JSON-ready document."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    purchases = uow.conn.execute(
        select(
            activities.c.id,
            activities.c.type,
            activities.c.action_type,
            activities.c.external_id,
            activities.c.channel,
            activities.c.occurred_at,
            activities.c.currency,
            activities.c.paid_minor,
            activities.c.payload,
        )
        .where(activities.c.member_id == member_id)
        .order_by(activities.c.occurred_at, activities.c.id)
    )
    document = _jsonable(
        {
            "format": EXPORT_FORMAT,
            "exported_at": uow.now(),
            "member": asdict(member),
            "consents": [
                asdict(c) for c in consent_history(uow, tenant_id=tenant_id, member_id=member_id)
            ],
            "balances": asdict(get_balances(uow, tenant_id=tenant_id, member_id=member_id)),
            "lots": [
                asdict(lot) for lot in list_lots(uow, tenant_id=tenant_id, member_id=member_id)
            ],
            "history": [
                asdict(h) for h in member_history(uow, tenant_id=tenant_id, member_id=member_id)
            ],
            "activities": [dict(r._mapping) for r in purchases],
            "vouchers": [
                asdict(v) for v in list_vouchers(uow, tenant_id=tenant_id, member_id=member_id)
            ],
            "stamp_cards": [
                asdict(c) for c in member_stamp_cards(uow, tenant_id=tenant_id, member_id=member_id)
            ],
            "tier_history": [asdict(t) for t in tier_history_of(uow, member_id)],
            "memberships": [
                {**asdict(m), "plan": m.plan.key}
                for m in list_memberships(uow, tenant_id=tenant_id, member_id=member_id)
            ],
            "wallet": asdict(get_wallet(uow, tenant_id=tenant_id, member_id=member_id)),
            "messages": [
                asdict(m)
                for m in list_messages(uow, tenant_id=tenant_id, member_id=member_id, limit=10**6)
            ],
            "donations": _rows(uow, select(donations).where(donations.c.member_id == member_id)),
            "referrals": _rows(
                uow,
                select(referrals).where(
                    (referrals.c.referrer_id == member_id) | (referrals.c.friend_id == member_id)
                ),
            ),
        }
    )
    assert isinstance(document, dict)
    return document


def _rows(uow: UnitOfWork, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in uow.conn.execute(query.order_by(query.selected_columns.id))]


def erase_member(uow: UnitOfWork, *, tenant_id: str, member_id: str, actor: str) -> int:
    """Pseudonymise the member and give up their points; returns the points given up.
    Erasing an erased member again changes nothing (and returns 0)."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    lock_members(uow, member_id)
    if member.status is MemberStatus.ERASED:
        return 0
    if member.status is MemberStatus.MERGED:
        raise Rejected(ErrorCode.MEMBER_ERASED, f"member {member_id} was merged into another")
    programme = load_programme(uow, member.programme_id)
    now = uow.now()
    for (hold_id,) in uow.conn.execute(
        select(holds.c.id).where(holds.c.member_id == member_id, holds.c.status == "held")
    ).all():
        postings.void(uow, programme, hold_id=hold_id, at=now)
    for (lot_id,) in uow.conn.execute(
        select(lots.c.id).where(
            lots.c.member_id == member_id, lots.c.status == LotStatus.PENDING.value
        )
    ).all():
        postings.activate(uow, programme, lot_id=lot_id, at=now)
    given_up = 0
    for (lot_id,) in uow.conn.execute(
        select(lots.c.id)
        .where(
            lots.c.member_id == member_id,
            lots.c.status == LotStatus.ACTIVE.value,
            lots.c.remaining > 0,
        )
        .order_by(lots.c.id)
    ).all():
        given_up += postings.expire_lot(uow, programme, lot_id=lot_id, at=now)
    uow.conn.execute(identifiers.delete().where(identifiers.c.member_id == member_id))
    uow.conn.execute(member_login_codes.delete().where(member_login_codes.c.member_id == member_id))
    forget_messages(uow, member_id)
    uow.conn.execute(
        update(activities).where(activities.c.member_id == member_id).values(member_attributes={})
    )
    uow.conn.execute(
        update(members)
        .where(members.c.id == member_id)
        .values(
            status=MemberStatus.ERASED.value,
            name=None,
            birthday=None,
            locale=None,
            attributes={},
            erased_at=now,
        )
    )
    uow.publish(
        Event(
            tenant_id,
            "member.erased",
            {"member_id": member_id, "points_given_up": given_up, "actor": actor},
        )
    )
    uow.commit()
    return given_up


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value  # enums
    return value
