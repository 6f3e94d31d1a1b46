"""Member identifiers: one canonical form per e-mail, phone, card, payment token."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treu.errors import ErrorCode, InvalidInput
from treu.members.model import (
    IdentifierKind,
    birthday_on,
    normalise_identifier,
    parse_reference,
)

SECRET = "tenant-secret"


def norm(kind: IdentifierKind, value: str, country: str | None = None, secret: str = SECRET) -> str:
    return normalise_identifier(kind, value, country=country, secret=secret)


def refused(kind: IdentifierKind, value: str, country: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        norm(kind, value, country)
    assert caught.value.code is ErrorCode.INVALID_IDENTIFIER
    return caught.value


# --- e-mail ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["Mia@Example.ORG ", "mia@example.org", " MIA@EXAMPLE.ORG", "\tmia@Example.org\n"],
)
def test_an_e_mail_address_is_one_member_however_it_is_typed(value: str) -> None:
    assert norm(IdentifierKind.EMAIL, value) == "mia@example.org"


def test_plus_addresses_and_subdomains_stay_as_they_are() -> None:
    assert norm(IdentifierKind.EMAIL, "Rui+Loja@Mail.Example.COM.BR") == (
        "rui+loja@mail.example.com.br"
    )


def test_an_internationalised_domain_is_accepted() -> None:
    assert norm(IdentifierKind.EMAIL, "jörg@Bücher.example") == "jörg@bücher.example"


@pytest.mark.parametrize(
    "value", ["mia", "mia@", "@example.org", "mia@@example.org", "mia example@org", "mia@.org"]
)
def test_what_is_not_an_e_mail_address_is_refused(value: str) -> None:
    error = refused(IdentifierKind.EMAIL, value)
    assert "is not an e-mail address" in error.message


# --- phone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "e164"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("030/123 45 67", "DE", "+49301234567"),
        ("+49 30 1234567", None, "+49301234567"),
        ("+49 (0)30 1234567", "BR", "+49301234567"),  # an explicit country code wins
        ("0049 30 1234567", "DE", "+49301234567"),
        ("0151 23456789", "DE", "+4915123456789"),
        ("(11) 98765-4321", "BR", "+5511987654321"),
    ],
)
def test_phone_numbers_become_e164(value: str, country: str | None, e164: str) -> None:
    assert norm(IdentifierKind.PHONE, value, country) == e164


@pytest.mark.parametrize(
    ("value", "country"),
    [("12345", "DE"), ("030 12", "DE"), ("not a number", "DE"), ("+49 1", None), ("+", None)],
)
def test_invalid_phone_numbers_are_refused(value: str, country: str | None) -> None:
    error = refused(IdentifierKind.PHONE, value, country)
    assert "is not a valid phone number" in error.message


def test_a_national_number_without_a_programme_country_asks_for_the_country_code() -> None:
    error = refused(IdentifierKind.PHONE, "030 1234567")
    assert "+country code" in error.message


# --- cards and external ids --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "card"),
    [
        ("1234-5678 9012", "123456789012"),
        ("  1234 5678 9012 ", "123456789012"),
        ("kz-00ab-12", "KZ00AB12"),
    ],
)
def test_card_numbers_lose_spaces_and_dashes(value: str, card: str) -> None:
    assert norm(IdentifierKind.CARD, value) == card


@pytest.mark.parametrize("value", ["123", "1234.5678", "1234_5678", "12345678" * 6, "kärtchen"])
def test_malformed_card_numbers_are_refused(value: str) -> None:
    error = refused(IdentifierKind.CARD, value)
    assert "is not a card number" in error.message


def test_external_ids_are_kept_as_given_apart_from_surrounding_space() -> None:
    assert norm(IdentifierKind.EXTERNAL, " shopify:Customer/42 ") == "shopify:Customer/42"
    assert norm(IdentifierKind.EXTERNAL, "x" * 200) == "x" * 200
    error = refused(IdentifierKind.EXTERNAL, "x" * 201)
    assert "longer than 200" in error.message


@pytest.mark.parametrize("kind", list(IdentifierKind))
@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_empty_identifiers_are_refused(kind: IdentifierKind, value: str) -> None:
    error = refused(kind, value)
    assert "is empty" in error.message


# --- payment tokens ----------------------------------------------------------------------


def test_a_payment_token_is_never_stored_only_its_hmac() -> None:
    token = "tok_visa_4242424242424242"
    hashed = norm(IdentifierKind.PAYMENT, token)
    assert len(hashed) == 64
    assert set(hashed) <= set(string.hexdigits.lower())
    assert "4242" not in hashed
    assert norm(IdentifierKind.PAYMENT, f"  {token} ") == hashed  # same token, same member


def test_the_same_token_hashes_differently_per_tenant_secret() -> None:
    token = "tok_visa_4242424242424242"
    assert norm(IdentifierKind.PAYMENT, token, secret="tenant-a") != norm(
        IdentifierKind.PAYMENT, token, secret="tenant-b"
    )


@given(
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.text(max_size=20),
)
def test_different_tokens_never_collide(a: str, b: str, secret: str) -> None:
    same = norm(IdentifierKind.PAYMENT, a, secret=secret) == norm(
        IdentifierKind.PAYMENT, b, secret=secret
    )
    assert same == (a.strip() == b.strip())


# --- properties --------------------------------------------------------------------------


@given(
    local=st.text(alphabet=string.ascii_letters + string.digits + "._+", min_size=1, max_size=20),
    domain=st.sampled_from(["Example.ORG", "mail.example.com.br", "KIEZ.de"]),
    pad=st.sampled_from(["", " ", "  \t"]),
)
def test_e_mail_normalisation_is_idempotent_and_case_blind(
    local: str, domain: str, pad: str
) -> None:
    value = f"{pad}{local}@{domain}{pad}"
    try:
        once = norm(IdentifierKind.EMAIL, value)
    except InvalidInput:
        return  # e.g. ".mia" or "mia..x": not an address, not our concern here
    assert once == once.lower()
    assert norm(IdentifierKind.EMAIL, once) == once
    assert norm(IdentifierKind.EMAIL, value.upper()) == once


@given(st.text(alphabet="0123456789ABCDEFabcdef -", min_size=4, max_size=40))
def test_card_normalisation_is_idempotent(value: str) -> None:
    try:
        once = norm(IdentifierKind.CARD, value)
    except InvalidInput:
        return
    assert norm(IdentifierKind.CARD, once) == once
    assert norm(IdentifierKind.CARD, value.lower()) == once


@given(st.integers(min_value=1_000_000, max_value=9_999_999))
def test_berlin_numbers_are_the_same_member_in_national_and_international_form(
    subscriber: int,
) -> None:
    national = norm(IdentifierKind.PHONE, f"030 {subscriber}", "DE")
    assert national == f"+4930{subscriber}"
    assert norm(IdentifierKind.PHONE, national) == national


# --- references and birthdays ------------------------------------------------------------


def test_a_reference_is_a_member_id_or_kind_and_value() -> None:
    assert parse_reference("mbr_01J9ABC") == (None, "mbr_01J9ABC")
    assert parse_reference("email:mia@example.org") == (IdentifierKind.EMAIL, "mia@example.org")
    assert parse_reference("external:shop:42") == (IdentifierKind.EXTERNAL, "shop:42")


@pytest.mark.parametrize("ref", ["mia@example.org", "mail:mia@example.org", "EMAIL:mia@x.org"])
def test_a_reference_without_a_known_kind_is_refused(ref: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_reference(ref)
    assert caught.value.code is ErrorCode.INVALID_IDENTIFIER


def test_members_born_on_29_february_celebrate_on_28_february_in_common_years() -> None:
    leap_baby = date(2000, 2, 29)
    assert birthday_on(leap_baby, 2027) == date(2027, 2, 28)
    assert birthday_on(leap_baby, 2028) == date(2028, 2, 29)
    assert birthday_on(date(1990, 7, 15), 2026) == date(2026, 7, 15)
