"""Programme set-up in the console, without code: ``/console/<tenant>/<programme>/setup``.

Rules, rewards, tiers, stamp cards, referral, memberships, expiry and returns are edited as
forms (their fields in ``setup_forms``). Every save edits the programme document, the source of
truth: the form's item replaces its place in the current document, the *whole* document is
validated by its own model, and only a valid one is applied, as one new revision. An invalid
one is shown again with each message next to its field, and nothing is saved. A form sent from
an older revision than the one in force is refused rather than undoing someone else's change.

The rule form previews a basket: what it would earn under the edited, unsaved rule and under
the rules in force (``simulate_purchase`` with a draft document; nothing is written).

Owners and managers only (``programmes:write``); a cashier gets 403 on every page and post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Response
from pydantic import ValidationError

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import simulate_purchase
from treu.audit.model import AuditAction
from treu.auth.model import Permission
from treu.errors import ErrorCode, TreuError
from treu.programmes.model import DocumentError, ProgrammeDocument, check_document
from treu.programmes.service import ApplyResult, apply_programme
from treu.rules.model import Award
from treu.storage.uow import UnitOfWork
from treu.web.console import Console, InProgramme, _pos_store
from treu.web.context import PageNotFound
from treu.web.forms import Form
from treu.web.setup_forms import (
    CHOICES,
    N_,
    SECTIONS,
    Section,
    build_item,
    form_values,
    index_of,
    item_of,
    items,
    place_errors,
    put_item,
)

router = APIRouter(prefix="/console/{tenant}/{programme}/setup", include_in_schema=False)

BASKET_LINES = 3

# What pydantic's error kinds mean, said to a shop owner (the document's own checks keep
# their English sentence: they name keys and fields of the document).
_KINDS: dict[str, str] = {
    "missing": N_("Please fill this in."),
    "string_too_short": N_("Please fill this in."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "int_parsing": N_("A whole number, e.g. 10."),
    "int_type": N_("A whole number, e.g. 10."),
    "int_from_float": N_("A whole number, e.g. 10."),
    "decimal_parsing": N_("A number with a point, e.g. 1.50."),
    "decimal_type": N_("A number with a point, e.g. 1.50."),
    "finite_number": N_("A number with a point, e.g. 1.50."),
    "greater_than": N_("Must be greater than %(gt)s."),
    "greater_than_equal": N_("Must be at least %(ge)s."),
    "less_than": N_("Must be less than %(lt)s."),
    "less_than_equal": N_("Must be at most %(le)s."),
    "date_parsing": N_("A date such as 2026-12-31."),
    "date_from_datetime_parsing": N_("A date such as 2026-12-31."),
    "literal_error": N_("Please choose one of the options."),
    "enum": N_("Please choose one of the options."),
    "extra_forbidden": N_("Not an option of this item."),
}
_KEY_PATTERN = N_("Lower-case letters, digits, - and _ only, e.g. coffee-card.")
_USED_TWICE = N_("This key is already used by another item.")
_CHANGED = N_(
    "The programme was changed since this form was opened. Please reload it and try again."
)


def _say(c: Console, error: DocumentError) -> str:
    """The error in the page's language."""
    if error.kind == "string_pattern_mismatch" and error.path.split(".")[-1] == "key":
        return c.fmt.gettext(_KEY_PATTERN)
    if error.kind == "value_error" and error.message.endswith("is used twice"):
        return c.fmt.gettext(_USED_TWICE)
    known = _KINDS.get(error.kind)
    if known is None:
        return error.message.removeprefix("Value error, ")
    return c.fmt.gettext(known) % {k: str(v) for k, v in error.context.items()}


def _section(slug: str) -> Section:
    found = SECTIONS.get(slug)
    if found is None:
        raise PageNotFound
    return found


def _document(c: Console) -> dict[str, Any]:
    assert c.programme is not None
    data: dict[str, Any] = c.programme.document.model_dump(mode="json", by_alias=True)
    return data


# --- the overview --------------------------------------------------------------------------


@router.get("")
def overview(c: InProgramme, saved: int | None = None, unchanged: bool = False) -> Response:
    c.need(Permission.PROGRAMMES_WRITE)
    return _overview(c, saved=saved, unchanged=unchanged)


