"""Login codes, member and staff tokens, QR tokens and staff passwords: the pure part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from treu.auth.tokens import (
    MemberClaims,
    StaffClaims,
    decode_member_token,
    decode_staff_token,
    encode_member_token,
    encode_staff_token,
    hash_login_code,
    hash_password,
    login_code_matches,
    make_qr_token,
    new_login_code,
    password_matches,
    signing_key,
    token_kind_and_tenant,
    verify_qr_token,
)
from treu.errors import InvalidInput, Unauthenticated

NOW = datetime(2026, 3, 2, 8, 10, tzinfo=UTC)


def test_each_purpose_tenant_and_server_secret_has_its_own_key() -> None:
    keys = {
        signing_key("tenant-a", "", "member"),
        signing_key("tenant-a", "", "staff"),
        signing_key("tenant-a", "", "qr"),
        signing_key("tenant-b", "", "member"),
        signing_key("tenant-a", "server", "member"),
    }
    assert len(keys) == 5


def test_a_login_code_is_six_digits_and_kept_only_as_a_keyed_hash() -> None:
    codes = {new_login_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150  # random, not a counter
    key = signing_key("tenant", "", "code")
    stored = hash_login_code(key, "mbr_1", "042042")
    assert "042042" not in stored
    assert login_code_matches(key, "mbr_1", "042042", stored)
    assert not login_code_matches(key, "mbr_2", "042042", stored)  # bound to its member


def test_a_member_token_carries_its_claims_until_it_expires() -> None:
    key = signing_key("tenant", "", "member")
    claims = MemberClaims("ten_1", "prg_1", "mbr_1", NOW + timedelta(minutes=30), "jti-1")
    token = encode_member_token(key, claims, NOW)
    assert token_kind_and_tenant(token) == ("member", "ten_1")
    assert decode_member_token(token, key, NOW + timedelta(minutes=29)) == claims
    with pytest.raises(Unauthenticated, match="expired"):
        decode_member_token(token, key, NOW + timedelta(minutes=30))


def test_a_member_token_is_no_staff_session_and_the_reverse() -> None:
    key = signing_key("tenant", "", "member")
    member = encode_member_token(
        key, MemberClaims("ten_1", "prg_1", "mbr_1", NOW + timedelta(hours=1), "j"), NOW
    )
    staff = encode_staff_token(
        key, StaffClaims("ten_1", "stf_1", NOW + timedelta(hours=1), "j"), NOW
    )
    with pytest.raises(Unauthenticated):
        decode_staff_token(member, key, NOW)
    with pytest.raises(Unauthenticated):
        decode_member_token(staff, key, NOW)
    with pytest.raises(Unauthenticated):
        decode_member_token(member, signing_key("other tenant", "", "member"), NOW)


def test_a_qr_token_is_valid_in_its_30_second_step_and_the_next() -> None:
    key = signing_key("tenant", "", "qr")
    start = datetime.fromtimestamp(1_780_000_020, UTC)  # a multiple of 30 seconds
    made = make_qr_token(key, "mbr_1", start + timedelta(seconds=5))
    assert made.expires_at == start + timedelta(seconds=60)
    assert verify_qr_token(made.token, key, start + timedelta(seconds=59)) == "mbr_1"
    with pytest.raises(InvalidInput, match="expired"):
        verify_qr_token(made.token, key, start + timedelta(seconds=60))
    with pytest.raises(InvalidInput, match="expired"):
        verify_qr_token(made.token, key, start - timedelta(seconds=1))  # from the future
    with pytest.raises(InvalidInput, match="not signed"):
        verify_qr_token(made.token, signing_key("other", "", "qr"), start)


def test_a_password_is_hashed_with_argon2id_and_checked() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert password_matches(stored, "correct horse battery staple")
    assert not password_matches(stored, "Correct horse battery staple")
    assert not password_matches(None, "anything")  # no such user: checked against a dummy
    assert not password_matches("not a hash", "anything")


def test_a_widget_token_says_so_and_only_reads() -> None:
    from treu.auth.model import Permission, Principal

    key = signing_key("tenant", "", "member")
    claims = MemberClaims(
        "ten_1", "prg_1", "mbr_1", NOW + timedelta(minutes=15), "jti-2", widget=True
    )
    decoded = decode_member_token(encode_member_token(key, claims, NOW), key, NOW)
    assert decoded.widget
    widget = Principal("mbr_1", "ten_1", None, programme_id="prg_1", member_id="mbr_1", widget=True)
    portal = Principal("mbr_1", "ten_1", None, programme_id="prg_1", member_id="mbr_1")
    assert widget.allows(Permission.ME_READ)
    assert not widget.allows(Permission.ME_QR_TOKEN)
    assert portal.allows(Permission.ME_QR_TOKEN)
