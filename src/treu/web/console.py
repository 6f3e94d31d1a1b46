"""The staff console: ``/console/<tenant>/…``, for owners, managers and cashiers.

Staff log in with their password (``treu.auth.staff``); the session token sits in an HttpOnly
cookie scoped to the tenant's console, and the role is read again on every request, so a
demoted user loses the old rights at once. Each page names the :class:`Permission` it needs,
from the same policy the API uses (``ROLE_PERMISSIONS``): a cashier gets the till and nothing
that changes the programme.

- ``/<programme>/till`` — scan or type the member's code, see the summary, record a purchase,
  redeem a reward or use a voucher: big buttons, a few seconds per customer.
- ``/<programme>/members`` — find a member by any identifier; profile, balances, history with
  its reasons, vouchers, tier history, message log; adjustments with a mandatory reason; block
  and unblock (export and erasure: ``console_privacy``).
- ``/<programme>/document`` — the programme document: download, upload or paste, validated
  with every error named by its field, and nothing saved unless all of it is valid.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from treu.activities.model import PurchaseIn
from treu.activities.service import ActivityResult, record_purchase
from treu.api.deps import Runtime
from treu.api.queries import ProgrammeRow, programmes_of
from treu.api.ratelimit import check_login
from treu.audit.model import AuditAction
from treu.audit.service import record_on_commit
from treu.auth.member_login import member_id_of_qr_token
from treu.auth.model import Permission, Principal
from treu.auth.staff import authenticate_staff, log_in_staff
from treu.auth.tokens import STAFF_SESSION, is_qr_token
from treu.errors import ErrorCode, InvalidInput, NotFound, TreuError, Unauthenticated
from treu.ledger.service import adjust_points
from treu.members.model import Member
from treu.members.service import find_member, get_member, set_blocked
from treu.programmes.model import Programme
from treu.programmes.service import (
    ApplyResult,
    apply_programme,
    find_programme_id,
    find_tenant,
    load_programme,
)
from treu.rewards.service import RedemptionResult, consume_voucher, get_voucher, redeem_reward
from treu.storage.uow import UnitOfWork
from treu.web import console_views
from treu.web import portal_views as views
from treu.web.context import (
    LoginRequired,
    NotAllowed,
    Page,
    PageNotFound,
    csrf_key,
    runtime_of,
)
from treu.web.forms import Form
from treu.web.i18n import Formats, language_of
from treu.web.messages import field_errors, message_for
from treu.web.security import (
    CSRF_COOKIE,
    LANG_COOKIE,
    check_csrf,
    clear_cookie,
    safe_next,
    set_cookie,
)

router = APIRouter(prefix="/console/{tenant}", include_in_schema=False)

SESSION_COOKIE = "treu_staff"
P = Permission


@dataclass
class Console:
    rt: Runtime
    page: Page
    tenant_key: str
    tenant_id: str
    staff: Principal | None
    programme: Programme | None = None

    @property
    def prefix(self) -> str:
        return self.page.prefix

    @property
    def fmt(self) -> Formats:
        return self.page.fmt

    @property
    def who(self) -> Principal:
        if self.staff is None:
            raise LoginRequired(f"{self.prefix}/login", SESSION_COOKIE, self.prefix)
        return self.staff

    @property
    def here(self) -> str:
        """The programme's pages: ``/console/<tenant>/<programme>``."""
        assert self.programme is not None
        return f"{self.prefix}/{self.programme.document.key}"

    def need(self, permission: Permission) -> None:
        if not self.who.allows(permission):
            raise NotAllowed(self.page.lang)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return self.page.render(template, status, **context)

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def check_csrf(self, form: Form) -> None:
        check_csrf(
            self.page.request,
            self.page.key,
            self.page.session,
            form.get("csrf_token"),
            self.page.lang,
        )

    @property
    def actor(self) -> str:
        return f"staff:{self.who.key_id}"

    def audit(self, uow: UnitOfWork, action: AuditAction, subject: str, **details: Any) -> None:
        """An audit entry written in the commit of the change this request makes (none if
        the change is rejected or was made before): ``treu.audit.service.record_on_commit``."""
        record_on_commit(
            uow,
            tenant_id=self.tenant_id,
            actor=self.actor,
            action=action,
            subject=subject,
            programme_id=self.programme.id if self.programme else None,
            details=details,
        )


