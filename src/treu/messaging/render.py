"""Rendering templates: Jinja2 in a sandbox, Babel for numbers, money and dates (pure).

Templates come from tenants, so they run in Jinja2's immutable sandbox (no attribute access to
Python internals, no mutation of the context), with ``StrictUndefined``: a misspelt variable is
an error, never an empty string in a member's inbox. HTML is autoescaped; subjects, plain text
and SMS are not (they are not HTML).

Filters, formatted in the message's locale (the member's, else the programme's):

- ``{{ saved|money }}`` — ``84,00 €`` (de) / ``€84.00`` (en); a Decimal amount in the programme
  currency (or ``|money("USD")``)
- ``{{ balance|number }}`` / ``{{ balance|points }}`` — ``1.250`` (de) / ``1,250`` (en)
- ``{{ member_since|date }}`` — ``2. März 2021``; ``|date("short")``, ``|date("MMMM yyyy")``
- ``{{ expires_at|datetime }}`` — an instant in programme time; ``|time``, ``|percent``
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

PARTS = ("subject", "text", "html", "short")


class TemplateProblem(ValueError):
    """A template that does not compile or render: ``part.language: what went wrong``."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None  # the whole e-mail document (layout included)
    short: str  # the SMS / push text


@dataclass(frozen=True)
class Locality:
    """How values are formatted: the message's locale, the programme's currency and timezone."""

    locale: str
    currency: str
    timezone: str


# --- the environment and its filters ---------------------------------------------------------


class _Sample:
    """A stand-in for a value a template expects from its automation (``variables``): any
    attribute, item, iteration or filter works on it, so checking the template still finds
    every other mistake."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, name: str) -> _Sample:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Sample(f"{self._name}.{name}")

    def __getitem__(self, key: Any) -> _Sample:
        return _Sample(f"{self._name}[{key!r}]")

    def __iter__(self) -> Iterator[_Sample]:
        return iter([_Sample(f"{self._name}[0]")])

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"<{self._name}>"


def _babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def _filters(where: Locality) -> dict[str, Callable[..., Any]]:
    locale = _babel_locale(where.locale)
    tz = ZoneInfo(where.timezone)

    def sample(value: Any) -> bool:
        return isinstance(value, _Sample)

    def money(value: Any, currency: str | None = None) -> str:
        if sample(value):
            return str(value)
        return str(format_currency(Decimal(str(value)), currency or where.currency, locale=locale))

    def number(value: Any, digits: int | None = None) -> str:
        if sample(value):
            return str(value)
        amount = Decimal(str(value))
        if digits is not None:
            amount = round(amount, digits)
        return str(format_decimal(amount, locale=locale))

    def local_date(value: Any, format: str = "long") -> str:
        if sample(value):
            return str(value)
        if isinstance(value, str):
            value = date.fromisoformat(value[:10]) if len(value) <= 10 else _instant(value)
        if isinstance(value, datetime):
            value = value.astimezone(tz).date()
        return str(format_date(value, format, locale=locale))

    def local_datetime(value: Any, format: str = "medium") -> str:
        if sample(value):
            return str(value)
        at = _instant(value) if isinstance(value, str) else value
        return str(format_datetime(at, format, tzinfo=tz, locale=locale))

    def local_time(value: Any, format: str = "short") -> str:
        if sample(value):
            return str(value)
        at = _instant(value) if isinstance(value, str) else value
        return str(format_time(at, format, tzinfo=tz, locale=locale))

    def percent(value: Any) -> str:
        if sample(value):
            return str(value)
        return str(format_percent(Decimal(str(value)), locale=locale))

    return {
        "money": money,
        "number": number,
        "points": number,
        "date": local_date,
        "datetime": local_datetime,
        "time": local_time,
        "percent": percent,
    }


def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@lru_cache(maxsize=256)
def _environment(where: Locality, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters.update(_filters(where))
    return env


# A line that holds nothing but block tags (``{% if … %}``, ``{% endfor %}``) leaves no trace
# in the output, as in Mustache; a tag inside a line of text keeps that line's newline. Jinja's
# own trim_blocks would also eat the newline after "… {% endif %}" at the end of a sentence.
_STANDALONE = re.compile(r"^[ \t]*((?:\{%(?:(?!%\}).)*%\}[ \t]*)+)\r?\n", re.MULTILINE)


@lru_cache(maxsize=2048)
def _compiled(where: Locality, autoescape: bool, source: str) -> Template:
    return _environment(where, autoescape).from_string(_STANDALONE.sub(_tags_only, source))


def _tags_only(match: re.Match[str]) -> str:
    return match.group(1).rstrip(" \t")


def render_source(
    source: str, context: Mapping[str, Any], where: Locality, *, html_mode: bool = False
) -> str:
    """One template source, rendered; a :class:`TemplateProblem` if it fails."""
    try:
        return _compiled(where, html_mode, source).render(dict(context))
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise TemplateProblem(
            f"{exc.message or exc}" + (f" (line {line})" if line else "")
        ) from None
    except (TypeError, ValueError, ArithmeticError, AttributeError, KeyError) as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None


# --- whole messages ----------------------------------------------------------------------------


def render_message(
    parts: Mapping[str, Mapping[str, str]],
    language: str,
    context: Mapping[str, Any],
    where: Locality,
    *,
    layout: bool = True,
) -> Rendered:
    """Render a template's parts in ``language``: the HTML is the template's own or derived
    from the text, wrapped in the e-mail layout (with the unsubscribe link, if any)."""

    def part(name: str, *, html_mode: bool = False) -> str | None:
        source = parts.get(name, {}).get(language)
        if source is None:
            return None
        try:
            return render_source(source, context, where, html_mode=html_mode)
        except TemplateProblem as exc:
            raise TemplateProblem(f"{name}.{language}: {exc}") from None

    subject = part("subject")
    subject = " ".join(subject.split()) if subject is not None else None  # one line, always
    text = _tidy(part("text") or "")
    short = part("short")
    body = part("html", html_mode=True)
    content = Markup(body) if body is not None else text_to_html(text)  # noqa: S704 - autoescaped
    plain = text
    unsubscribe = context.get("unsubscribe_url")
    if unsubscribe:
        text += "\n\n-- \n" + _FOOTER[_lang(language)].format(url=unsubscribe)
    document = _layout(language, subject or "", content, context, where) if layout else str(content)
    return Rendered(subject, text, document, _tidy(short) if short is not None else plain)


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, none at either end."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


_FOOTER = {
    "de": "Keine E-Mails mehr von uns? Hier abmelden: {url}",
    "en": "No more e-mails from us? Unsubscribe here: {url}",
}
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def _lang(language: str) -> str:
    return "de" if language.lower().startswith("de") else "en"


def text_to_html(text: str) -> Markup:
    """Plain text as HTML: paragraphs at blank lines, line breaks kept, links clickable."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]

    def linked(chunk: str) -> str:
        out, last = [], 0
        for match in _URL.finditer(chunk):
            out.append(html.escape(chunk[last : match.start()]))
            url = html.escape(match.group(0))
            out.append(f'<a href="{url}">{url}</a>')
            last = match.end()
        out.append(html.escape(chunk[last:]))
        return "".join(out)

    return Markup(  # noqa: S704 - every piece was escaped above
        "\n".join(
            "<p>" + "<br>\n".join(linked(x) for x in p.split("\n")) + "</p>" for p in paragraphs
        )
    )


