"""Exports of a programme's members, balances, lots, vouchers and activities, streamed.

Each export is one query read with ``yield_per`` (a server-side cursor on PostgreSQL, a lazily
stepped cursor on SQLite), in id order: memory stays constant whatever the programme's size.
Read the rows while the unit of work is open; use a read-only one on SQLite, so a long export
does not hold the write lock.

The members export has the columns of the members import (``treu.imports``), so a file exported
from one programme imports into another: identifiers (the oldest of each kind; payment tokens
are never exported, only their hash is kept), profile, status and the latest consent per
channel. Erased and merged members are left out: they no longer stand for a person.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from sqlalchemy import Select, and_, case, func, select

from treu.activities.tables import activities, awards
from treu.exports.model import Export, ExportKind
from treu.imports.model import CONSENT_COLUMNS, IDENTIFIER_COLUMNS
from treu.ledger.model import expires_on
from treu.ledger.tables import accounts, lots
from treu.members.model import MemberStatus
from treu.members.tables import consents, identifiers, members
from treu.money import from_minor
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.programmes.tables import stores
from treu.rewards.tables import rewards, vouchers
from treu.storage.uow import UnitOfWork

_YIELD_PER = 1_000


def export_rows(uow: UnitOfWork, *, programme_id: str, kind: ExportKind) -> Export:
    """The rows of one export of a programme (raises ``programme_not_found`` at once)."""
    programme = load_programme(uow, programme_id)
    columns, query, shape = _EXPORTS[kind](programme)
    return Export(kind, columns, _stream(uow, query, shape))


def _stream(
    uow: UnitOfWork, query: Select[Any], shape: Callable[[Any], dict[str, Any]]
) -> Generator[dict[str, Any], None, None]:
    result = uow.conn.execution_options(yield_per=_YIELD_PER).execute(query)
    try:
        for row in result:
            yield shape(row)
    finally:  # read to the end or abandoned (a client gone): the server-side cursor goes now
        result.close()


Shaped = tuple[tuple[str, ...], Select[Any], Callable[[Any], dict[str, Any]]]


def _members(programme: Programme) -> Shaped:
    def oldest(kind: str) -> Any:
        return (
            select(identifiers.c.value)
            .where(identifiers.c.member_id == members.c.id, identifiers.c.kind == kind)
            .order_by(identifiers.c.id)
            .limit(1)
            .scalar_subquery()
        )

    def latest(channel: str) -> Any:
        return (
            select(consents.c.granted)
            .where(consents.c.member_id == members.c.id, consents.c.channel == channel)
            .order_by(consents.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    ids = {column: oldest(kind.value).label(column) for column, kind in IDENTIFIER_COLUMNS.items()}
    flags = {column: latest(ch.value).label(column) for column, ch in CONSENT_COLUMNS.items()}
    query = (
        select(members, *ids.values(), *flags.values())
        .where(
            members.c.programme_id == programme.id,
            members.c.status.in_([MemberStatus.ACTIVE.value, MemberStatus.BLOCKED.value]),
        )
        .order_by(members.c.id)
    )
    columns = (
        "member_id",
        *ids,
        "name",
        "birthday",
        "locale",
        "status",
        "enrolled_at",
        *flags,
        "attributes",
    )

    def shape(r: Any) -> dict[str, Any]:
        return {
            "member_id": r.id,
            **{c: getattr(r, c) for c in ids},
            "name": r.name,
            "birthday": r.birthday,
            "locale": r.locale,
            "status": r.status,
            "enrolled_at": r.enrolled_at,
            **{c: None if getattr(r, c) is None else bool(getattr(r, c)) for c in flags},
            "attributes": r.attributes,
        }

    return columns, query, shape


def _balances(programme: Programme) -> Shaped:
    def bucket(unit: str, kind: str) -> Any:
        hit = and_(accounts.c.unit == unit, accounts.c.kind == kind)
        return func.coalesce(func.sum(case((hit, accounts.c.balance), else_=0)), 0)

    query = (
        select(
            accounts.c.member_id,
            bucket("points", "available").label("available"),
            bucket("points", "pending").label("pending"),
            bucket("points", "held").label("held"),
            bucket("points", "debt").label("debt"),
            bucket("stamps", "available").label("stamps"),
            bucket("wallet", "available").label("wallet"),
        )
        .where(accounts.c.programme_id == programme.id, accounts.c.member_id.is_not(None))
        .group_by(accounts.c.member_id)
        .order_by(accounts.c.member_id)
    )
    columns = ("member_id", "available", "pending", "held", "negative", "stamps", "wallet")

    def shape(r: Any) -> dict[str, Any]:
        debt = -int(r.debt)
        return {
            "member_id": r.member_id,
            "available": int(r.available) - debt,  # net of a negative balance, as shown
            "pending": int(r.pending),
            "held": int(r.held),
            "negative": debt,
            "stamps": int(r.stamps),
            "wallet": from_minor(int(r.wallet), programme.currency),
        }

    return columns, query, shape


def _lots(programme: Programme) -> Shaped:
    query = (
        select(lots)
        .where(lots.c.programme_id == programme.id, lots.c.unit == "points")
        .order_by(lots.c.id)
    )
    columns = (
        "lot_id",
        "member_id",
        "amount",
        "remaining",
        "status",
        "earned_at",
        "activates_at",
        "expires_at",
        "expires_on",
        "activity_id",
    )
    tz = programme.tz

    def shape(r: Any) -> dict[str, Any]:
        return {
            "lot_id": r.id,
            "member_id": r.member_id,
            "amount": int(r.amount),
            "remaining": int(r.remaining),
            "status": r.status,
            "earned_at": r.created_at,
            "activates_at": r.activates_at,
            "expires_at": r.expires_at,
            "expires_on": expires_on(r.expires_at, tz),
            "activity_id": r.activity_id,
        }

    return columns, query, shape


def _vouchers(programme: Programme) -> Shaped:
    query = (
        select(vouchers, rewards.c.key.label("reward"), rewards.c.name.label("reward_name"))
        .join(rewards, rewards.c.id == vouchers.c.reward_id)
        .where(vouchers.c.programme_id == programme.id)
        .order_by(vouchers.c.id)
    )
    columns = (
        "code",
        "member_id",
        "reward",
        "reward_name",
        "status",
        "issued_at",
        "expires_at",
        "used_at",
        "cancelled_at",
    )

    def shape(r: Any) -> dict[str, Any]:
        return {c: getattr(r, c) for c in columns}

    return columns, query, shape


def _activities(programme: Programme) -> Shaped:
    purchase = activities.alias("purchase")
    points = (
        select(func.coalesce(func.sum(awards.c.points), 0))
        .where(awards.c.activity_id == activities.c.id)
        .scalar_subquery()
    )
    query = (
        select(
            activities,
            stores.c.key.label("store"),
            purchase.c.external_id.label("purchase_external_id"),
            points.label("points"),
        )
        .outerjoin(stores, stores.c.id == activities.c.store_id)
        .outerjoin(purchase, purchase.c.id == activities.c.purchase_id)
        .where(activities.c.programme_id == programme.id)
        .order_by(activities.c.id)
    )
    columns = (
        "activity_id",
        "type",
        "external_id",
        "member_id",
        "occurred_at",
        "recorded_at",
        "store",
        "channel",
        "currency",
        "amount",
        "points",
        "purchase_external_id",
        "action_type",
    )

    def shape(r: Any) -> dict[str, Any]:
        amount = None if r.paid_minor is None else from_minor(int(r.paid_minor), r.currency)
        return {
            "activity_id": r.id,
            "type": r.type,
            "external_id": r.external_id,
            "member_id": r.member_id,
            "occurred_at": r.occurred_at,
            "recorded_at": r.recorded_at,
            "store": r.store,
            "channel": r.channel,
            "currency": r.currency,
            "amount": amount,
            "points": int(r.points),
            "purchase_external_id": r.purchase_external_id,
            "action_type": r.action_type,
        }

    return columns, query, shape


_EXPORTS: dict[ExportKind, Callable[[Programme], Shaped]] = {
    ExportKind.MEMBERS: _members,
    ExportKind.BALANCES: _balances,
    ExportKind.LOTS: _lots,
    ExportKind.VOUCHERS: _vouchers,
    ExportKind.ACTIVITIES: _activities,
}