def console(request: Request, tenant: str) -> Console:
    rt = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE)

    def go(uow: UnitOfWork) -> tuple[str, bytes, Principal | None]:
        found = find_tenant(uow, tenant)
        if found is None:
            raise PageNotFound
        who = None
        if token:
            try:
                who = authenticate_staff(uow, token, tenant_id=found.id, server_secret=rt.secret)
            except Unauthenticated:
                who = None
        return found.id, csrf_key(uow, rt, found.id), who

    tenant_id, key, who = rt.read(go)
    lang = language_of(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    prefix = f"/console/{tenant}"
    page = Page(request, prefix, lang, Formats(lang, UTC, "EUR"), key, token if who else None)
    page.common.update(staff=who, section="", programme_name=None, programme_key=None)
    return Console(rt, page, tenant, tenant_id, who)


def signed_in(c: Annotated[Console, Depends(console)]) -> Console:
    c.who  # noqa: B018 - raises LoginRequired without a session
    return c


def in_programme(c: Annotated[Console, Depends(signed_in)], programme: str) -> Console:
    def go(uow: UnitOfWork) -> Programme:
        try:
            return load_programme(uow, find_programme_id(uow, tenant_id=c.tenant_id, key=programme))
        except NotFound:
            raise PageNotFound from None

    c.programme = c.rt.read(go)
    doc = c.programme.document
    lang = language_of(
        c.page.request.cookies.get(LANG_COOKIE),
        c.page.request.headers.get("accept-language"),
        doc.locale,
    )
    c.page.lang = lang
    c.page.fmt = Formats(lang, c.programme.tz, doc.currency, doc.point_name)
    c.page.common.update(programme_name=doc.name, programme_key=doc.key)
    return c


Anyone = Annotated[Console, Depends(console)]
Staff = Annotated[Console, Depends(signed_in)]
InProgramme = Annotated[Console, Depends(in_programme)]


# --- logging in ----------------------------------------------------------------------------


@router.get("/login")
def login_form(c: Anyone) -> Response:
    if c.staff is not None:
        return c.redirect(f"{c.prefix}/")
    return c.render("console/login.html", email="", error=None)


@router.post("/login")
def login(c: Anyone, request: Request, form: Form) -> Response:
    c.check_csrf(form)
    email, password = form.text("email"), form.get("password")[:1024]
    try:
        check_login(request, "staff_logins", email)
        session = c.rt.write(
            lambda uow: log_in_staff(
                uow,
                tenant_key=c.tenant_key,
                email=email,
                password=password,
                server_secret=c.rt.secret,
            )
        )
    except TreuError as exc:
        return c.render("console/login.html", 401, email=email, error=message_for(exc, c.fmt))
    except HTTPException:
        error = c.fmt.gettext("Too many attempts. Please wait a minute and try again.")
        return c.render("console/login.html", 429, email=email, error=error)
    response = c.redirect(f"{c.prefix}/")
    max_age = int(STAFF_SESSION.total_seconds())
    set_cookie(response, request, SESSION_COOKIE, session.token, path=c.prefix, max_age=max_age)
    clear_cookie(response, CSRF_COOKIE, path=c.prefix)
    return response


@router.post("/logout")
def logout(c: Anyone, form: Form) -> Response:
    c.check_csrf(form)
    response = c.redirect(f"{c.prefix}/login")
    clear_cookie(response, SESSION_COOKIE, path=c.prefix)
    clear_cookie(response, CSRF_COOKIE, path=c.prefix)
    return response


@router.post("/language")
def language(c: Anyone, request: Request, form: Form) -> Response:
    c.check_csrf(form)
    chosen = language_of(form.get("lang"))
    response = RedirectResponse(safe_next(form.get("next"), c.prefix), status_code=303)
    set_cookie(response, request, LANG_COOKIE, chosen, path="/", max_age=365 * 86400)
    return response


@router.get("/")
def home(c: Staff) -> Response:
    found: list[ProgrammeRow] = c.rt.read(
        lambda uow: programmes_of(uow, tenant_id=c.tenant_id, only=c.who.programme_id)
    )
    return c.render("console/home.html", programmes=found, can=_abilities(c.who))


def _abilities(who: Principal) -> dict[str, bool]:
    return {
        "till": who.allows(P.PURCHASES_WRITE),
        "members": who.allows(P.MEMBERS_READ),
        "document": who.allows(P.PROGRAMMES_WRITE),
    }


# --- the till ------------------------------------------------------------------------------


@router.get("/{programme}/till")
def till(c: InProgramme) -> Response:
    c.need(P.PURCHASES_WRITE)
    return c.render("console/till.html", section="till", error=None, token="")


@router.post("/{programme}/till")
def till_scan(c: InProgramme, form: Form) -> Response:
    """The scanned or typed code: a member QR token, a card number or ``kind:value``."""
    c.check_csrf(form)
    c.need(P.PURCHASES_WRITE)
    token = form.text("token", 400)
    programme = c.programme
    assert programme is not None
    try:
        member = c.rt.read(lambda uow: _scanned(uow, c, programme, token))
    except TreuError as exc:
        return c.render(
            "console/till.html", 422, section="till", error=message_for(exc, c.fmt), token=token
        )
    return c.redirect(f"{c.here}/till/m/{member.id}")


def _scanned(uow: UnitOfWork, c: Console, programme: Programme, token: str) -> Member:
    if not token:
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, "no code")
    if is_qr_token(token):
        reference = member_id_of_qr_token(
            uow, tenant_id=c.tenant_id, token=token, server_secret=c.rt.secret
        )
    elif ":" in token or token.startswith("mbr_"):
        reference = token
    elif "@" in token:
        reference = f"email:{token}"
    else:
        reference = f"card:{token}"
    return find_member(uow, programme_id=programme.id, reference=reference)


