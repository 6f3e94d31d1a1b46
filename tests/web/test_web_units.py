"""The web layer's pure parts: the German catalogue is complete, CSRF tokens are bound to
their session and key, redirects stay on the site, numbers and money speak the language."""

from __future__ import annotations

import re
from datetime import UTC, date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from treu.web.i18n import Formats, language_of
from treu.web.security import csrf_token, csrf_token_valid, safe_next

WEB = Path(str(resources.files("treu.web")))
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def used_messages() -> set[str | tuple[str, ...]]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options
    ):
        found.add(message)
    return found


def test_every_message_of_the_portal_and_console_has_a_german_translation() -> None:
    with (WEB / "locale" / "de" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="de")
    used = used_messages()
    assert len(used) > 100
    missing = [m for m in used if m not in catalog or not catalog[m].string]
    assert missing == []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:  # a translation keeps every placeholder of its original
            assert set(PLACEHOLDER.findall(text)) <= set(PLACEHOLDER.findall(ids[-1])), text
            assert set(PLACEHOLDER.findall(ids[0])) - {"num", "n"} <= set(
                PLACEHOLDER.findall(text)
            ), text


def test_a_csrf_token_is_good_only_for_its_session_and_key() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    token = csrf_token(key, "session-a")
    assert csrf_token_valid(key, "session-a", token)
    assert not csrf_token_valid(key, "session-b", token)  # planted before a log-in
    assert not csrf_token_valid(key, None, token)
    assert not csrf_token_valid(other_key, "session-a", token)  # another tenant's
    nonce, mac = token.split(".")
    assert not csrf_token_valid(key, "session-a", f"{nonce}x.{mac}")
    assert not csrf_token_valid(key, "session-a", "")
    assert not csrf_token_valid(key, "session-a", "no-dot")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/portal/t/p/history?page=2", "/portal/t/p/history?page=2"),
        ("https://evil.example/portal/t/p/", "/portal/t/p/"),
        ("//evil.example/portal/t/p/", "/portal/t/p/"),
        ("/console/t/", "/portal/t/p/"),
        ("/portal/t/p/\\evil", "/portal/t/p/"),
        (None, "/portal/t/p/"),
    ],
)
def test_a_form_sends_you_back_only_to_a_page_of_the_same_portal(
    target: str | None, expected: str
) -> None:
    assert safe_next(target, "/portal/t/p") == expected


def test_the_language_is_the_first_one_we_have() -> None:
    assert language_of(None, "de-AT", "en") == "de"
    assert language_of("fr", None, "de_CH") == "de"
    assert language_of("pt-BR") == "en"
    assert language_of(None, None) == "en"


def test_points_money_and_days_are_said_in_the_language() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    de = Formats("de", berlin, "EUR", "Punkte")
    en = Formats("en", berlin, "EUR", "Punkte")
    assert (de.points(1), de.points(1234)) == ("1 Punkt", "1.234 Punkte")
    assert (en.points(1), en.points(1234)) == ("1 point", "1,234 points")
    assert de.minor(1250).replace("\xa0", " ") == "12,50 €"
    assert en.money(Decimal("12.5")) == "€12.50"
    assert de.day(date(2026, 3, 3), today=date(2026, 5, 1)) == "3. März"
    assert en.day(date(2026, 3, 3), today=date(2027, 5, 1)) == "March 3, 2026"
    own = Formats("de", UTC, "EUR", "Bohnen")  # a programme's own word stays as it is
    assert own.points(12) == "12 Bohnen"
