"""The member portal: ``/portal/<tenant>/<programme>/…``, server-rendered, mobile first.

A member logs in with a one-time code (``treu.auth.member_login``) and keeps the member token
in an HttpOnly cookie scoped to this portal's path. Every page reads through the services;
every form POSTs with a CSRF token (``treu.web.security``). Routes stay thin: resolve, call
one service, render or redirect (POST → 303 → GET, so a reload never sends a form twice).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from treu.api.deps import Runtime
from treu.api.ratelimit import check_login
from treu.auth.member_login import (
    authenticate_member,
    exchange_login_code,
    issue_qr_token,
    request_login_code,
)
from treu.auth.tokens import QR_STEP
from treu.config import get_settings
from treu.errors import ErrorCode, NotFound, TreuError, Unauthenticated
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind, Member, MemberStatus
from treu.members.service import get_member, record_consent, update_profile
from treu.privacy.service import erase_member, export_member
from treu.programmes.model import Programme
from treu.programmes.service import find_programme_id, find_tenant, load_programme
from treu.referrals.service import ReferralCard, referral_card
from treu.rewards.service import list_vouchers, redeem_reward
from treu.storage.uow import UnitOfWork
from treu.web import passes
from treu.web import portal_views as views
from treu.web.context import LoginRequired, Page, PageNotFound, csrf_key, runtime_of
from treu.web.forms import Form
from treu.web.i18n import Formats, language_of
from treu.web.messages import message_for
from treu.web.qr import qr_svg
from treu.web.security import (
    CSRF_COOKIE,
    LANG_COOKIE,
    check_csrf,
    clear_cookie,
    safe_next,
    set_cookie,
)

router = APIRouter(prefix="/portal/{tenant}/{programme}", include_in_schema=False)

SESSION_COOKIE = "treu_member"
_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass
class Portal:
    """One request to one programme's portal: who, where, in which language."""

    rt: Runtime
    page: Page
    tenant_key: str
    programme: Programme
    member: Member | None

    @property
    def prefix(self) -> str:
        return self.page.prefix

    @property
    def fmt(self) -> Formats:
        return self.page.fmt

    @property
    def me(self) -> Member:
        if self.member is None:  # the routes that need a member depend on `member_portal`
            raise LoginRequired(f"{self.prefix}/login", SESSION_COOKIE, self.prefix)
        return self.member

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return self.page.render(template, status, **context)

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(self.prefix + path, status_code=303)

    def check_csrf(self, submitted: str | None) -> None:
        check_csrf(self.page.request, self.page.key, self.page.session, submitted, self.page.lang)


def portal(request: Request, tenant: str, programme: str) -> Portal:
    rt = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE)

    def go(uow: UnitOfWork) -> tuple[Programme, bytes, Member | None]:
        found = find_tenant(uow, tenant)
        if found is None:
            raise PageNotFound
        try:
            loaded = load_programme(uow, find_programme_id(uow, tenant_id=found.id, key=programme))
        except NotFound:
            raise PageNotFound from None
        member = None
        if token:
            try:
                who = authenticate_member(uow, token, tenant_id=found.id, server_secret=rt.secret)
                if who.programme_id == loaded.id and who.member_id is not None:
                    member = get_member(uow, who.member_id, tenant_id=found.id)
            except (Unauthenticated, NotFound):
                member = None
        return loaded, csrf_key(uow, rt, found.id), member

    loaded, key, member = rt.read(go)
    doc = loaded.document
    lang = language_of(
        request.cookies.get(LANG_COOKIE), member.locale if member else None, doc.locale
    )
    fmt = Formats(lang, loaded.tz, doc.currency, doc.point_name)
    prefix = f"/portal/{tenant}/{programme}"
    session = token if member is not None else None
    page = Page(request, prefix, lang, fmt, key, session)
    page.common.update(programme_name=doc.name, member=member, section="")
    return Portal(rt, page, tenant, loaded, member)


def member_portal(p: Annotated[Portal, Depends(portal)]) -> Portal:
    p.me  # noqa: B018 - raises LoginRequired without a member
    return p


Anyone = Annotated[Portal, Depends(portal)]
Signed = Annotated[Portal, Depends(member_portal)]


# --- logging in ----------------------------------------------------------------------------


@router.get("/login")
def login_form(p: Anyone) -> Response:
    if p.member is not None:
        return p.redirect("/")
    return p.render("portal/login.html", step="identifier", identifier="", error=None)


