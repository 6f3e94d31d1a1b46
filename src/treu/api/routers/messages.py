"""Messages: a member's message log and consents, templates and previews, bounces reported
by the mail provider, and the public pages behind the links in e-mails (confirm a double
opt-in, unsubscribe — RFC 8058 one-click)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from treu.api.deps import Rt, Who, member_for, needs, programme_id_for, public
from treu.api.pagination import Limit, StartingAfter, page
from treu.api.schemas import Page
from treu.api.schemas_messages import (
    BounceCreate,
    ConsentCreate,
    ConsentRecordRead,
    ConsentStateRead,
    LinkRead,
    MessageRead,
    SuppressionRead,
    TemplatePreviewCreate,
    TemplatePreviewRead,
    TemplateRead,
)
from treu.auth.model import Permission as P
from treu.errors import ErrorCode, InvalidInput, NotFound, TreuError
from treu.members.model import Member
from treu.members.service import consent_history, find_member
from treu.messaging import consent, tokens
from treu.messaging.consent import LinkResult
from treu.messaging.model import MessageChannel, TemplateDef
from treu.messaging.pages import Page as PageName
from treu.messaging.pages import link_page
from treu.messaging.service import (
    list_messages,
    list_templates,
    preview_template,
    report_suppression,
)
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork

router = APIRouter(tags=["messages"])

_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "a page, for a browser"}
}


@router.get("/v1/members/{member_id}/messages", dependencies=[needs(P.MEMBERS_READ)])
def messages_of(
    rt: Rt, who: Who, member_id: str, limit: Limit = 20, starting_after: StartingAfter = None
) -> Page[MessageRead]:
    """The member's message log, oldest first: every message queued for them with its status
    (queued, sending, sent, failed, suppressed and why), what it said, and when it went."""

    def go(uow: UnitOfWork) -> list[MessageRead]:
        member_for(uow, who, member_id)
        found = list_messages(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            starting_after=starting_after,
            limit=limit + 1,
        )
        return [MessageRead.of(m) for m in found]

    return page(rt.read(go), limit=limit, id_of=lambda m: m.id)


@router.get("/v1/members/{member_id}/consents", dependencies=[needs(P.MEMBERS_READ)])
def consents_of(rt: Rt, who: Who, member_id: str) -> list[ConsentRecordRead]:
    """Every consent decision of the member, oldest first, with its evidence."""

    def go(uow: UnitOfWork) -> list[ConsentRecordRead]:
        member_for(uow, who, member_id)
        found = consent_history(uow, tenant_id=who.tenant_id, member_id=member_id)
        return [ConsentRecordRead.of(c) for c in found]

    return rt.read(go)


@router.post("/v1/members/{member_id}/consents", dependencies=[needs(P.MEMBERS_WRITE)])
def record_consent(rt: Rt, who: Who, member_id: str, body: ConsentCreate) -> ConsentStateRead:
    """Record a consent decision. E-mail consent under double opt-in is ``pending`` until the
    member opens the link of the confirmation e-mail queued now; the same decision again
    changes nothing."""

    def go(uow: UnitOfWork) -> ConsentStateRead:
        member = member_for(uow, who, member_id)
        state = consent.set_consent(
            uow,
            load_programme(uow, member.programme_id),
            member_id=member_id,
            channel=body.channel,
            granted=body.granted,
            source=body.source,
            text_version=body.text_version,
        )
        return ConsentStateRead.of(state)

    return rt.write(go)


@router.get("/v1/programmes/{programme}/templates", dependencies=[needs(P.PROGRAMMES_READ)])
def templates(rt: Rt, who: Who, programme: str) -> list[TemplateRead]:
    """Every template the programme can send: the built-ins (German and English) and its
    own (``templates:`` in the document), which replace built-ins of the same key."""

    def go(uow: UnitOfWork) -> list[TemplateRead]:
        found = list_templates(load_programme(uow, programme_id_for(uow, who, programme)))
        return [TemplateRead.of(t, own) for t, own in found]

    return rt.read(go)


@router.post("/v1/templates/preview", dependencies=[needs(P.PROGRAMMES_WRITE)])
def preview(rt: Rt, who: Who, body: TemplatePreviewCreate) -> TemplatePreviewRead:
    """Render a template for a member — a key (built-in or the programme's) or a template
    written out in ``definition`` — with their personal content, without sending anything.
    A template that does not render is 422 ``template_error`` with the reason."""

    def go(uow: UnitOfWork) -> TemplatePreviewRead:
        member = _member(uow, who, body.member, body.programme)
        definition = _definition(body.definition) if body.definition is not None else None
        found = preview_template(
            uow,
            load_programme(uow, member.programme_id),
            member_id=member.id,
            template=body.template,
            definition=definition,
            context=body.context,
            kind=body.kind,
        )
        return TemplatePreviewRead.of(found, _plain(found.context))

    return rt.read(go)


def _member(uow: UnitOfWork, who: Who, reference: str, programme: str | None) -> Member:
    """The member the body names; one that is not there is a mistake in the body (422)."""
    try:
        return _find(uow, who, reference, programme)
    except NotFound as exc:
        if exc.code is not ErrorCode.MEMBER_NOT_FOUND:
            raise
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"member: {exc.message}",
            errors=[{"path": "member", "message": exc.message}],
        ) from None


def _find(uow: UnitOfWork, who: Who, reference: str, programme: str | None) -> Member:
    if programme is not None:
        pid = programme_id_for(uow, who, programme)
        return member_for(uow, who, find_member(uow, programme_id=pid, reference=reference).id)
    if not reference.startswith("mbr_"):
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "programme: needed to find a member by kind:value",
            errors=[{"path": "programme", "message": "needed with a kind:value member"}],
        )
    return member_for(uow, who, reference)


def _definition(data: dict[str, Any]) -> TemplateDef:
    try:
        return TemplateDef.model_validate({"key": "preview", **data})
    except ValidationError as exc:
        errors = [
            {"path": ".".join(str(p) for p in e["loc"]) or "definition", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise InvalidInput(
            ErrorCode.TEMPLATE_ERROR,
            f"the template does not work: {errors[0]['message']}",
            errors=[{**e, "path": f"definition.{e['path']}".rstrip(".")} for e in errors],
        ) from None


def _plain(value: Any) -> Any:
    """The context as JSON: amounts as decimal strings (never floats), days as ISO dates."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@router.post("/v1/messages/bounces", status_code=201, dependencies=[needs(P.MEMBERS_WRITE)])
def report_bounce(rt: Rt, who: Who, body: BounceCreate) -> SuppressionRead:
    """The mail (or SMS) provider reports a bounce, a spam complaint or an unsubscription: a
    bounced address gets nothing any more, the others no marketing. Reporting again changes
    nothing (a bounce replaces a milder reason)."""

    def go(uow: UnitOfWork) -> SuppressionRead:
        found = report_suppression(
            uow,
            tenant_id=who.tenant_id,
            channel=MessageChannel(body.channel),
            address=body.address,
            reason=body.reason,
            detail=body.detail,
        )
        return SuppressionRead.of(found)

    return rt.write(go)


# --- the public links (the token is the authority) ----------------------------------------------


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _link(
    rt: Rt,
    request: Request,
    token: str,
    action: Literal["confirm", "unsubscribe"],
    use: Callable[[UnitOfWork], LinkResult] | None,
) -> Response | LinkRead:
    """Show (``use`` None) or use a link; a browser gets a page, anyone else JSON."""
    purpose = tokens.CONFIRM if action == "confirm" else tokens.UNSUBSCRIBE
    html = _wants_html(request)
    try:
        if use is None:
            result = rt.read(lambda uow: consent.link_details(uow, token, purpose))
        else:
            result = rt.write(use)
    except TreuError as exc:
        if not html or exc.code not in (ErrorCode.INVALID_TOKEN, ErrorCode.MEMBER_NOT_FOUND):
            raise
        body = link_page(
            "invalid", language=request.headers.get("accept-language", "de"), programme_name=""
        )
        return HTMLResponse(body, status_code=400)
    if not html:
        return LinkRead.of(result, action, result.done)
    shown: PageName = f"{action}_done" if (use is not None or result.done) else f"{action}_ask"  # type: ignore[assignment]
    body = link_page(
        shown,
        language=result.language,
        programme_name=result.programme_name,
        channel=result.channel,
        action=request.url.path,
    )
    return HTMLResponse(body)


def _client(request: Request) -> tuple[str | None, str | None]:
    return (request.client.host if request.client else None), request.headers.get("user-agent")


@router.get("/v1/consents/confirm/{token}", dependencies=[public()], responses=_HTML)
def confirm_page(rt: Rt, request: Request, token: str) -> Any:
    """The link in the double opt-in e-mail. A browser gets a page with a button (which POSTs:
    mail scanners open links, they must not confirm); anyone else what the link is for."""
    return _link(rt, request, token, "confirm", None)


@router.post("/v1/consents/confirm/{token}", dependencies=[public()], responses=_HTML)
def confirm(rt: Rt, request: Request, token: str) -> Any:
    """Confirm the e-mail consent the link is for, recording when, from which address and user
    agent (the evidence). Confirming again changes nothing; an expired link or one for a
    consent since replaced is 422 ``invalid_token``."""
    address, agent = _client(request)
    return _link(
        rt,
        request,
        token,
        "confirm",
        lambda uow: consent.confirm_consent(uow, token, address=address, user_agent=agent),
    )


@router.get("/v1/unsubscribe/{token}", dependencies=[public()], responses=_HTML)
def unsubscribe_page(rt: Rt, request: Request, token: str) -> Any:
    """The unsubscribe link of a marketing e-mail: a page with a button that POSTs."""
    return _link(rt, request, token, "unsubscribe", None)


@router.post("/v1/unsubscribe/{token}", dependencies=[public()], responses=_HTML)
def unsubscribe(rt: Rt, request: Request, token: str) -> Any:
    """Withdraw the consent at once (source ``unsubscribe_link``): the one-click POST of
    RFC 8058 (``List-Unsubscribe=One-Click``) and the button of the page. Again: nothing."""
    address, agent = _client(request)
    return _link(
        rt,
        request,
        token,
        "unsubscribe",
        lambda uow: consent.unsubscribe(uow, token, address=address, user_agent=agent),
    )
