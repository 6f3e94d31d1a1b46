"""Members log in with a one-time code and get a short-lived token; their rotating QR tokens.

The code reaches the member through the outbox: ``member.login_code`` carries it (the
messaging issue sends it by e-mail; until then an operator reads it from the outbox). The
event is not offered to webhook endpoints (``treu.webhooks.model.EVENT_TYPES``): it holds a
secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import NoResultFound

from treu.auth.model import Principal
from treu.auth.tables import member_login_codes
from treu.auth.tokens import (
    LOGIN_CODE_TRIES,
    LOGIN_CODE_TTL,
    MemberClaims,
    QrToken,
    decode_member_token,
    encode_member_token,
    hash_login_code,
    login_code_matches,
    make_qr_token,
    new_login_code,
    new_token_id,
    signing_key,
    verify_qr_token,
)
from treu.errors import ErrorCode, InvalidInput, NotFound, Unauthenticated
from treu.members.model import IdentifierKind, Member, MemberStatus, parse_reference
from treu.members.service import find_member, get_member
from treu.programmes.service import tenant_secret
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork

LOGIN_CODE_EVENT = "member.login_code"
_CAN_LOG_IN = (MemberStatus.ACTIVE, MemberStatus.BLOCKED)  # a blocked member may still look
_CODES = member_login_codes.c


@dataclass(frozen=True)
class MemberToken:
    token: str
    claims: MemberClaims


def login_reference(identifier: str) -> str:
    """``email:…`` or ``phone:…`` — the addresses a code can be sent to. A bare e-mail address
    or ``+49…`` phone number says its kind itself."""
    identifier = identifier.strip()
    if ":" not in identifier:
        identifier = ("email:" if "@" in identifier else "phone:") + identifier
    kind, _value = parse_reference(identifier)
    if kind not in (IdentifierKind.EMAIL, IdentifierKind.PHONE):
        message = "an e-mail address or phone number (email:…, phone:…)"
        raise InvalidInput(
            ErrorCode.INVALID_IDENTIFIER,
            f"identifier: {message}",
            errors=[{"path": "identifier", "message": message}],
        )
    return identifier


def request_login_code(
    uow: UnitOfWork, *, programme_id: str, identifier: str, server_secret: str = ""
) -> None:
    """A new code for the member behind ``identifier`` (replacing any earlier one), published as
    ``member.login_code``. No such member: nothing happens — and the caller answers the same, so
    nobody learns who is a member."""
    reference = login_reference(identifier)
    member = _member(uow, programme_id, reference)
    if member is None:
        return
    lock_members(uow, member.id)  # two requests at once: one code survives, not an error
    now = uow.now()
    code = new_login_code()
    key = tenant_signing_key(uow, member.tenant_id, server_secret, "code")
    uow.conn.execute(delete(member_login_codes).where(_CODES.member_id == member.id))
    uow.conn.execute(
        insert(member_login_codes).values(
            member_id=member.id,
            tenant_id=member.tenant_id,
            code_hash=hash_login_code(key, member.id, code),
            attempts=0,
            created_at=now,
            expires_at=now + LOGIN_CODE_TTL,
        )
    )
    payload = {
        "member_id": member.id,
        "programme_id": programme_id,
        "identifier": reference,
        "code": code,
        "expires_at": (now + LOGIN_CODE_TTL).isoformat(),
    }
    uow.publish(Event(member.tenant_id, LOGIN_CODE_EVENT, payload))
    uow.commit()


def exchange_login_code(
    uow: UnitOfWork,
    *,
    programme_id: str,
    identifier: str,
    code: str,
    lifetime: timedelta,
    server_secret: str = "",
) -> MemberToken:
    """The member token for a right code; the code is used up. A wrong guess counts against
    the code's tries (committed before the refusal); every failure is the same 401
    ``invalid_code``, whether the member, the code, or a try was missing."""
    member = _member(uow, programme_id, login_reference(identifier))
    if member is None:
        raise _invalid_code()
    now = uow.now()
    counted = uow.conn.execute(
        update(member_login_codes)
        .where(
            _CODES.member_id == member.id,
            _CODES.attempts < LOGIN_CODE_TRIES,
            _CODES.expires_at > now,
        )
        .values(attempts=_CODES.attempts + 1)
    )
    if counted.rowcount != 1:
        raise _invalid_code()
    stored = uow.conn.execute(
        select(_CODES.code_hash).where(_CODES.member_id == member.id)
    ).scalar_one()
    key = tenant_signing_key(uow, member.tenant_id, server_secret, "code")
    if not login_code_matches(key, member.id, code, stored):
        uow.commit()  # the guess counts
        raise _invalid_code()
    uow.conn.execute(delete(member_login_codes).where(_CODES.member_id == member.id))
    claims = MemberClaims(member.tenant_id, programme_id, member.id, now + lifetime, new_token_id())
    key = tenant_signing_key(uow, member.tenant_id, server_secret, "member")
    uow.commit()
    return MemberToken(encode_member_token(key, claims, now), claims)


def authenticate_member(
    uow: UnitOfWork, token: str, *, tenant_id: str, server_secret: str = ""
) -> Principal:
    """The member a token stands for, if it is valid and the member can still log in."""
    key = tenant_signing_key(uow, tenant_id, server_secret, "member")
    claims = decode_member_token(token, key, uow.now())
    try:
        member = get_member(uow, claims.member_id, tenant_id=claims.tenant_id)
    except NotFound:
        raise _unauthenticated() from None
    if member.status not in _CAN_LOG_IN or member.programme_id != claims.programme_id:
        raise _unauthenticated()
    return Principal(
        member.id,
        member.tenant_id,
        None,
        programme_id=member.programme_id,
        member_id=member.id,
        widget=claims.widget,
    )


def issue_member_token(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    lifetime: timedelta,
    widget: bool = True,
    server_secret: str = "",
) -> MemberToken:
    """A member token without a login code: a shop's backend asks for one server to server
    (its customer is logged in at the shop) and puts it in the page for the widget. A widget
    token only reads (``WIDGET_PERMISSIONS``). A member who cannot log in gets none."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    if member.status not in _CAN_LOG_IN:
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")
    now = uow.now()
    claims = MemberClaims(
        tenant_id, member.programme_id, member.id, now + lifetime, new_token_id(), widget=widget
    )
    key = tenant_signing_key(uow, tenant_id, server_secret, "member")
    return MemberToken(encode_member_token(key, claims, now), claims)