def _member(c: Console, member_id: str) -> Member:
    """A member of this programme (another tenant's or programme's: "not found")."""
    programme = c.programme
    assert programme is not None
    try:
        member = c.rt.read(lambda uow: get_member(uow, member_id, tenant_id=c.tenant_id))
    except NotFound:
        raise PageNotFound from None
    if member.programme_id != programme.id:
        raise PageNotFound
    return member


@router.get("/{programme}/till/m/{member_id}")
def till_member(
    c: InProgramme,
    member_id: str,
    earned: Annotated[int | None, Query()] = None,
    used: Annotated[str, Query(max_length=40)] = "",
    redeemed: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    c.need(P.PURCHASES_WRITE)
    return _till_member(c, member_id, earned=earned, used=used, redeemed=redeemed)


def _till_member(
    c: Console, member_id: str, status: int = 200, error: str | None = None, **done: Any
) -> Response:
    member = _member(c, member_id)
    programme = c.programme
    assert programme is not None

    def go(uow: UnitOfWork) -> tuple[views.CardPage, list[views.RewardOption]]:
        card = views.card_page(uow, programme, member, c.fmt)
        return card, views.reward_options(uow, programme, card.balances.available)

    card, options = c.rt.read(go)
    return c.render(
        "console/till_member.html",
        status,
        section="till",
        m=member,
        card=card,
        options=[o for o in options if o.affordable],
        receipt=f"till-{uuid.uuid4().hex[:12]}",
        attempt=secrets.token_urlsafe(12),
        error=error,
        done=done,
        can_redeem=c.who.allows(P.REDEEM),
        can_use=c.who.allows(P.VOUCHERS_USE),
    )


@router.post("/{programme}/till/m/{member_id}/purchase")
def till_purchase(c: InProgramme, member_id: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.PURCHASES_WRITE)
    member = _member(c, member_id)
    programme = c.programme
    assert programme is not None
    receipt = form.text("receipt", 128) or f"till-{uuid.uuid4().hex[:12]}"
    try:
        total = _amount(form.text("total", 20))
        purchase = PurchaseIn(
            external_id=receipt,
            currency=programme.currency,
            total=total,
            store=_pos_store(programme),
            channel="pos",
        )
        # The receipt number is the purchase's external id: sent twice, it counts once.

        def go(uow: UnitOfWork) -> ActivityResult:
            c.audit(
                uow, AuditAction.PURCHASE_RECORDED, member.id, receipt=receipt, total=str(total)
            )
            return record_purchase(
                uow, programme_id=programme.id, purchase=purchase, member=member.id
            )

        result = c.rt.write(go)
    except (TreuError, ValidationError) as exc:
        message = (
            message_for(exc, c.fmt)
            if isinstance(exc, TreuError)
            else c.fmt.gettext("Please enter an amount such as 12.50.")
        )
        return _till_member(c, member.id, 422, error=message)
    return c.redirect(f"{c.here}/till/m/{member.id}?earned={result.points}")


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", ".").replace("€", "").strip())
    except InvalidOperation:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT, "amount", errors=[{"path": "total", "message": "amount"}]
        ) from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT, "amount", errors=[{"path": "total", "message": "amount"}]
        )
    return value


def _pos_store(programme: Programme) -> str | None:
    stores = [s.key for s in programme.document.stores if s.channel == "pos"]
    return stores[0] if len(stores) == 1 else None