@router.post("/login")
def login_request(p: Anyone, request: Request, form: Form) -> Response:
    p.check_csrf(form.get("csrf_token"))
    identifier = form.text("identifier")
    try:
        check_login(request, "member_codes", identifier)
        p.rt.write(
            lambda uow: request_login_code(
                uow,
                programme_id=p.programme.id,
                identifier=identifier,
                server_secret=p.rt.secret,
            )
        )
    except TreuError as exc:
        error = message_for(exc, p.fmt)
        return p.render(
            "portal/login.html", 422, step="identifier", identifier=identifier, error=error
        )
    except HTTPException as exc:  # rate limited
        return _too_many(p, exc, identifier, "identifier")
    # The same answer whether or not there is such a member: nobody learns who is one.
    return p.render("portal/login.html", step="code", identifier=identifier, error=None)


@router.get("/join")
def join_form(p: Anyone, ref: Annotated[str, Query(max_length=64)] = "") -> Response:
    """Sign up: a guest becomes a member with their e-mail address (the shop widget's and the
    referral link's destination); ``ref`` pre-fills a friend's referral code."""
    if p.member is not None:
        return p.redirect("/")
    return p.render("portal/join.html", values={"referral_code": ref}, errors={})


@router.post("/join")
def join(p: Anyone, request: Request, form: Form) -> Response:
    """Enrol, then send the log-in code to the address: entering it proves the address and
    logs the new member in. An address that is a member already gets the same answer and a
    code (nobody learns who is a member)."""
    p.check_csrf(form.get("csrf_token"))
    values = {
        "email": form.text("email"),
        "name": form.text("name", 200),
        "referral_code": form.text("referral_code", 64),
        "marketing": form.get("marketing"),
    }
    errors: dict[str, str] = {}
    if not values["email"]:
        errors["email"] = p.fmt.gettext("Please enter your e-mail address.")
    if not form.get("terms"):
        errors["terms"] = p.fmt.gettext("Please accept the programme's terms to join.")
    if errors:
        return p.render("portal/join.html", 422, values=values, errors=errors)
    try:
        check_login(request, "member_codes", values["email"])
        p.rt.write(
            lambda uow: enrol_member(
                uow,
                programme_id=p.programme.id,
                identifiers_={IdentifierKind.EMAIL: values["email"]},
                name=values["name"] or None,
                locale=p.page.lang,
                consents_={Channel.EMAIL: True} if values["marketing"] else None,
                source="portal",
                referral_code=values["referral_code"] or None,
                client_address=request.client.host if request.client else None,
            )
        )
    except TreuError as exc:
        if exc.code is not ErrorCode.DUPLICATE_IDENTIFIER:
            field = "referral_code" if "referral" in exc.code else "email"
            errors[field] = message_for(exc, p.fmt)
            return p.render("portal/join.html", 422, values=values, errors=errors)
    except HTTPException as exc:  # rate limited
        return _too_many(p, exc, values["email"], "identifier")
    p.rt.write(
        lambda uow: request_login_code(
            uow,
            programme_id=p.programme.id,
            identifier=values["email"],
            server_secret=p.rt.secret,
        )
    )
    return p.render("portal/login.html", step="code", identifier=values["email"], error=None)


@router.post("/login/code")
def login_code(p: Anyone, request: Request, form: Form) -> Response:
    p.check_csrf(form.get("csrf_token"))
    identifier, code = form.text("identifier"), form.text("code", 12)
    lifetime = timedelta(minutes=get_settings().member_token_minutes)
    try:
        check_login(request, "member_tokens", identifier)
        issued = p.rt.write(
            lambda uow: exchange_login_code(
                uow,
                programme_id=p.programme.id,
                identifier=identifier,
                code=code,
                lifetime=lifetime,
                server_secret=p.rt.secret,
            )
        )
    except TreuError as exc:
        error = message_for(exc, p.fmt)
        return p.render("portal/login.html", 401, step="code", identifier=identifier, error=error)
    except HTTPException as exc:
        return _too_many(p, exc, identifier, "code")
    response = p.redirect("/")
    max_age = int(lifetime.total_seconds())
    set_cookie(response, request, SESSION_COOKIE, issued.token, path=p.prefix, max_age=max_age)
    clear_cookie(response, CSRF_COOKIE, path=p.prefix)  # bound to no session: make a new one
    return response


def _too_many(p: Portal, exc: HTTPException, identifier: str, step: str) -> Response:
    error = p.fmt.gettext("Too many attempts. Please wait a minute and try again.")
    response = p.render("portal/login.html", 429, step=step, identifier=identifier, error=error)
    response.headers["Retry-After"] = (exc.headers or {}).get("Retry-After", "60")
    return response


@router.post("/logout")
def logout(p: Anyone, form: Form) -> Response:
    p.check_csrf(form.get("csrf_token"))
    response = p.redirect("/login")
    clear_cookie(response, SESSION_COOKIE, path=p.prefix)
    clear_cookie(response, CSRF_COOKIE, path=p.prefix)
    return response