def _overview(
    c: Console,
    status: int = 200,
    *,
    saved: int | None = None,
    unchanged: bool = False,
    errors: list[Any] | None = None,
) -> Response:
    assert c.programme is not None
    document = _document(c)
    return c.render(
        "console/setup.html",
        status,
        section="setup",
        sections=SECTIONS,
        document=document,
        items=lambda s: items(s, document),
        item=lambda s: item_of(s, document, None),
        values=form_values,
        saved=saved,
        unchanged=unchanged,
        errors=errors or [],
        revision=c.programme.revision_id,
        choices=CHOICES,
    )


# --- one item ------------------------------------------------------------------------------


@router.get("/{slug}/new")
def new_item(c: InProgramme, slug: str) -> Response:
    c.need(Permission.PROGRAMMES_WRITE)
    section = _section(slug)
    if not section.many:
        raise PageNotFound
    return _form(c, section, None, form_values(section, None))


@router.get("/{slug}/item/{key}")
def edit_item(c: InProgramme, slug: str, key: str) -> Response:
    c.need(Permission.PROGRAMMES_WRITE)
    section = _section(slug)
    current = item_of(section, _document(c), key)
    if not section.many or current is None:
        raise PageNotFound
    return _form(c, section, key, form_values(section, current))


@router.get("/{slug}")
def edit_single(c: InProgramme, slug: str) -> Response:
    c.need(Permission.PROGRAMMES_WRITE)
    section = _section(slug)
    if section.many:
        raise PageNotFound
    current = item_of(section, _document(c), None)
    if section.kept and current is None:  # tiers: a first level makes them
        return c.redirect(f"{c.here}/setup/tier-levels/new")
    return _form(c, section, None, form_values(section, current))


@router.post("/{slug}/new")
def create_item(c: InProgramme, slug: str, form: Form) -> Response:
    return _save(c, _section(slug), None, form, new=True)


@router.post("/{slug}/item/{key}")
def save_item(c: InProgramme, slug: str, key: str, form: Form) -> Response:
    return _save(c, _section(slug), key, form, new=False)


@router.post("/{slug}")
def save_single(c: InProgramme, slug: str, form: Form) -> Response:
    return _save(c, _section(slug), None, form, new=False)


@router.post("/{slug}/item/{key}/delete")
def delete_item(c: InProgramme, slug: str, key: str, form: Form) -> Response:
    return _delete(c, _section(slug), key, form)


@router.post("/{slug}/delete")
def delete_single(c: InProgramme, slug: str, form: Form) -> Response:
    section = _section(slug)
    if not section.removable:
        raise PageNotFound
    return _delete(c, section, None, form)


def _save(c: Console, section: Section, key: str | None, form: Form, *, new: bool) -> Response:
    c.check_csrf(form)
    c.need(Permission.PROGRAMMES_WRITE)
    if (section.many == (key is None) and not new) or (new and not section.many):
        raise PageNotFound
    document = _document(c)
    current = None if new else item_of(section, document, key)
    if section.many and not new and current is None:
        raise PageNotFound
    values = {i.name: form.get(i.name)[:2000] for i in section.inputs}
    values["advanced"] = form.get("advanced")[:100_000]
    built = build_item(section, values, current)
    draft = put_item(section, document, key, built.item)
    index = index_of(section, document, key if not new else None) if section.many else None
    doc, problems = check_document(draft)
    placed = place_errors(section, index, problems)
    errors = {name: _say(c, e) for name, e in placed.fields.items()}
    if "advanced" in placed.fields:  # an option of the text area: say which
        errors["advanced"] = f"{placed.fields['advanced'].path}: {errors['advanced']}"
    errors.update({name: c.fmt.gettext(message) for name, message in built.errors.items()})
    top = [_say(c, e) for e in placed.item] + [f"{e.path}: {_say(c, e)}" for e in placed.elsewhere]
    stale = _stale(c, form)
    if stale:
        top.insert(0, stale)
    basket = {k: form.text(k, 64) for k in form.values if k.startswith("basket.")}
    preview = None
    if section.preview and form.get("do") == "preview":
        preview, basket_errors = _preview(c, doc, basket)
        errors.update(basket_errors)
    if errors or top or doc is None or form.get("do") == "preview":
        status = 200 if preview is not None and not (errors or top) else 422
        return _form(
            c, section, key, values, status, errors=errors, top=top, preview=preview, basket=basket
        )
    return _apply(c, doc)