@router.post("/{programme}/till/m/{member_id}/vouchers/{code}/use")
def till_use_voucher(c: InProgramme, member_id: str, code: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.VOUCHERS_USE)
    member = _member(c, member_id)
    try:

        def go(uow: UnitOfWork) -> None:
            if get_voucher(uow, tenant_id=c.tenant_id, code=code).member_id != member.id:
                raise NotFound(ErrorCode.VOUCHER_NOT_FOUND, "not this member's voucher")
            c.audit(uow, AuditAction.VOUCHER_CONSUMED, member.id, code=code)
            consume_voucher(uow, tenant_id=c.tenant_id, code=code)

        c.rt.write(go)
    except TreuError as exc:
        return _till_member(c, member.id, 422, error=message_for(exc, c.fmt))
    return c.redirect(f"{c.here}/till/m/{member.id}?used={code}")


@router.post("/{programme}/till/m/{member_id}/rewards/{key}/redeem")
def till_redeem(c: InProgramme, member_id: str, key: str, form: Form) -> Response:
    """Redeem a reward for the member and use its voucher at once (the member is here)."""
    c.check_csrf(form)
    c.need(P.REDEEM)
    member = _member(c, member_id)
    attempt = form.text("attempt", 64) or secrets.token_urlsafe(12)
    try:

        def go(uow: UnitOfWork) -> RedemptionResult:
            c.audit(uow, AuditAction.REWARD_REDEEMED, member.id, reward=key)
            return redeem_reward(
                uow,
                tenant_id=c.tenant_id,
                member_id=member.id,
                reward_key=key,
                idempotency_key=f"console:{member.id}:{attempt}",
            )

        def use(uow: UnitOfWork) -> None:
            code = result.voucher.code
            c.audit(uow, AuditAction.VOUCHER_CONSUMED, member.id, code=code, reward=key)
            consume_voucher(uow, tenant_id=c.tenant_id, code=code)

        result = c.rt.write(go)
        if result.voucher.status.value == "issued":
            c.rt.write(use)
    except TreuError as exc:
        return _till_member(c, member.id, 422, error=message_for(exc, c.fmt))
    return c.redirect(f"{c.here}/till/m/{member.id}?redeemed={result.voucher.reward_name}")


# --- member service ------------------------------------------------------------------------


@router.get("/{programme}/members")
def members(c: InProgramme, q: Annotated[str, Query(max_length=320)] = "") -> Response:
    c.need(P.MEMBERS_READ)
    programme = c.programme
    assert programme is not None
    error = None
    if q.strip():
        try:
            found = c.rt.read(lambda uow: _scanned(uow, c, programme, q.strip()))
        except TreuError as exc:
            error = message_for(exc, c.fmt)
        else:
            return c.redirect(f"{c.here}/members/{found.id}")
    return c.render(
        "console/members.html", 404 if error else 200, section="members", q=q, error=error
    )


