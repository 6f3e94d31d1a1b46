"""Rewards and vouchers: codes a person can read aloud, and who may redeem what, when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from treu.errors import ErrorCode, Rejected
from treu.rewards.model import (
    CODE_ALPHABET,
    CODE_LENGTH,
    RewardDef,
    RewardState,
    VoucherStatus,
    check_redeemable,
    check_voucher,
    new_voucher_code,
    normalise_code,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 2, 8, 10, tzinfo=BERLIN)


# --- voucher codes -----------------------------------------------------------------------


def test_codes_are_long_enough_not_to_be_guessed() -> None:
    assert CODE_LENGTH >= 10
    assert len(CODE_ALPHABET) ** CODE_LENGTH > 2**55
    assert all(len(new_voucher_code()) == CODE_LENGTH for _ in range(100))


def test_codes_avoid_characters_that_are_misread_at_the_till() -> None:
    assert not set("0O1IL") & set(CODE_ALPHABET)
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET)
    codes = [new_voucher_code() for _ in range(200)]
    assert all(set(code) <= set(CODE_ALPHABET) for code in codes)
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize(
    "typed",
    ["ABCD-EFGH-JKMN", "abcd-efgh-jkmn", " abcd efgh jkmn ", "AbCd-EfGh JkMn", "ABCDEFGHJKMN"],
)
def test_a_code_is_accepted_as_a_person_types_it(typed: str) -> None:
    assert normalise_code(typed) == "ABCDEFGHJKMN"


@given(
    code=st.text(alphabet=CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH),
    group=st.integers(min_value=1, max_value=6),
    separator=st.sampled_from(["-", " ", " - ", ""]),
    lower=st.booleans(),
)
def test_any_way_of_grouping_a_code_normalises_back_to_it(
    code: str, group: int, separator: str, lower: bool
) -> None:
    typed = separator.join(code[i : i + group] for i in range(0, len(code), group))
    if lower:
        typed = typed.lower()
    assert normalise_code(f" {typed} ") == code


# --- using a voucher ---------------------------------------------------------------------


def test_an_issued_voucher_before_its_expiry_can_be_used() -> None:
    check_voucher(VoucherStatus.ISSUED, NOW + timedelta(days=30), NOW)
    check_voucher(VoucherStatus.ISSUED, None, NOW)  # a voucher without expiry


@pytest.mark.parametrize(
    ("status", "expires_at", "code"),
    [
        (VoucherStatus.USED, None, ErrorCode.VOUCHER_ALREADY_USED),
        (VoucherStatus.CANCELLED, None, ErrorCode.VOUCHER_CANCELLED),
        (VoucherStatus.EXPIRED, None, ErrorCode.VOUCHER_EXPIRED),
        (VoucherStatus.ISSUED, NOW, ErrorCode.VOUCHER_EXPIRED),  # expiry is the first bad instant
        (VoucherStatus.ISSUED, NOW - timedelta(seconds=1), ErrorCode.VOUCHER_EXPIRED),
        # a used voucher is reported as used even after its expiry
        (VoucherStatus.USED, NOW - timedelta(days=1), ErrorCode.VOUCHER_ALREADY_USED),
        (VoucherStatus.CANCELLED, NOW - timedelta(days=1), ErrorCode.VOUCHER_CANCELLED),
    ],
)
def test_a_voucher_that_cannot_be_used_says_why(
    status: VoucherStatus, expires_at: datetime | None, code: ErrorCode
) -> None:
    with pytest.raises(Rejected) as caught:
        check_voucher(status, expires_at, NOW)
    assert caught.value.code is code


def test_voucher_expiry_compares_instants_not_wall_clocks() -> None:
    expires = datetime(2026, 3, 2, 0, 0, tzinfo=BERLIN)  # 23:00 UTC on 1 March
    check_voucher(VoucherStatus.ISSUED, expires, datetime(2026, 3, 1, 22, 59, tzinfo=UTC))
    with pytest.raises(Rejected):
        check_voucher(VoucherStatus.ISSUED, expires, datetime(2026, 3, 1, 23, 0, tzinfo=UTC))


# --- who may redeem a reward -------------------------------------------------------------


COFFEE = RewardState(
    id="rwd_01",
    key="gratis-kaffee",
    name="Gratis Kaffee",
    cost=30,
    active=True,
    stock=None,
    per_member_limit=None,
    available_from=None,
    available_until=None,
    tiers=(),
    segments=(),
)


def check(
    reward: RewardState,
    *,
    now: datetime = NOW,
    redeemed: int = 0,
    tier: str | None = None,
    segments: frozenset[str] = frozenset(),
) -> None:
    check_redeemable(
        reward, now=now, redeemed_by_member=redeemed, member_tier=tier, member_segments=segments
    )


def refused(reward: RewardState, **kwargs: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        check(reward, **kwargs)
    return caught.value


def test_a_plain_reward_is_redeemable() -> None:
    check(COFFEE)
    check(COFFEE, redeemed=99, tier="gold", segments=frozenset({"students"}))


def test_a_withdrawn_reward_is_unavailable() -> None:
    error = refused(replace(COFFEE, active=False))
    assert error.code is ErrorCode.REWARD_UNAVAILABLE
    assert "not offered any more" in error.message


def test_the_availability_window_is_from_inclusive_until_exclusive() -> None:
    spring = replace(
        COFFEE,
        available_from=datetime(2026, 3, 1, tzinfo=BERLIN),
        available_until=datetime(2026, 6, 1, tzinfo=BERLIN),
    )
    check(spring, now=datetime(2026, 3, 1, tzinfo=BERLIN))
    check(spring, now=datetime(2026, 5, 31, 23, 59, tzinfo=BERLIN))
    early = refused(spring, now=datetime(2026, 2, 28, 23, 59, tzinfo=BERLIN))
    assert early.code is ErrorCode.REWARD_UNAVAILABLE
    assert "not available yet" in early.message
    late = refused(spring, now=datetime(2026, 6, 1, tzinfo=BERLIN))
    assert late.code is ErrorCode.REWARD_UNAVAILABLE
    assert "no longer available" in late.message


def test_a_tier_reward_is_only_for_members_of_those_tiers() -> None:
    gold_only = replace(COFFEE, tiers=("gold", "platinum"))
    check(gold_only, tier="gold")
    assert refused(gold_only, tier="silver").code is ErrorCode.REWARD_NOT_ELIGIBLE
    assert refused(gold_only, tier=None).code is ErrorCode.REWARD_NOT_ELIGIBLE


def test_a_segment_reward_needs_one_of_its_segments() -> None:
    students = replace(COFFEE, segments=("students", "staff"))
    check(students, segments=frozenset({"berlin", "students"}))
    error = refused(students, segments=frozenset({"berlin"}))
    assert error.code is ErrorCode.REWARD_NOT_ELIGIBLE
    assert refused(students).code is ErrorCode.REWARD_NOT_ELIGIBLE


def test_the_per_member_limit() -> None:
    once = replace(COFFEE, per_member_limit=1)
    check(once, redeemed=0)
    error = refused(once, redeemed=1)
    assert error.code is ErrorCode.REDEMPTION_LIMIT_REACHED
    assert "1 time(s) per member" in error.message


def test_the_first_reason_is_reported() -> None:
    everything_wrong = replace(
        COFFEE,
        active=False,
        tiers=("gold",),
        per_member_limit=1,
        available_until=NOW - timedelta(days=1),
    )
    assert refused(everything_wrong, redeemed=5).code is ErrorCode.REWARD_UNAVAILABLE
    assert (
        refused(replace(everything_wrong, active=True, available_until=None), redeemed=5).code
        is ErrorCode.REWARD_NOT_ELIGIBLE
    )


# --- the catalogue as written ------------------------------------------------------------


def test_catalogue_entries_of_every_kind() -> None:
    rewards = [
        {"key": "fuenf-euro", "name": "5 € Rabatt", "kind": "fixed_discount", "value": "5.00"},
        {"key": "zehn", "name": "10 %", "kind": "percentage_discount", "percent": "10"},
        {"key": "kaffee", "name": "Kaffee", "kind": "free_product", "sku": "KAFFEE-KLEIN"},
        {"key": "versand", "name": "Versand", "kind": "free_shipping"},
        {"key": "roesterei", "name": "Führung", "kind": "experience", "stock": 12},
    ]
    for data in rewards:
        reward = RewardDef.model_validate({"cost": 100, **data})
        assert reward.active
        assert reward.cost == 100


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "fixed_discount"},
        {"kind": "percentage_discount"},
        {"kind": "percentage_discount", "percent": "101"},
        {"kind": "free_product"},
        {"kind": "custom", "cost": 0},
        {"kind": "custom", "stock": -1},
        {"kind": "custom", "available_from": "2026-03-01T00:00:00"},  # no offset
        {"kind": "custom", "available_until": datetime(2026, 6, 1)},
        {"kind": "custom", "key": "Gratis Kaffee"},
        {"kind": "voucher"},
        {"kind": "custom", "colour": "red"},
    ],
)
def test_malformed_catalogue_entries(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RewardDef.model_validate({"key": "r", "name": "R", "cost": 100, **data})