def _delete(c: Console, section: Section, key: str | None, form: Form) -> Response:
    c.check_csrf(form)
    c.need(Permission.PROGRAMMES_WRITE)
    document = _document(c)
    if item_of(section, document, key) is None:
        raise PageNotFound
    doc, problems = check_document(put_item(section, document, key, None))
    errors = [{"path": e.path, "message": _say(c, e)} for e in problems]
    stale = _stale(c, form)
    if stale:
        errors.insert(0, {"path": "", "message": stale})
    if doc is None or errors:
        return _overview(c, 422, errors=errors)
    return _apply(c, doc)


def _stale(c: Console, form: Form) -> str | None:
    assert c.programme is not None
    if form.get("revision") == c.programme.revision_id:
        return None
    return c.fmt.gettext(_CHANGED)


def _apply(c: Console, doc: ProgrammeDocument) -> Response:
    programme = c.programme
    assert programme is not None
    try:

        def go(uow: UnitOfWork) -> ApplyResult:
            c.audit(uow, AuditAction.PROGRAMME_APPLIED, programme.id, key=doc.key, via="setup")
            return apply_programme(
                uow, tenant_id=c.tenant_id, document=doc, based_on=programme.revision_id
            )

        result = c.rt.write(go)
    except TreuError as exc:
        if exc.code is ErrorCode.PROGRAMME_CHANGED:
            found = [{"path": "", "message": c.fmt.gettext(_CHANGED)}]
        else:
            found = (exc.details or {}).get("errors") or [{"path": "", "message": exc.message}]
        return _overview(c, 422, errors=found)
    if not result.changed:
        return c.redirect(f"{c.here}/setup?unchanged=1")
    return c.redirect(f"{c.here}/setup?saved={result.revision}")


def _form(
    c: Console,
    section: Section,
    key: str | None,
    values: dict[str, str],
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    top: list[str] | None = None,
    preview: Preview | None = None,
    basket: dict[str, str] | None = None,
) -> Response:
    assert c.programme is not None
    if section.many:
        action = f"{c.here}/setup/{section.slug}/" + (f"item/{key}" if key else "new")
    else:
        action = f"{c.here}/setup/{section.slug}"
    return c.render(
        "console/setup_form.html",
        status,
        section="setup",
        s=section,
        key=key,
        action=action,
        values=values,
        errors=errors or {},
        top=top or [],
        preview=preview,
        basket=basket or {},
        basket_lines=BASKET_LINES,
        revision=c.programme.revision_id,
        choices=CHOICES,
    )


# --- the basket preview --------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    draft: list[Award] | None  # None: the edited document is not valid yet
    current: list[Award]

    @property
    def draft_points(self) -> int | None:
        return None if self.draft is None else sum(a.points for a in self.draft)

    @property
    def current_points(self) -> int:
        return sum(a.points for a in self.current)


def _preview(
    c: Console, draft: ProgrammeDocument | None, basket: dict[str, str]
) -> tuple[Preview | None, dict[str, str]]:
    """What the basket of the form would earn, under the draft and under the rules in force."""
    programme = c.programme
    assert programme is not None
    lines = []
    for i in range(BASKET_LINES):
        price = basket.get(f"basket.price.{i}", "").replace(",", ".")
        if not price:
            continue
        lines.append(
            {
                "sku": basket.get(f"basket.sku.{i}") or None,
                "category": basket.get(f"basket.category.{i}") or None,
                "quantity": basket.get(f"basket.quantity.{i}") or "1",
                "unit_price": price,
            }
        )
    if not lines:
        return None, {"basket": c.fmt.gettext("Enter at least one line with a price, e.g. 3.40.")}
    try:
        purchase = PurchaseIn(
            external_id="console-preview",
            currency=programme.currency,
            lines=[LineIn.model_validate(line) for line in lines],
            channel="pos",
            store=_pos_store(programme),
        )
    except (ValidationError, ArithmeticError):
        message = c.fmt.gettext("Quantities are whole numbers and prices amounts such as 3.40.")
        return None, {"basket": message}

    def go(uow: UnitOfWork) -> Preview:
        earned = (
            None
            if draft is None
            else simulate_purchase(uow, programme_id=programme.id, purchase=purchase, draft=draft)
        )
        return Preview(earned, simulate_purchase(uow, programme_id=programme.id, purchase=purchase))

    return c.rt.read(go), {}
