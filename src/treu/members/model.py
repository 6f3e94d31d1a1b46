"""Members and their identifiers — the pure part: normalisation and the member view."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from treu.errors import ErrorCode, InvalidInput


class IdentifierKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    EXTERNAL = "external"
    PAYMENT = "payment"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    ERASED = "erased"
    MERGED = "merged"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    POST = "post"


_CARD = re.compile(r"^[A-Z0-9]{4,40}$")


def normalise_identifier(
    kind: IdentifierKind, value: str, *, country: str | None, secret: str
) -> str:
    """The canonical form under which an identifier is stored and looked up.

    E-mail addresses are lower-cased as a whole: RFC 5321 lets the local part be case-sensitive,
    but no mail provider members use treats it so, and "Mia@…" and "mia@…" being two members is
    the bug users report. Payment tokens are never stored, only an HMAC with the tenant's secret.
    """
    raw = value.strip()
    if not raw:
        raise InvalidInput(ErrorCode.INVALID_IDENTIFIER, f"{kind} is empty")
    if kind is IdentifierKind.EMAIL:
        try:
            result = validate_email(raw, check_deliverability=False)
        except EmailNotValidError as exc:
            raise InvalidInput(
                ErrorCode.INVALID_IDENTIFIER, f"{raw!r} is not an e-mail address: {exc}"
            ) from None
        return str(result.normalized).lower()
    if kind is IdentifierKind.PHONE:
        try:
            number = phonenumbers.parse(raw, country)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            hint = "" if country else " (give it with +country code)"
            raise InvalidInput(
                ErrorCode.INVALID_IDENTIFIER, f"{raw!r} is not a valid phone number{hint}"
            )
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if kind is IdentifierKind.CARD:
        card = re.sub(r"[\s-]", "", raw).upper()
        if not _CARD.match(card):
            raise InvalidInput(ErrorCode.INVALID_IDENTIFIER, f"{raw!r} is not a card number")
        return card
    if kind is IdentifierKind.PAYMENT:
        return hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    if len(raw) > 200:
        raise InvalidInput(
            ErrorCode.INVALID_IDENTIFIER, "external id is longer than 200 characters"
        )
    return raw


def parse_reference(ref: str) -> tuple[IdentifierKind | None, str]:
    """``email:mia@example.org`` → (EMAIL, "mia@example.org"); ``mbr_…`` → (None, "mbr_…")."""
    if ref.startswith("mbr_"):
        return None, ref
    kind, sep, value = ref.partition(":")
    if not sep or kind not in IdentifierKind.__members__.values():
        known = ", ".join(k.value for k in IdentifierKind)
        raise InvalidInput(
            ErrorCode.INVALID_IDENTIFIER,
            f"{ref!r}: give a member id (mbr_…) or kind:value with kind one of {known}",
        )
    return IdentifierKind(kind), value


@dataclass(frozen=True)
class Member:
    id: str
    tenant_id: str
    programme_id: str
    status: MemberStatus
    name: str | None
    birthday: date | None
    locale: str | None
    enrolled_at: datetime
    first_purchase_at: datetime | None
    last_activity_at: datetime | None
    attributes: dict[str, Any] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsentRecord:
    """One consent decision, as given: kept forever (proof of opt-in, GDPR art. 7(1))."""

    channel: str
    granted: bool
    source: str
    recorded_at: datetime
    text_version: str | None = None  # the wording agreed to
    evidence: dict[str, Any] | None = None  # how: double opt-in confirmation, address, agent
    id: str | None = None


def birthday_on(birthday: date, year: int) -> date:
    """Members born on 29 February celebrate on 28 February in common years."""
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)
