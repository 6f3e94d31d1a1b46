"""Staff users log in (for the web console to come): a session token whose rights follow the
user's role (owner ≈ an admin key, manager ≈ admin without API keys, cashier ≈ a pos key)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from treu.api.deps import Rt, public
from treu.api.ratelimit import check_login
from treu.api.schemas import StaffLoginCreate, StaffSessionRead
from treu.auth.staff import log_in_staff
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/staff", tags=["staff"])


@router.post("/login", dependencies=[public()])
def login(rt: Rt, request: Request, body: StaffLoginCreate) -> StaffSessionRead:
    """A staff session (8 hours) for the right e-mail and password; anything else is 401
    ``unauthenticated``, the same answer for an unknown user as for a wrong password."""
    check_login(request, "staff_logins", f"{body.tenant}/{body.email}")

    def go(uow: UnitOfWork) -> StaffSessionRead:
        session = log_in_staff(
            uow,
            tenant_key=body.tenant,
            email=body.email,
            password=body.password,
            server_secret=rt.secret,
        )
        return StaffSessionRead(
            token=session.token,
            staff_user_id=session.user.id,
            role=session.user.role.value,
            expires_at=session.claims.expires_at,
        )

    return rt.write(go)