@router.post("/language")
def language(p: Anyone, request: Request, form: Form) -> Response:
    """Switch the language: remembered in a cookie, and as the member's locale (so messages
    and the next device follow it)."""
    p.check_csrf(form.get("csrf_token"))
    chosen = language_of(form.get("lang"))
    if p.member is not None and p.member.status is MemberStatus.ACTIVE:
        me = p.member
        p.rt.write(
            lambda uow: _set_locale(uow, me, chosen),
        )
    response = RedirectResponse(safe_next(form.get("next"), p.prefix), status_code=303)
    set_cookie(response, request, LANG_COOKIE, chosen, path="/", max_age=365 * 86400)
    return response


def _set_locale(uow: UnitOfWork, member: Member, lang: str) -> None:
    update_profile(uow, tenant_id=member.tenant_id, member_id=member.id, locale=lang)
    uow.commit()


# --- the card ------------------------------------------------------------------------------


@router.get("/")
def card(p: Signed) -> Response:
    me = p.me
    page = p.rt.read(lambda uow: views.card_page(uow, p.programme, me, p.fmt))
    qr = _qr(p)
    wallets = passes.offered(get_settings())
    return p.render("portal/card.html", section="card", card=page, qr=qr, wallets=wallets)


@router.get("/wallet/apple.pkpass")
def apple_wallet(p: Signed) -> Response:
    """The member's card as an Apple Wallet pass (404 while TREU_PKPASS_* are unset)."""
    signer = passes.AppleSigner.from_settings(get_settings())
    if signer is None:
        raise PageNotFound
    body = passes.apple_pass(signer, _face(p))
    name = p.programme.document.key
    return Response(
        body,
        media_type=passes.PKPASS_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.pkpass"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/wallet/google")
def google_wallet(p: Signed, request: Request) -> Response:
    """On to Google's "save" page with the member's card (404 while TREU_GOOGLE_WALLET_* are
    unset)."""
    signer = passes.GoogleSigner.from_settings(get_settings())
    if signer is None:
        raise PageNotFound
    origin = f"{request.url.scheme}://{request.url.netloc}"
    link = passes.google_save_link(signer, _face(p), now=p.rt.clock.now(), origin=origin)
    return RedirectResponse(link, status_code=303)


def _face(p: Portal) -> passes.CardFace:
    me = p.me
    page = p.rt.read(lambda uow: views.card_page(uow, p.programme, me, p.fmt))
    return passes.CardFace(
        programme=p.programme,
        member=me,
        points=page.balances.available,
        tier=page.tier.name if page.tier else None,
        barcode=passes.barcode_of(me),
        points_label=p.fmt.gettext("Points"),
        member_label=p.fmt.gettext("Member"),
        tier_label=p.fmt.gettext("Tier"),
    )


@router.get("/qr")
def qr(p: Anyone) -> Response:
    """A fresh QR token as SVG, for the script that swaps the code before it expires."""
    if p.member is None:
        return JSONResponse({"login": f"{p.prefix}/login"}, status_code=401)
    return JSONResponse(_qr(p), headers={"Cache-Control": "no-store"})


def _qr(p: Portal) -> dict[str, Any]:
    me = p.me
    made = p.rt.read(
        lambda uow: issue_qr_token(
            uow, tenant_id=me.tenant_id, member_id=me.id, server_secret=p.rt.secret
        )
    )
    label = p.fmt.gettext("Your member code for the till")
    return {
        "token": made.token,
        "svg": qr_svg(made.token, label=label),
        "expires_at": made.expires_at.isoformat(),
        "refresh_in": QR_STEP,
    }


# --- rewards and vouchers ------------------------------------------------------------------


@router.get("/rewards")
def rewards(p: Signed) -> Response:
    me = p.me

    def go(uow: UnitOfWork) -> tuple[int, list[views.RewardOption]]:
        available = views.card_page(uow, p.programme, me, p.fmt).balances.available
        return available, views.reward_options(uow, p.programme, available)

    available, options = p.rt.read(go)
    return p.render("portal/rewards.html", section="rewards", available=available, options=options)


@router.get("/rewards/{key}/redeem")
def redeem_confirm(p: Signed, key: str) -> Response:
    option, available = _option(p, key)
    return p.render(
        "portal/redeem.html",
        section="rewards",
        option=option,
        available=available,
        attempt=secrets.token_urlsafe(16),
        error=None,
    )


