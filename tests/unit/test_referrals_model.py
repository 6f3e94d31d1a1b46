"""Referrals, the pure part: codes, canonical identifiers and the fraud decision."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from treu.referrals.model import (
    REFERRAL_CODE_LENGTH,
    ReferralSettings,
    SignUp,
    address_hash,
    canonical_email,
    new_referral_code,
    normalise_referral_code,
    referral_link,
    shared_identifiers,
    suspicions,
)
from treu.rewards.model import CODE_ALPHABET


def test_codes_are_short_unambiguous_and_typed_any_way() -> None:
    code = new_referral_code()
    assert len(code) == REFERRAL_CODE_LENGTH
    assert set(code) <= set(CODE_ALPHABET)
    assert normalise_referral_code(" abcd-2345 ") == "ABCD2345"


def test_the_link_is_the_base_and_the_code() -> None:
    settings = ReferralSettings(
        referrer_reward={"points": 500}, link_base="https://shop.example/r/"
    )
    assert referral_link(settings, "ABCD2345") == "https://shop.example/r/ABCD2345"


def test_a_referral_programme_must_reward_someone_with_one_thing() -> None:
    with pytest.raises(ValidationError, match="rewards the referrer, the friend or both"):
        ReferralSettings()
    with pytest.raises(ValidationError, match="either points or a reward key"):
        ReferralSettings(friend_reward={"points": 5, "reward": "welcome"})


@pytest.mark.parametrize(
    ("written", "mailbox"),
    [
        ("A.na+promo@gmail.com", "ana@gmail.com"),
        ("ana@googlemail.com", "ana@gmail.com"),
        ("a.na+x@example.org", "a.na@example.org"),  # dots matter outside Gmail
    ],
)
def test_one_mailbox_however_it_is_written(written: str, mailbox: str) -> None:
    assert canonical_email(written) == mailbox


def test_shared_identifiers_compare_canonical_forms() -> None:
    referrer = {"email": {"ana@gmail.com"}, "payment": {"h1"}}
    assert shared_identifiers(referrer, {"email": {"a.na+2@gmail.com"}}) == ["email"]
    assert shared_identifiers(referrer, {"email": {"ben@x.org"}, "payment": {"h1"}}) == ["payment"]
    assert shared_identifiers(referrer, {"email": {"ben@x.org"}}) == []


def _signup(**changes: object) -> SignUp:
    base: dict[str, object] = {
        "friend_address": address_hash("10.0.0.2"),
        "referrer_address": address_hash("10.0.0.1"),
        "shared_identifiers": (),
        "referrer_referrals_from_address": 0,
        "chain_addresses": frozenset(),
    }
    return SignUp(**{**base, **changes})  # type: ignore[arg-type]


def test_an_ordinary_referral_raises_no_suspicion() -> None:
    assert suspicions(_signup()) == []
    assert suspicions(_signup(friend_address=None)) == []  # nothing to compare


def test_look_alikes_and_rings_are_suspicious() -> None:
    here = address_hash("10.0.0.1")
    assert suspicions(_signup(friend_address=here)) == ["same_address"]
    assert suspicions(_signup(shared_identifiers=("payment",))) == ["same_payment"]
    assert suspicions(_signup(referrer_referrals_from_address=1)) == [
        "many_referrals_from_one_address"
    ]
    assert suspicions(_signup(chain_addresses=frozenset({address_hash("10.0.0.2")}))) == [
        "referral_ring"
    ]


def test_addresses_are_compared_as_hashes() -> None:
    assert address_hash(" 10.0.0.1 ") == address_hash("10.0.0.1") != "10.0.0.1"
    assert address_hash("") is None
