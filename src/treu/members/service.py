"""Use cases for members: find, update, consent, block; the member row of an enrolment.

Enrolment itself is :func:`treu.members.enrolment.enrol_member`: it creates the member here and
then lets the programme's mechanics react (welcome gift, referral), in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound, Rejected
from treu.ids import new_id
from treu.ledger.model import MEMBER_ACCOUNTS, member_account_id
from treu.ledger.tables import accounts
from treu.members.model import (
    Channel,
    ConsentRecord,
    IdentifierKind,
    Member,
    MemberStatus,
    normalise_identifier,
    parse_reference,
)
from treu.members.tables import consents, identifiers, members
from treu.programmes.service import load_programme, tenant_secret
from treu.storage.types import UTCDateTime
from treu.storage.uow import Event, UnitOfWork, is_unique_violation


def create_member(
    uow: UnitOfWork,
    *,
    programme_id: str,
    identifiers_: dict[IdentifierKind, str],
    name: str | None = None,
    birthday: date | None = None,
    locale: str | None = None,
    attributes: dict[str, Any] | None = None,
    consents_: dict[Channel, bool] | None = None,
    source: str = "api",
) -> Member:
    programme = load_programme(uow, programme_id)
    if not identifiers_:
        raise InvalidInput(ErrorCode.INVALID_IDENTIFIER, "a member needs at least one identifier")
    normalised = _normalise_all(uow, programme.tenant_id, programme.document.country, identifiers_)
    _check_identifiers_free(uow, programme_id, normalised)
    now = uow.now()
    member_id = new_id("member")
    uow.conn.execute(
        insert(members).values(
            id=member_id,
            tenant_id=programme.tenant_id,
            programme_id=programme_id,
            status=MemberStatus.ACTIVE.value,
            name=name,
            birthday=birthday,
            locale=locale or programme.document.locale,
            attributes=attributes or {},
            enrolled_at=now,
        )
    )
    try:
        # A concurrent sign-up with the same identifier may commit between the check above and
        # this insert (PostgreSQL: nothing locks a row that does not exist yet). The unique
        # constraint catches it; report it like the check does, not as a database error.
        with uow.conn.begin_nested():
            uow.conn.execute(
                insert(identifiers),
                [
                    {
                        "id": new_id("identifier"),
                        "tenant_id": programme.tenant_id,
                        "programme_id": programme_id,
                        "member_id": member_id,
                        "kind": kind.value,
                        "value": value,
                        "created_at": now,
                    }
                    for kind, value in normalised.items()
                ],
            )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        _check_identifiers_free(uow, programme_id, normalised)
        raise
    uow.conn.execute(
        insert(accounts),
        [
            {
                "id": member_account_id(member_id, kind, unit),
                "tenant_id": programme.tenant_id,
                "programme_id": programme_id,
                "member_id": member_id,
                "kind": kind.value,
                "unit": unit.value,
                "balance": 0,
            }
            for unit, kinds in MEMBER_ACCOUNTS.items()
            for kind in kinds
        ],
    )
    wording = programme.document.messaging.consent_text_version  # what the member agreed to
    for channel, granted in (consents_ or {}).items():
        _insert_consent(uow, programme.tenant_id, member_id, channel, granted, source, wording)
    uow.publish(
        Event(
            programme.tenant_id,
            "member.enrolled",
            {"member_id": member_id, "programme_id": programme_id},
        )
    )
    return get_member(uow, member_id, tenant_id=programme.tenant_id)


def get_member(uow: UnitOfWork, member_id: str, *, tenant_id: str) -> Member:
    """A member of ``tenant_id``; another tenant's member is "not found", never "forbidden"."""
    row = uow.conn.execute(
        select(members).where(members.c.id == member_id, members.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")
    return _member(uow, row)


def find_member(uow: UnitOfWork, *, programme_id: str, reference: str) -> Member:
    """Find by ``mbr_…`` or ``kind:value`` (``email:mia@example.org``, ``card:4711``)."""
    programme = load_programme(uow, programme_id)
    kind, value = parse_reference(reference)
    if kind is None:
        member = get_member(uow, value, tenant_id=programme.tenant_id)
        if member.programme_id != programme_id:
            raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member {value}")
        return member
    normal = _normalised(
        kind,
        value,
        country=programme.document.country,
        secret=tenant_secret(uow, programme.tenant_id),
    )
    member_id = _find_id(uow, programme_id, kind, normal)
    if member_id is None:
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member with {kind} {value}")
    return get_member(uow, member_id, tenant_id=programme.tenant_id)


def resolve_member_id(uow: UnitOfWork, *, programme_id: str, reference: str) -> str:
    return find_member(uow, programme_id=programme_id, reference=reference).id


@dataclass(frozen=True)
class LockedMember:
    """A member locked for the rest of the transaction, as read under the lock."""

    id: str
    status: str
    first_purchase_at: datetime | None
    attributes: dict[str, Any]


def resolve_member_for_write(uow: UnitOfWork, *, programme_id: str, reference: str) -> LockedMember:
    """The member ``reference`` names (as :func:`find_member`), locked for the rest of the
    transaction, with what earning needs to know about it, read under the lock.

    One statement: ``FOR UPDATE OF members`` on PostgreSQL; on SQLite the transaction's
    ``BEGIN IMMEDIATE`` already holds the write lock. One member only: lock several with
    :func:`resolve_member_ids` and ``lock_members``, which take them in id order.
    """
    row = _resolve_and_lock(uow, programme_id, reference)
    return LockedMember(row.id, row.status, row.first_purchase_at, row.attributes)


def resolve_member_ids(
    uow: UnitOfWork, *, programme_id: str, references: Iterable[str]
) -> dict[str, str]:
    """reference → member id for many references at once (a few queries, not one each), as
    :func:`find_member` finds them; nothing is locked. References that are malformed or name no
    member of the programme are left out: :func:`find_member` says why."""
    programme = load_programme(uow, programme_id)
    wanted: dict[tuple[IdentifierKind | None, str], list[str]] = defaultdict(list)
    for reference in dict.fromkeys(references):
        try:
            kind, value = parse_reference(reference)
            if kind is not None:
                value = _normalised(
                    kind,
                    value,
                    country=programme.document.country,
                    secret=tenant_secret(uow, programme.tenant_id),
                )
        except InvalidInput:
            continue
        wanted[(kind, value)].append(reference)
    found: dict[str, str] = {}
    for kind in {kind for kind, _ in wanted}:
        values = [value for k, value in wanted if k is kind]
        for start in range(0, len(values), 500):
            params = {"programme_id": programme_id, "values": values[start : start + 500]}
            if kind is None:
                rows = uow.conn.execute(_IDS_BY_ID, params)
            else:
                rows = uow.conn.execute(_IDS_BY_IDENTIFIER, {**params, "kind": kind.value})
            for value, member_id in rows:
                for reference in wanted[(kind, value)]:
                    found[reference] = member_id
    return found


_IDS_BY_ID = select(members.c.id.label("value"), members.c.id.label("member_id")).where(
    members.c.id.in_(bindparam("values", expanding=True)),
    members.c.programme_id == bindparam("programme_id"),
)
_IDS_BY_IDENTIFIER = select(identifiers.c.value, identifiers.c.member_id).where(
    identifiers.c.programme_id == bindparam("programme_id"),
    identifiers.c.kind == bindparam("kind"),
    identifiers.c.value.in_(bindparam("values", expanding=True)),
)


def _resolve_and_lock(uow: UnitOfWork, programme_id: str, reference: str) -> Row[Any]:
    programme = load_programme(uow, programme_id)
    kind, value = parse_reference(reference)
    if kind is None:
        row = uow.conn.execute(
            _LOCK_BY_ID, {"member_id": value, "programme_id": programme_id}
        ).first()
        if row is None:
            raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member {value}")
        return row
    normal = _normalised(
        kind,
        value,
        country=programme.document.country,
        secret=tenant_secret(uow, programme.tenant_id),
    )
    row = uow.conn.execute(
        _LOCK_BY_IDENTIFIER, {"programme_id": programme_id, "kind": kind.value, "value": normal}
    ).first()
    if row is None:
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member with {kind} {value}")
    return row


# SQLite renders no FOR UPDATE (its write lock is the whole database, taken at BEGIN).
_FOR_WRITE = (
    members.c.id,
    members.c.status,
    members.c.first_purchase_at,
    members.c.attributes,
)
_LOCK_BY_ID = (
    select(*_FOR_WRITE)
    .where(
        members.c.id == bindparam("member_id"),
        members.c.programme_id == bindparam("programme_id"),
    )
    .with_for_update()
)
_LOCK_BY_IDENTIFIER = (
    select(*_FOR_WRITE)
    .join_from(identifiers, members, members.c.id == identifiers.c.member_id)
    .where(
        identifiers.c.programme_id == bindparam("programme_id"),
        identifiers.c.kind == bindparam("kind"),
        identifiers.c.value == bindparam("value"),
    )
    .with_for_update(of=members)
)


def update_profile(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    name: str | None = None,
    birthday: date | None = None,
    locale: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Member:
    member = get_member(uow, member_id, tenant_id=tenant_id)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if birthday is not None:
        values["birthday"] = birthday
    if locale is not None:
        values["locale"] = locale
    if attributes is not None:
        values["attributes"] = {**member.attributes, **attributes}
    if values:
        uow.conn.execute(update(members).where(members.c.id == member_id).values(**values))
        uow.publish(
            Event(tenant_id, "member.updated", {"member_id": member_id, "fields": sorted(values)})
        )
    member = get_member(uow, member_id, tenant_id=tenant_id)
    uow.commit()
    return member


def record_consent(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    channel: Channel,
    granted: bool,
    source: str,
    text_version: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> None:
    """Record a consent decision as given. E-mail marketing consent with double opt-in goes
    through ``treu.messaging.consent.set_consent`` instead, which asks for the confirmation."""
    get_member(uow, member_id, tenant_id=tenant_id)
    add_consent(
        uow,
        tenant_id=tenant_id,
        member_id=member_id,
        channel=channel,
        granted=granted,
        source=source,
        text_version=text_version,
        evidence=evidence,
    )
    uow.commit()


def add_consent(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    channel: Channel,
    granted: bool,
    source: str,
    text_version: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> str:
    """Append a consent decision and announce it (building block: never commits)."""
    consent_id = _insert_consent(
        uow, tenant_id, member_id, channel, granted, source, text_version, evidence
    )
    uow.publish(
        Event(tenant_id, "member.updated", {"member_id": member_id, "fields": ["consents"]})
    )
    return consent_id


def consent_history(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> list[ConsentRecord]:
    """Every consent decision of the member, oldest first: channel, yes/no, where, when, the
    wording agreed to and the evidence."""
    get_member(uow, member_id, tenant_id=tenant_id)
    rows = uow.conn.execute(
        select(consents).where(consents.c.member_id == member_id).order_by(consents.c.id)
    )
    return [_consent(r) for r in rows]


def latest_consents(uow: UnitOfWork, member_id: str) -> dict[str, ConsentRecord]:
    """The member's latest consent decision per channel (building block)."""
    rows = uow.conn.execute(
        select(consents).where(consents.c.member_id == member_id).order_by(consents.c.id)
    )
    return {r.channel: _consent(r) for r in rows}


def _consent(r: Row[Any]) -> ConsentRecord:
    return ConsentRecord(
        r.channel,
        bool(r.granted),
        r.source,
        r.recorded_at,
        r.text_version,
        dict(r.evidence) if r.evidence is not None else None,
        r.id,
    )


def set_blocked(uow: UnitOfWork, *, tenant_id: str, member_id: str, blocked: bool) -> Member:
    member = get_member(uow, member_id, tenant_id=tenant_id)
    if member.status in (MemberStatus.ERASED, MemberStatus.MERGED):
        raise Rejected(ErrorCode.MEMBER_ERASED, f"member {member_id} is {member.status}")
    status = MemberStatus.BLOCKED if blocked else MemberStatus.ACTIVE
    uow.conn.execute(update(members).where(members.c.id == member_id).values(status=status.value))
    uow.publish(Event(tenant_id, "member.updated", {"member_id": member_id, "fields": ["status"]}))
    member = get_member(uow, member_id, tenant_id=tenant_id)
    uow.commit()
    return member


def _normalise_all(
    uow: UnitOfWork, tenant_id: str, country: str | None, given: dict[IdentifierKind, str]
) -> dict[IdentifierKind, str]:
    secret = tenant_secret(uow, tenant_id)
    return {
        IdentifierKind(kind): normalise_identifier(
            IdentifierKind(kind), value, country=country, secret=secret
        )
        for kind, value in given.items()
    }


def _normalised(kind: IdentifierKind, value: str, *, country: str | None, secret: str) -> str:
    """:func:`normalise_identifier`, remembered for look-ups: validating an e-mail address or a
    phone number costs more than the query that finds the member. Payment tokens are not kept,
    not even in memory."""
    if kind is IdentifierKind.PAYMENT:
        return normalise_identifier(kind, value, country=country, secret=secret)
    return _normalised_cached(kind, value, country, secret)


@lru_cache(maxsize=16_384)
def _normalised_cached(kind: IdentifierKind, value: str, country: str | None, secret: str) -> str:
    return normalise_identifier(kind, value, country=country, secret=secret)


def _check_identifiers_free(
    uow: UnitOfWork, programme_id: str, normalised: dict[IdentifierKind, str]
) -> None:
    for kind, value in normalised.items():
        if _find_id(uow, programme_id, kind, value):
            raise Conflict(
                ErrorCode.DUPLICATE_IDENTIFIER,
                f"another member of this programme already has {kind} {value}",
                kind=kind.value,
            )


def _find_id(uow: UnitOfWork, programme_id: str, kind: IdentifierKind, value: str) -> str | None:
    found = uow.conn.execute(
        select(identifiers.c.member_id).where(
            identifiers.c.programme_id == programme_id,
            identifiers.c.kind == kind.value,
            identifiers.c.value == value,
        )
    ).scalar()
    return None if found is None else str(found)


def _insert_consent(
    uow: UnitOfWork,
    tenant_id: str,
    member_id: str,
    channel: Channel,
    granted: bool,
    source: str,
    text_version: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> str:
    consent_id = new_id("consent")
    uow.conn.execute(
        insert(consents).values(
            id=consent_id,
            tenant_id=tenant_id,
            member_id=member_id,
            channel=Channel(channel).value,
            granted=granted,
            source=source,
            recorded_at=uow.now(),
            text_version=text_version,
            evidence=evidence,
        )
    )
    return consent_id


def _member(uow: UnitOfWork, row: Row[Any]) -> Member:
    ids = {
        r.kind: r.value
        for r in uow.conn.execute(
            select(identifiers.c.kind, identifiers.c.value).where(identifiers.c.member_id == row.id)
        )
    }
    latest: dict[str, bool] = {}
    for r in uow.conn.execute(
        select(consents.c.channel, consents.c.granted)
        .where(consents.c.member_id == row.id)
        .order_by(consents.c.id)
    ):
        latest[r.channel] = r.granted
    return Member(
        id=row.id,
        tenant_id=row.tenant_id,
        programme_id=row.programme_id,
        status=MemberStatus(row.status),
        name=row.name,
        birthday=row.birthday,
        locale=row.locale,
        enrolled_at=row.enrolled_at,
        first_purchase_at=row.first_purchase_at,
        last_activity_at=row.last_activity_at,
        attributes=dict(row.attributes),
        identifiers=ids,
        consents=latest,
    )


def touch_member(uow: UnitOfWork, member_id: str, at: datetime, *, purchase: bool) -> None:
    """The member did something at ``at`` (bought, returned, redeemed, an action): moves
    ``last_activity_at`` forward (inactivity expiry counts from it), and sets
    ``first_purchase_at`` on a first purchase."""
    uow.conn.execute(_TOUCH[purchase], {"member_id": member_id, "at": at})


def _greatest(column: Any, at: Any) -> Any:
    return case((column.is_(None), at), (column < at, at), else_=column)


# The instant is typed: an untyped datetime inside CASE/COALESCE would be bound as a plain
# DATETIME, which SQLite stores as the wall-clock time of whatever offset it carries.
_AT = bindparam("at", type_=UTCDateTime())
_TOUCH = {
    purchase: update(members)
    .where(members.c.id == bindparam("member_id"))
    .values(
        # max(last, at): an offline till's late purchase must not move "last activity" backwards
        last_activity_at=_greatest(members.c.last_activity_at, _AT),
        **(
            {"first_purchase_at": func.coalesce(members.c.first_purchase_at, _AT)}
            if purchase
            else {}
        ),
    )
    for purchase in (False, True)
}