@lru_cache(maxsize=1)
def _layout_source() -> str:
    return resources.files("treu.messaging").joinpath("templates/layout.html").read_text("utf-8")


def _layout(
    language: str, subject: str, content: Markup, context: Mapping[str, Any], where: Locality
) -> str:
    programme = context.get("programme") or {}
    values = {
        "language": _lang(language),
        "subject": subject,
        "content": content,
        "programme_name": programme.get("name", "") if isinstance(programme, Mapping) else "",
        "unsubscribe_url": context.get("unsubscribe_url"),
    }
    return render_source(_layout_source(), values, where, html_mode=True)


# --- checking templates when a programme document is applied ---------------------------------


def check_template(
    parts: Mapping[str, Mapping[str, str]], variables: list[str] | tuple[str, ...] = ()
) -> str | None:
    """The first problem of a template (``text.de: 'first_nme' is undefined``), or None: every
    part in every language is rendered against :func:`sample_context`."""
    context: dict[str, Any] = {
        **sample_context(),
        **{name: _Sample(name) for name in variables},
    }
    for name in PARTS:
        for language, source in parts.get(name, {}).items():
            where = Locality(language, "EUR", "Europe/Berlin")
            try:
                render_source(source, context, where, html_mode=name == "html")
            except TemplateProblem as exc:
                return f"{name}.{language}: {exc}"
    return None


def sample_context() -> dict[str, Any]:
    """A member with everything (an open card, a next reward, vouchers, expiring points): the
    personal content every template can use, with example values (also the preview without a
    member). Keep it in step with ``treu.messaging.service.personal_context``."""
    card = {
        "key": "kaffee",
        "name": "Kaffeekarte",
        "reward": "kaffee-gratis",
        "reward_name": "Kaffee gratis",
        "stamps": 9,
        "stamps_needed": 10,
        "stamps_left": 1,
    }
    reward = {"key": "kaffee-gratis", "name": "Kaffee gratis", "cost": 300, "points_needed": 120}
    voucher = {
        "code": "K7Q2-M9XA",
        "reward_key": "kaffee-gratis",
        "reward_name": "Kaffee gratis",
        "issued_at": datetime(2026, 3, 1, 9, tzinfo=UTC),
        "expires_at": datetime(2026, 6, 1, 9, tzinfo=UTC),
        "expires_on": date(2026, 6, 1),
    }
    return {
        "member_id": "mbr_01J0000000000000000000SAMPLE",
        "first_name": "Mia",
        "name": "Mia Beispiel",
        "locale": "de",
        "language": "de",
        "programme": {
            "key": "kiezcafe",
            "name": "Kiezcafé",
            "point_name": "Punkte",
            "currency": "EUR",
        },
        "point_name": "Punkte",
        "currency": "EUR",
        "member_since": date(2021, 3, 2),
        "years_member": 5,
        "balance": 180,
        "pending": 20,
        "points_earned": 2450,
        "points_earned_period": 1320,
        "points_spent": 2270,
        "saved": Decimal("84.00"),
        "saved_since": date(2024, 3, 2),
        "next_reward": reward,
        "points_to_next_reward": 120,
        "rewards_now": [{"key": "keks", "name": "Keks gratis", "cost": 150}],
        "vouchers": [voucher],
        "voucher": voucher,
        "stamp_cards": [card],
        "card": card,
        "stamps_left": 1,
        "tier": {
            "key": "silber",
            "name": "Silber",
            "next_key": "gold",
            "next_name": "Gold",
            "missing": 250,
            "metric": "points",
        },
        "expiring": {"points": 50, "date": date(2026, 3, 31)},
        "memberships": [{"plan": "plus", "name": "Kiez Plus", "status": "active", "perks": []}],
        "wallet": Decimal("12.50"),
        "today": date(2026, 3, 2),
        "unsubscribe_url": "https://treu.example/v1/unsubscribe/SAMPLE",
        "confirm_url": "https://treu.example/v1/consents/confirm/SAMPLE",
        "code": "123456",
        "minutes": 10,
        "event": _Sample("event"),
    }
