"""Templates and the messaging decisions, without a database: rendering in German and English,
the sandbox, checks at apply time, quiet hours, consent, caps and the retry schedule."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from treu.errors import InvalidInput
from treu.messaging.catalogue import BUILT_IN_KEYS, built_in_templates, find_template
from treu.messaging.model import (
    Consent,
    MessageChannel,
    MessageKind,
    QuietHours,
    Reason,
    SuppressionReason,
    TemplateDef,
    after_quiet_hours,
    consent_problem,
    language_of,
    over_cap,
    retry_delay,
    suppression_problem,
)
from treu.messaging.render import (
    Locality,
    TemplateProblem,
    check_template,
    render_message,
    render_source,
    sample_context,
    text_to_html,
)
from treu.programmes.model import parse_document

BERLIN = ZoneInfo("Europe/Berlin")
DE = Locality("de", "EUR", "Europe/Berlin")
EN = Locality("en", "EUR", "Europe/Berlin")


def empty_context() -> dict[str, Any]:
    """A new member with nothing: no name, no reward in sight, no card, tier or vouchers."""
    return {
        **sample_context(),
        "first_name": None,
        "name": None,
        "next_reward": None,
        "points_to_next_reward": None,
        "rewards_now": [],
        "vouchers": [],
        "voucher": None,
        "stamp_cards": [],
        "card": None,
        "stamps_left": None,
        "tier": None,
        "expiring": None,
        "memberships": [],
        "saved": Decimal("0.00"),
        "balance": 0,
        "pending": 0,
        "points_earned": 0,
        "years_member": 0,
        "unsubscribe_url": None,
    }


# --- filters in the member's locale ------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "de", "en"),
    [
        ("{{ saved|money }}", "84,00\xa0€", "€84.00"),
        ("{{ 1250|points }}", "1.250", "1,250"),
        ("{{ member_since|date }}", "2. März 2021", "March 2, 2021"),
        ("{{ member_since|date('short') }}", "02.03.21", "3/2/21"),
        ("{{ voucher.issued_at|datetime('short') }}", "01.03.26, 10:00", "3/1/26, 10:00\u202fAM"),
        ("{{ 0.25|percent }}", "25\xa0%", "25%"),
    ],
)
def test_filters_format_in_the_messages_locale_and_programme_time(
    source: str, de: str, en: str
) -> None:
    context = sample_context()
    assert render_source(source, context, DE) == de
    assert render_source(source, context, EN) == en


def test_a_misspelt_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateProblem, match="'first_nme' is undefined"):
        render_source("Hallo {{ first_nme }}", sample_context(), DE)


def test_the_sandbox_keeps_templates_away_from_python_internals() -> None:
    with pytest.raises(TemplateProblem):
        render_source("{{ ''.__class__.__mro__[1].__subclasses__() }}", sample_context(), DE)
    with pytest.raises(TemplateProblem):
        render_source("{% do vouchers.append(1) %}{{ vouchers.append(1) }}", sample_context(), DE)


def test_html_is_escaped_and_text_is_not() -> None:
    context = {**sample_context(), "first_name": "<b>Mia</b> & Co"}
    assert render_source("{{ first_name }}", context, DE, html_mode=True) == (
        "&lt;b&gt;Mia&lt;/b&gt; &amp; Co"
    )
    assert render_source("{{ first_name }}", context, DE) == "<b>Mia</b> & Co"


def test_text_becomes_html_with_paragraphs_line_breaks_and_links() -> None:
    html = str(text_to_html("Hallo <Mia>,\nschön!\n\nMehr: https://kiez.example/a?b=1&c=2."))
    assert html == (
        "<p>Hallo &lt;Mia&gt;,<br>\nschön!</p>\n"
        '<p>Mehr: <a href="https://kiez.example/a?b=1&amp;c=2">https://kiez.example/a?b=1&amp;c=2</a>.</p>'
    )


def test_lines_holding_only_tags_leave_no_trace_and_inline_tags_keep_their_line() -> None:
    source = "A{% if balance %} (b){% endif %}\n  {% if card %}\nC\n  {% endif %}\nD"
    assert render_source(source, sample_context(), DE) == "A (b)\nC\nD"


# --- the built-in templates --------------------------------------------------------------------


@pytest.mark.parametrize("key", BUILT_IN_KEYS)
@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("context", [sample_context, empty_context], ids=["full", "empty"])
def test_every_built_in_renders_for_a_full_and_an_empty_member(
    key: str, language: str, context: Any
) -> None:
    template = built_in_templates()[key]
    assert set(template.text) == {"de", "en"}
    where = DE if language == "de" else EN
    rendered = render_message(template.parts(), language, context(), where)
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text
    assert rendered.html is not None
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert "None" not in rendered.text + rendered.subject + rendered.short
    if template.short:  # an SMS or a push
        assert len(rendered.short) <= 200


def test_the_statement_tells_the_dsw_story_in_german() -> None:
    statement = find_template([], "statement")
    rendered = render_message(statement.parts(), "de", sample_context(), DE)
    text = rendered.text
    assert "Bis zu deiner nächsten Prämie, Kaffee gratis, fehlen dir noch 120 Punkte." in text
    assert "- Keks gratis für 150 Punkte" in text
    assert "- Gutschein Kaffee gratis: K7Q2-M9XA (bis 1. Juni 2026)" in text
    assert "Mitglied seit 2. März 2021. Gesammelt: 2.450 Punkte." in text
    assert "In den letzten zwei Jahren hast du 84,00\xa0€ gespart." in text
    assert text.endswith("Hier abmelden: https://treu.example/v1/unsubscribe/SAMPLE")


# --- checking programme templates when the document is applied -------------------------------


def _doc(**template: Any) -> dict[str, Any]:
    return {
        "key": "kiez",
        "name": "Kiez",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "templates": [{"key": "angebot", "text": {"de": "Hallo {{ first_name }}"}, **template}],
    }


def test_a_programme_template_overrides_the_built_in_of_its_key() -> None:
    own = TemplateDef(key="welcome", text={"de": "Servus {{ first_name }}!"})
    assert find_template([own], "welcome") is own
    assert find_template([own], "statement") is built_in_templates()["statement"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"subject": {"de": "{{ balance|points }"}}, "subject.de: unexpected '}'"),
        ({"text": {"de": "{{ card.reward_nam }}"}}, "text.de: 'dict object' has no attribute"),
        ({"html": {"de": "{% for v in voucher %}"}}, "html.de: Unexpected end of template"),
        ({"text": {"xx-yy": "Hallo"}}, "text.xx-yy: 'xx-yy' is not a language"),
        ({"text": {"de": "{{ event.card.name }} {{ order_total|money }}"}}, "'order_total'"),
    ],
)
def test_a_broken_template_is_refused_with_its_part_and_language(
    template: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_document(_doc(**template))
    assert message in str(refused.value)


def test_variables_an_automation_passes_can_be_declared() -> None:
    doc = parse_document(
        _doc(text={"de": "Dein Warenkorb: {{ cart.total|money }}"}, variables=["cart"])
    )
    assert doc.templates[0].variables == ["cart"]
    assert check_template({"text": {"de": "{{ event.anything.goes }}"}}) is None


def test_two_templates_with_one_key_are_refused() -> None:
    doc = _doc()
    doc["templates"].append({"key": "angebot", "text": {"en": "Hi"}})
    with pytest.raises(InvalidInput, match=re.escape("templates.1.key: 'angebot' is used twice")):
        parse_document(doc)


# --- decisions --------------------------------------------------------------------------------


def test_transactional_messages_need_no_consent_and_marketing_needs_it_granted() -> None:
    granted = Consent(granted=True, confirmed=False)
    confirmed = Consent(granted=True, confirmed=True)
    email, sms = MessageChannel.EMAIL, MessageChannel.SMS
    marketing, transactional = MessageKind.MARKETING, MessageKind.TRANSACTIONAL
    assert consent_problem(transactional, email, None, double_opt_in=True) is None
    assert consent_problem(marketing, email, None, double_opt_in=True) is Reason.NO_CONSENT
    withdrawn = Consent(granted=False, confirmed=True)
    assert consent_problem(marketing, email, withdrawn, double_opt_in=False) is Reason.NO_CONSENT
    assert consent_problem(marketing, email, granted, double_opt_in=True) is Reason.UNCONFIRMED
    assert consent_problem(marketing, email, granted, double_opt_in=False) is None
    assert consent_problem(marketing, email, confirmed, double_opt_in=True) is None
    assert consent_problem(marketing, sms, granted, double_opt_in=True) is None  # e-mail only


def test_a_bounce_stops_everything_a_complaint_only_marketing() -> None:
    bounced, complained = SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED
    assert suppression_problem(MessageKind.TRANSACTIONAL, bounced) is Reason.BOUNCED
    assert suppression_problem(MessageKind.TRANSACTIONAL, complained) is None
    assert suppression_problem(MessageKind.MARKETING, complained) is Reason.COMPLAINED


def test_the_cap_counts_marketing_only() -> None:
    assert over_cap(MessageKind.MARKETING, 3, 3) is True
    assert over_cap(MessageKind.MARKETING, 3, 2) is False
    assert over_cap(MessageKind.MARKETING, None, 99) is False
    assert over_cap(MessageKind.TRANSACTIONAL, 0, 99) is False


NIGHT = QuietHours(start=time(21), end=time(8))


@pytest.mark.parametrize(
    ("local", "due"),
    [
        (datetime(2026, 3, 2, 22, 30), datetime(2026, 3, 3, 8, 0)),  # late: tomorrow morning
        (datetime(2026, 3, 3, 6, 15), datetime(2026, 3, 3, 8, 0)),  # early: this morning
        (datetime(2026, 3, 3, 8, 0), datetime(2026, 3, 3, 8, 0)),  # the window is over
        (datetime(2026, 3, 3, 20, 59), datetime(2026, 3, 3, 20, 59)),  # not yet quiet
        (datetime(2026, 3, 28, 23, 0), datetime(2026, 3, 29, 8, 0)),  # over the DST switch
    ],
)
def test_sms_wait_for_the_end_of_the_quiet_hours_in_programme_time(
    local: datetime, due: datetime
) -> None:
    at = local.replace(tzinfo=BERLIN).astimezone(UTC)
    waited = after_quiet_hours(MessageChannel.SMS, at, NIGHT, BERLIN)
    assert waited.astimezone(BERLIN).replace(tzinfo=None) == due
    assert after_quiet_hours(MessageChannel.EMAIL, at, NIGHT, BERLIN) == at
    login_code = MessageKind.TRANSACTIONAL  # asked for just now: it goes at once
    assert after_quiet_hours(MessageChannel.SMS, at, NIGHT, BERLIN, login_code) == at


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours(start=time(12), end=time(14))
    at = datetime(2026, 3, 2, 13, tzinfo=BERLIN)
    assert after_quiet_hours(MessageChannel.PUSH, at, lunch, BERLIN) == datetime(
        2026, 3, 2, 14, tzinfo=BERLIN
    )
    assert after_quiet_hours(MessageChannel.PUSH, at, None, BERLIN) == at


def test_retries_back_off_from_a_minute_to_six_hours() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (1, 2, 4)]
    assert retry_delay(30) == timedelta(hours=6)


@pytest.mark.parametrize(
    ("member", "programme", "available", "chosen"),
    [
        ("de-AT", "en", ["de", "en"], "de"),
        (None, "de", ["de", "en"], "de"),
        ("fr", "fr", ["de", "en"], "en"),
        ("fr", "fr", ["de"], "de"),
        ("pt_BR", "en", ["pt-BR", "en"], "en"),
        ("pt-BR", "en", ["pt-BR", "en"], "pt-BR"),
    ],
)
def test_the_members_language_else_the_programmes_else_english(
    member: str | None, programme: str, available: list[str], chosen: str
) -> None:
    assert language_of(member, programme, available) == chosen
    assert date  # imported for the sample's types
