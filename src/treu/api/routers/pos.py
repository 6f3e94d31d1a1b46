"""Resources made for the till: one call per thing a cashier does."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from treu.api.deps import Rt, Runtime, Who, needs, programme_id_for
from treu.api.ratelimit import rate_limited
from treu.api.schemas import BalancesRead, MemberSummaryRead, PosScanCreate, VoucherRead
from treu.auth.member_login import member_id_of_qr_token
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.auth.tokens import is_qr_token
from treu.errors import ErrorCode, InvalidInput
from treu.ledger.service import get_balances
from treu.members.service import find_member
from treu.rewards.model import VoucherStatus
from treu.rewards.service import list_vouchers
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/pos", tags=["pos"])


@router.post("/scan", dependencies=[needs(P.POS_SCAN), rate_limited("scans")])
def scan(rt: Rt, who: Who, body: PosScanCreate) -> MemberSummaryRead:
    """The member behind a scanned card number, ``kind:value`` or member QR token (from the
    portal, ``tqr1.…``; expired or tampered: 422 ``invalid_token``): name, status, balances and
    the vouchers usable now. Changes nothing."""

    def go(uow: UnitOfWork) -> MemberSummaryRead:
        programme_id = _programme(uow, who, body.programme)
        reference = _reference(uow, rt, who, body.token)
        member = find_member(uow, programme_id=programme_id, reference=reference)
        balances = get_balances(uow, tenant_id=who.tenant_id, member_id=member.id)
        now = uow.now()
        usable = [
            v
            for v in list_vouchers(uow, tenant_id=who.tenant_id, member_id=member.id)
            if v.status is VoucherStatus.ISSUED and (v.expires_at is None or now < v.expires_at)
        ]
        usable.sort(key=lambda v: (v.expires_at or datetime.max.replace(tzinfo=UTC), v.id))
        return MemberSummaryRead(
            member_id=member.id,
            programme_id=member.programme_id,
            name=member.name,
            status=member.status.value,
            balances=BalancesRead.of(member.id, balances),
            vouchers=[VoucherRead.of(v) for v in usable],
        )

    return rt.read(go)


def _programme(uow: UnitOfWork, who: Principal, key: str | None) -> str:
    if key is not None:
        return programme_id_for(uow, who, key)
    if who.programme_id is not None:  # a till's key: its store's programme
        return who.programme_id
    raise InvalidInput(
        ErrorCode.VALIDATION_ERROR,
        "this key is not bound to a store: name the programme",
        errors=[{"path": "programme", "message": "required for a key without a store"}],
    )


def _reference(uow: UnitOfWork, rt: Runtime, who: Principal, token: str) -> str:
    """A QR token from the member portal names its member (once its signature and time step
    check out); a printed card carries its number only; anything else says what it is
    (``kind:value``)."""
    token = token.strip()
    if is_qr_token(token):
        return member_id_of_qr_token(
            uow, tenant_id=who.tenant_id, token=token, server_secret=rt.secret
        )
    return token if ":" in token else f"card:{token}"