@router.post("/rewards/{key}/redeem")
def redeem(p: Signed, key: str, form: Form) -> Response:
    p.check_csrf(form.get("csrf_token"))
    attempt = form.get("attempt")
    me = p.me
    option, available = _option(p, key)
    if not _ATTEMPT.match(attempt):
        attempt = secrets.token_urlsafe(16)
    try:
        # The attempt id of the confirmation page: a double tap or a resent form redeems once.
        result = p.rt.write(
            lambda uow: redeem_reward(
                uow,
                tenant_id=me.tenant_id,
                member_id=me.id,
                reward_key=option.key,
                idempotency_key=f"portal:{me.id}:{attempt}",
            )
        )
    except TreuError as exc:
        return p.render(
            "portal/redeem.html",
            422,
            section="rewards",
            option=option,
            available=available,
            attempt=secrets.token_urlsafe(16),
            error=message_for(exc, p.fmt),
        )
    return p.redirect(f"/vouchers/{result.voucher.code}?new=1")


def _option(p: Portal, key: str) -> tuple[views.RewardOption, int]:
    me = p.me

    def go(uow: UnitOfWork) -> tuple[views.RewardOption | None, int]:
        available = views.card_page(uow, p.programme, me, p.fmt).balances.available
        options = views.reward_options(uow, p.programme, available)
        return next((o for o in options if o.key == key), None), available

    option, available = p.rt.read(go)
    if option is None:
        raise PageNotFound
    return option, available


@router.get("/vouchers/{code}")
def voucher(p: Signed, code: str, new: Annotated[int, Query()] = 0) -> Response:
    me = p.me
    mine = p.rt.read(lambda uow: list_vouchers(uow, tenant_id=me.tenant_id, member_id=me.id))
    found = next((v for v in mine if v.code == code), None)
    if found is None:  # another member's code is "not found", like a wrong one
        raise PageNotFound
    label = p.fmt.gettext("Voucher code")
    return p.render(
        "portal/voucher.html",
        section="card",
        voucher=found,
        svg=qr_svg(found.code, label=label),
        new=bool(new),
    )


# --- history -------------------------------------------------------------------------------


@router.get("/history")
def history(p: Signed, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    me = p.me
    found = p.rt.read(lambda uow: views.history_page(uow, p.programme, me, p.fmt, page=page))
    return p.render("portal/history.html", section="history", history=found)


# --- account: status, referral, consents, data, deletion -----------------------------------


CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.POST)


@router.get("/account")
def account(p: Signed, saved: Annotated[int, Query()] = 0) -> Response:
    me = p.me

    def go(uow: UnitOfWork) -> tuple[views.CardPage, ReferralCard | None]:
        page = views.card_page(uow, p.programme, me, p.fmt)
        referral = None
        if p.programme.document.referral is not None and me.status is MemberStatus.ACTIVE:
            referral = referral_card(uow, tenant_id=me.tenant_id, member_id=me.id)
        return page, referral

    page, referral = p.rt.write(go)  # the referral code is made on first sight
    return p.render(
        "portal/account.html",
        section="account",
        card=page,
        referral=referral,
        channels=[c.value for c in CHANNELS],
        consents=me.consents,
        saved=bool(saved),
    )


@router.post("/consents")
def consents(p: Signed, form: Form) -> Response:
    p.check_csrf(form.get("csrf_token"))
    me = p.me
    wanted = {c: form.get(f"consent_{c.value}") == "yes" for c in CHANNELS}
    changed = {c: v for c, v in wanted.items() if me.consents.get(c.value, False) != v}

    for channel, granted in changed.items():  # one use case (and commit) per channel
        p.rt.write(partial(_consent, member=me, channel=channel, granted=granted))
    return p.redirect("/account?saved=1")


def _consent(uow: UnitOfWork, *, member: Member, channel: Channel, granted: bool) -> None:
    record_consent(
        uow,
        tenant_id=member.tenant_id,
        member_id=member.id,
        channel=channel,
        granted=granted,
        source="portal",
    )


@router.get("/export")
def export(p: Signed) -> Response:
    """Everything held about the member, as a JSON file to keep (GDPR art. 15 and 20)."""
    me = p.me
    data = p.rt.read(lambda uow: export_member(uow, tenant_id=me.tenant_id, member_id=me.id))
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="treu-{me.id}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/delete")
def delete_confirm(p: Signed) -> Response:
    return p.render("portal/delete.html", section="account", error=None)


@router.post("/delete")
def delete(p: Signed, form: Form) -> Response:
    p.check_csrf(form.get("csrf_token"))
    me = p.me
    if form.get("confirm") != "yes":
        error = p.fmt.gettext("Please tick the box to confirm.")
        return p.render("portal/delete.html", 422, section="account", error=error)
    p.rt.write(
        lambda uow: erase_member(
            uow, tenant_id=me.tenant_id, member_id=me.id, actor="member:portal"
        )
    )
    p.page.common["member"] = None
    response = p.render("portal/deleted.html")
    clear_cookie(response, SESSION_COOKIE, path=p.prefix)
    return response