def issue_qr_token(
    uow: UnitOfWork, *, tenant_id: str, member_id: str, server_secret: str = ""
) -> QrToken:
    """What the portal shows for the till to scan, valid 30 to 60 seconds."""
    key = tenant_signing_key(uow, tenant_id, server_secret, "qr")
    return make_qr_token(key, member_id, uow.now())


def member_id_of_qr_token(
    uow: UnitOfWork, *, tenant_id: str, token: str, server_secret: str = ""
) -> str:
    """The member a scanned QR token names; ``invalid_token`` (422) if it is not this tenant's,
    tampered or expired."""
    key = tenant_signing_key(uow, tenant_id, server_secret, "qr")
    return verify_qr_token(token, key, uow.now())


def _member(uow: UnitOfWork, programme_id: str, reference: str) -> Member | None:
    try:
        member = find_member(uow, programme_id=programme_id, reference=reference)
    except NotFound:
        return None
    return member if member.status in _CAN_LOG_IN else None


def tenant_signing_key(uow: UnitOfWork, tenant_id: str, server_secret: str, purpose: str) -> bytes:
    """The tenant's key for ``purpose``; an unknown tenant (named by a forged token) is
    ``unauthenticated``, not a server error."""
    try:
        secret = tenant_secret(uow, tenant_id)
    except NoResultFound:
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "invalid token") from None
    return signing_key(secret, server_secret, purpose)


def _invalid_code() -> Unauthenticated:
    return Unauthenticated(
        ErrorCode.INVALID_CODE, "wrong or expired code, or no tries left: request a new code"
    )


def _unauthenticated() -> Unauthenticated:
    return Unauthenticated(ErrorCode.UNAUTHENTICATED, "invalid token")