@router.get("/{programme}/members/{member_id}")
def member_page(
    c: InProgramme,
    member_id: str,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    erased: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    c.need(P.MEMBERS_READ)
    return _member_page(c, member_id, page=page, erased=erased)


def _member_page(
    c: Console,
    member_id: str,
    status: int = 200,
    *,
    page: int = 1,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    erased: int | None = None,
) -> Response:
    """``erased``: the points the erasure just gave up (the page says so)."""
    member = _member(c, member_id)
    programme = c.programme
    assert programme is not None

    def go(
        uow: UnitOfWork,
    ) -> tuple[
        views.CardPage,
        views.HistoryPage,
        list[console_views.TierLine] | None,
        list[console_views.MessageLine],
    ]:
        return (
            views.card_page(uow, programme, member, c.fmt),
            views.history_page(uow, programme, member, c.fmt, page=page),
            console_views.tier_lines(uow, programme, member, c.fmt),
            console_views.message_lines(uow, member, c.fmt),
        )

    card, history, tiers, messages = c.rt.read(go)
    return c.render(
        "console/member.html",
        status,
        section="members",
        m=member,
        card=card,
        history=history,
        tiers=tiers,
        messages=messages,
        errors=errors or {},
        values=values or {},
        erased=erased,
        attempt=secrets.token_urlsafe(12),
        can_adjust=c.who.allows(P.POINTS_ADJUST),
        can_block=c.who.allows(P.MEMBERS_WRITE),
        can_privacy=c.who.allows(P.MEMBERS_PRIVACY),
    )


@router.post("/{programme}/members/{member_id}/adjust")
def adjust(c: InProgramme, member_id: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.POINTS_ADJUST)
    member = _member(c, member_id)
    values = {"points": form.text("points", 12), "reason": form.text("reason", 500)}
    errors: dict[str, str] = {}
    try:
        points = int(values["points"])
        if points == 0:
            raise ValueError
    except ValueError:
        errors["points"] = c.fmt.gettext("A whole number of points other than 0, e.g. 50 or -20.")
        points = 0
    if not values["reason"]:
        errors["reason"] = c.fmt.gettext("Please give a reason: the member sees it in the history.")
    if errors:
        return _member_page(c, member.id, 422, errors=errors, values=values)
    attempt = form.text("attempt", 64) or secrets.token_urlsafe(12)
    try:

        def go(uow: UnitOfWork) -> None:
            c.audit(
                uow, AuditAction.MEMBER_ADJUSTED, member.id, points=points, reason=values["reason"]
            )
            adjust_points(
                uow,
                tenant_id=c.tenant_id,
                member_id=member.id,
                points=points,
                reason=values["reason"],
                actor=c.actor,
                idempotency_key=f"console:{attempt}",
            )

        c.rt.write(go)
    except TreuError as exc:
        errors = field_errors(exc) or {"points": message_for(exc, c.fmt)}
        return _member_page(c, member.id, 422, errors=errors, values=values)
    return c.redirect(f"{c.here}/members/{member.id}")


@router.post("/{programme}/members/{member_id}/block")
def block(c: InProgramme, member_id: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.MEMBERS_WRITE)
    member = _member(c, member_id)
    blocked = form.get("blocked") == "yes"
    action = AuditAction.MEMBER_BLOCKED if blocked else AuditAction.MEMBER_UNBLOCKED

    def go(uow: UnitOfWork) -> None:
        c.audit(uow, action, member.id)
        set_blocked(uow, tenant_id=c.tenant_id, member_id=member.id, blocked=blocked)

    c.rt.write(go)
    return c.redirect(f"{c.here}/members/{member.id}")


# --- the programme document ----------------------------------------------------------------


@router.get("/{programme}/document")
def document(c: InProgramme) -> Response:
    c.need(P.PROGRAMMES_WRITE)
    return c.render(
        "console/document.html", section="document", text=_yaml(c), errors=[], saved=None
    )


@router.get("/{programme}/document.yaml")
def document_download(c: InProgramme) -> Response:
    c.need(P.PROGRAMMES_READ)
    assert c.programme is not None
    return Response(
        _yaml(c),
        media_type="application/yaml; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{c.programme.document.key}.yaml"',
            "Cache-Control": "no-store",
        },
    )


def _yaml(c: Console) -> str:
    assert c.programme is not None
    return yaml.safe_dump(
        c.programme.document.export(), allow_unicode=True, sort_keys=False, width=100
    )


@router.post("/{programme}/document")
async def document_upload(c: InProgramme, form: Form) -> Response:
    """A whole document, uploaded as a file or pasted: applied as a new revision if it is
    valid, else every error with its field path and nothing saved."""
    c.check_csrf(form)
    c.need(P.PROGRAMMES_WRITE)
    upload = form.files.get("file")
    text = form.get("text")
    if upload is not None and upload.filename:
        raw = await upload.read(1_000_001)
        text = raw[:1_000_000].decode("utf-8", errors="replace")
    return await run_in_threadpool(_apply_text, c, text)


def _apply_text(c: Console, text: str) -> Response:
    programme = c.programme
    assert programme is not None
    errors: list[dict[str, str]] = []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        errors = [
            {
                "path": "",
                "message": c.fmt.gettext("Not valid YAML or JSON: %(problem)s")
                % {"problem": str(exc).splitlines()[0]},
            }
        ]
        data = None
    if not errors and not isinstance(data, dict):
        errors = [{"path": "", "message": c.fmt.gettext("A programme document is a mapping.")}]
    if not errors and data.get("key") != programme.document.key:
        message = c.fmt.gettext("This page edits the programme %(key)s.") % {
            "key": programme.document.key
        }
        errors = [{"path": "key", "message": message}]
    if errors:
        return c.render(
            "console/document.html", 422, section="document", text=text, errors=errors, saved=None
        )
    try:

        def go(uow: UnitOfWork) -> ApplyResult:
            c.audit(uow, AuditAction.PROGRAMME_APPLIED, programme.id, key=programme.document.key)
            return apply_programme(uow, tenant_id=c.tenant_id, document=data)

        result = c.rt.write(go)
    except TreuError as exc:
        found = (exc.details or {}).get("errors") or [{"path": "", "message": exc.message}]
        return c.render(
            "console/document.html", 422, section="document", text=text, errors=found, saved=None
        )
    c.programme = c.rt.read(lambda uow: load_programme(uow, programme.id))
    return c.render(
        "console/document.html", section="document", text=_yaml(c), errors=[], saved=result
    )
