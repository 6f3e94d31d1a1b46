"""The programme document: one validated piece of data, errors named by their field path."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from treu.errors import ErrorCode, InvalidInput
from treu.programmes.model import Programme, ProgrammeDocument, parse_document
from treu.rules.model import Rounding

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))

KIEZCAFE: dict[str, Any] = yaml.safe_load(
    """
key: kiezcafe
name: Kiezcafé Treue
currency: EUR
timezone: Europe/Berlin
locale: de
country: DE
point_name: Punkte
expiry: {type: after, months: 24, round_to: year_end}
stores:
  - {key: kastanienallee, name: "Kiezcafé Kastanienallee", channel: pos}
rules:
  - key: punkte
    name: "1 Punkt je Euro"
    effect: {type: per_amount, points: 1, per: "1.00"}
  - key: kastanie
    name: "Bonus in der Kastanienallee"
    when: {stores: [kastanienallee]}
    effect: {type: bonus, points: 2}
rewards:
  - {key: gratis-kaffee, name: "Gratis Kaffee", kind: free_product, sku: KAFFEE-KLEIN, cost: 30}
"""
)


def kiezcafe(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(KIEZCAFE)
    data.update(changes)
    return data


def errors_of(data: Any) -> list[dict[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_document(data)
    assert caught.value.code is ErrorCode.INVALID_PROGRAMME
    errors: list[dict[str, str]] = caught.value.details["errors"]
    assert errors
    return errors


def paths_of(data: Any) -> list[str]:
    return [e["path"] for e in errors_of(data)]


# --- valid documents ---------------------------------------------------------------------


def test_the_kiezcafe_document() -> None:
    doc = parse_document(KIEZCAFE)
    assert (doc.key, doc.currency, doc.timezone, doc.country) == (
        "kiezcafe",
        "EUR",
        "Europe/Berlin",
        "DE",
    )
    assert [r.key for r in doc.rules] == ["punkte", "kastanie"]
    assert doc.expiry.months == 24
    assert doc.rewards[0].sku == "KAFFEE-KLEIN"


def test_a_minimal_document_gets_the_defaults() -> None:
    doc = parse_document({"key": "mini", "name": "Mini", "currency": "JPY", "timezone": "UTC"})
    assert doc.locale == "en"
    assert doc.point_name == "points"
    assert doc.point_value == Decimal("0.01")
    assert doc.rounding is Rounding.FLOOR
    assert doc.expiry.type == "never"
    assert doc.pending.mode == "immediate"
    assert doc.returns.policy == "within_balance"
    assert doc.earning_base.include_tax
    assert (doc.stores, doc.rules, doc.rewards) == ([], [], [])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_shipped_example_is_a_valid_programme(path: Path) -> None:
    assert isinstance(parse_document(yaml.safe_load(path.read_text())), ProgrammeDocument)


def test_the_document_is_frozen() -> None:
    doc = parse_document(KIEZCAFE)
    with pytest.raises(ValueError, match="frozen"):
        doc.name = "Anders"  # type: ignore[misc]


# --- errors name their field path --------------------------------------------------------


def test_an_unknown_field_is_named_by_its_path() -> None:
    errors = errors_of(kiezcafe(colour="red"))
    assert errors == [{"path": "colour", "message": "Extra inputs are not permitted"}]


def test_an_unknown_field_deep_in_a_rule() -> None:
    data = kiezcafe()
    data["rules"][1]["when"]["weekday"] = ["mon"]
    assert paths_of(data) == ["rules.1.when.weekday"]


def test_effect_errors_name_the_field_as_written_in_the_document() -> None:
    data = kiezcafe()
    data["rules"][0]["effect"]["points"] = 0
    data["rules"][1]["effect"]["pointz"] = 2
    errors = errors_of(data)
    assert {e["path"] for e in errors} == {
        "rules.0.effect.points",
        "rules.1.effect.pointz",
    }
    with pytest.raises(InvalidInput, match=r"rules\.0\.effect\.points: Input should be greater"):
        parse_document(data)


def test_an_unknown_effect_type() -> None:
    data = kiezcafe()
    data["rules"][0]["effect"]["type"] = "percent"
    assert paths_of(data) == ["rules.0.effect"]


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "Europe/Berlin ", "", "../etc/passwd"])
def test_a_bad_timezone(timezone: str) -> None:
    (error,) = errors_of(kiezcafe(timezone=timezone))
    assert error["path"] == "timezone"
    assert "is not an IANA timezone such as Europe/Berlin" in error["message"]


@pytest.mark.parametrize("timezone", ["Europe", "America"])
def test_a_timezone_region_alone_is_a_bad_timezone_not_a_crash(timezone: str) -> None:
    assert paths_of(kiezcafe(timezone=timezone)) == ["timezone"]


@pytest.mark.parametrize("currency", ["ABC", "eur", "EURO", "€", ""])
def test_a_bad_currency(currency: str) -> None:
    assert paths_of(kiezcafe(currency=currency)) == ["currency"]


def test_an_unknown_iso_currency_is_named() -> None:
    (error,) = errors_of(kiezcafe(currency="ABC"))
    assert "'ABC' is not an ISO 4217 currency" in error["message"]


@pytest.mark.parametrize("locale", ["xx", "123", "de--DE", ""])
def test_a_bad_locale(locale: str) -> None:
    assert paths_of(kiezcafe(locale=locale)) == ["locale"]


@pytest.mark.parametrize("locale", ["de", "pt-BR", "pt_BR", "en"])
def test_locales_with_dash_or_underscore(locale: str) -> None:
    assert parse_document(kiezcafe(locale=locale)).locale == locale


@pytest.mark.parametrize("section", ["rules", "rewards", "stores"])
def test_a_key_used_twice(section: str) -> None:
    data = kiezcafe()
    data[section].append(copy.deepcopy(data[section][0]))
    (error,) = errors_of(data)
    key = data[section][0]["key"]
    assert error["path"] == f"{section}.{len(data[section]) - 1}.key"
    assert error["message"] == f"'{key}' is used twice"


def test_a_rule_in_an_unknown_store() -> None:
    data = kiezcafe()
    data["rules"][1]["when"]["stores"] = ["kastanienallee", "mitte"]
    (error,) = errors_of(data)
    assert error == {"path": "rules.1.when.stores", "message": "unknown store 'mitte'"}


def test_expiry_after_without_months_or_days() -> None:
    (error,) = errors_of(kiezcafe(expiry={"type": "after", "round_to": "month_end"}))
    assert error["path"] == "expiry"
    assert "needs exactly one of days or months" in error["message"]


def test_an_action_rule_with_a_per_amount_effect() -> None:
    data = kiezcafe()
    data["rules"][0]["when"] = {"activity": "action", "action_types": ["review"]}
    (error,) = errors_of(data)
    assert error["path"] == "rules.0"
    assert "rules on actions give fixed or bonus points" in error["message"]


def test_missing_fields_are_named() -> None:
    data = kiezcafe()
    del data["timezone"]
    del data["rules"][0]["effect"]["points"]
    assert set(paths_of(data)) == {"timezone", "rules.0.effect.points"}


def test_every_error_is_in_the_details_and_the_first_five_in_the_message() -> None:
    data = kiezcafe(
        key="Kiez Café", name="", currency="euro", timezone="Berlin", country="de", point_name=""
    )
    with pytest.raises(InvalidInput) as caught:
        parse_document(data)
    assert len(caught.value.details["errors"]) == 6
    assert caught.value.message.count(": ") == 1 + 5
    assert caught.value.message.startswith("invalid programme document: key: ")


@pytest.mark.parametrize("data", [None, [], "key: x", 42])
def test_what_is_not_a_mapping_is_an_invalid_document(data: Any) -> None:
    assert paths_of(data) == ["(document)"]


# --- the runtime view ----------------------------------------------------------------------


def test_programme_time() -> None:
    programme = Programme("prg_01", "ten_01", "rev_01", parse_document(KIEZCAFE))
    assert programme.tz == ZoneInfo("Europe/Berlin")
    assert programme.currency == "EUR"
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert programme.local_time(late) == datetime(2026, 3, 2, 0, 30)
    assert programme.local_time(late).tzinfo is None
    assert programme.local_date(late) == date(2026, 3, 2)
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    assert programme.local_time(summer) == datetime(2026, 7, 2, 1, 30)
    rule = programme.rule("kastanie")
    assert rule is not None
    assert rule.when.stores == ["kastanienallee"]
    assert programme.rule("nope") is None
