"""Members log in with a one-time code and read their own account (/v1/me): the portal and
widget's API. A member token reaches nothing else."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from treu.api.deps import Rt, Who, member_for, needs, public
from treu.api.pagination import WindowIn
from treu.api.ratelimit import check_login
from treu.api.routers.members import history_page, vouchers_page
from treu.api.schemas import (
    BalancesRead,
    HistoryEntryRead,
    LoginCodeCreate,
    LoginCodeRequested,
    MemberRead,
    MemberTokenCreate,
    MemberTokenRead,
    Page,
    QrTokenRead,
    VoucherRead,
)
from treu.auth.member_login import exchange_login_code, issue_qr_token, request_login_code
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.auth.tokens import LOGIN_CODE_TTL, QR_STEP
from treu.config import get_settings
from treu.errors import ErrorCode, Forbidden, InvalidInput, NotFound
from treu.ledger.service import get_balances
from treu.programmes.service import find_programme_id, get_tenant, load_programme
from treu.storage.uow import UnitOfWork

auth_router = APIRouter(prefix="/v1/member-auth", tags=["member log-in"])
router = APIRouter(prefix="/v1/me", tags=["member portal"])


@auth_router.post("/code", status_code=202, dependencies=[public()])
def request_code(rt: Rt, request: Request, body: LoginCodeCreate) -> LoginCodeRequested:
    """Send the member a one-time code (6 digits, 10 minutes, 5 tries). Answers 202 whether or
    not there is such a member; until e-mails are sent, the code is the ``member.login_code``
    event in the outbox."""
    check_login(request, "member_codes", body.identifier)

    def go(uow: UnitOfWork) -> None:
        programme_id = _programme(uow, body.tenant, body.programme)
        request_login_code(
            uow, programme_id=programme_id, identifier=body.identifier, server_secret=rt.secret
        )

    rt.write(go)
    return LoginCodeRequested(expires_in=int(LOGIN_CODE_TTL.total_seconds()))


@auth_router.post("/token", dependencies=[public()])
def exchange_code(rt: Rt, request: Request, body: MemberTokenCreate) -> MemberTokenRead:
    """The code for a member token (15 to 60 minutes, ``TREU_MEMBER_TOKEN_MINUTES``): send it as
    ``Authorization: Bearer …`` to ``/v1/me``. A wrong, expired or used-up code: 401
    ``invalid_code``."""
    check_login(request, "member_tokens", body.identifier)
    lifetime = timedelta(minutes=get_settings().member_token_minutes)

    def go(uow: UnitOfWork) -> MemberTokenRead:
        issued = exchange_login_code(
            uow,
            programme_id=_programme(uow, body.tenant, body.programme),
            identifier=body.identifier,
            code=body.code,
            lifetime=lifetime,
            server_secret=rt.secret,
        )
        return MemberTokenRead(
            token=issued.token,
            member_id=issued.claims.member_id,
            programme_id=issued.claims.programme_id,
            expires_at=issued.claims.expires_at,
        )

    return rt.write(go)


@router.get("", dependencies=[needs(P.ME_READ)])
def profile(rt: Rt, who: Who) -> MemberRead:
    return rt.read(lambda uow: MemberRead.of(member_for(uow, who, _me(who))))


@router.get("/balances", dependencies=[needs(P.ME_READ)])
def balances(rt: Rt, who: Who) -> BalancesRead:
    def go(uow: UnitOfWork) -> BalancesRead:
        member = member_for(uow, who, _me(who))
        return BalancesRead.of(
            member.id, get_balances(uow, tenant_id=who.tenant_id, member_id=member.id)
        )

    return rt.read(go)


@router.get("/history", dependencies=[needs(P.ME_READ)])
def history(rt: Rt, who: Who, window: WindowIn) -> Page[HistoryEntryRead]:
    return history_page(rt, who, _me(who), window)


@router.get("/vouchers", dependencies=[needs(P.ME_READ)])
def vouchers(rt: Rt, who: Who, window: WindowIn) -> Page[VoucherRead]:
    return vouchers_page(rt, who, _me(who), window)


@router.post("/qr-token", dependencies=[needs(P.ME_QR_TOKEN)])
def qr_token(rt: Rt, who: Who) -> QrTokenRead:
    """A QR token for the till to scan, valid 30 to 60 seconds: fetch a fresh one every
    ``refresh_in`` seconds while it is shown."""

    def go(uow: UnitOfWork) -> QrTokenRead:
        member = member_for(uow, who, _me(who))
        made = issue_qr_token(
            uow, tenant_id=who.tenant_id, member_id=member.id, server_secret=rt.secret
        )
        return QrTokenRead(token=made.token, expires_at=made.expires_at, refresh_in=QR_STEP)

    return rt.read(go)


def _me(who: Principal) -> str:
    if who.member_id is None:  # needs(P.ME_…) lets only members in; this keeps it so
        raise Forbidden(ErrorCode.FORBIDDEN, "only a member token has a /v1/me")
    return who.member_id


def _programme(uow: UnitOfWork, tenant: str | None, programme: str) -> str:
    """A programme by id (``prg_…``), or by key within the tenant named by its key."""
    if programme.startswith("prg_"):
        found = load_programme(uow, programme)
        if tenant is not None and get_tenant(uow, tenant).id != found.tenant_id:
            raise NotFound(ErrorCode.PROGRAMME_NOT_FOUND, f"no programme {programme!r}")
        return found.id
    if tenant is None:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "name the tenant of a programme key (or send the programme id)",
            errors=[{"path": "tenant", "message": "required with a programme key"}],
        )
    return find_programme_id(uow, tenant_id=get_tenant(uow, tenant).id, key=programme)
