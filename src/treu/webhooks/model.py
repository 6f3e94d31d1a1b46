"""Webhooks, the pure part: which events an endpoint gets, signatures, the retry schedule.

A delivery is one event for one endpoint. It is sent until the endpoint answers 2xx, at most
:data:`MAX_ATTEMPTS` times, with :func:`retry_delay` between attempts; the schedule is kept in
the database (``next_attempt_at``), so it survives a restart of the worker.

Every request is signed: ``Treu-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the endpoint's secret>``. The timestamp lets a receiver refuse replays of an
old request; the event id (``Treu-Event-Id``, and ``id`` in the body) lets it ignore a delivery
it has already processed — delivery is at least once, never exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from treu.errors import ErrorCode, InvalidInput

SIGNATURE_HEADER = "Treu-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
ALL_EVENTS = "*"
MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=12)

# What an endpoint can subscribe to. Other outbox events (API key changes, expiry reminders,
# one-time login codes to come) stay inside Treu: they are for Treu's own messaging, and some
# carry secrets.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "member.enrolled",
        "member.updated",
        "activity.recorded",
        "activity.claimed",
        "points.earned",
        "points.reversed",
        "points.redeemed",
        "points.restored",
        "points.adjusted",
        "points.expired",
        "voucher.issued",
        "voucher.used",
        "voucher.cancelled",
        "voucher.expired",
        "donation.made",
        "referral.created",
        "referral.held",
        "referral.converted",
        "referral.rejected",
        "tier.upgraded",
        "tier.downgraded",
        "tier.will_downgrade",
        "member.merged",
        "member.erased",
        "points.expiring",
        "points.released",
        "stamps.almost_complete",
        "stamps.expired",
        "stamp_card.completed",
        "campaign.awarded",
        "membership.activated",
        "membership.renewed",
        "membership.past_due",
        "membership.cancelled",
        "membership.active",
        "membership.expired",
        "membership.dividend_paid",
        "wallet.credited",
        "wallet.held",
        "wallet.paid",
        "wallet.released",
        "gift_card.issued",
        "gift_card.loaded",
        "gift_card.spent",
        "gift_card.redeemed",
        "gift_card.expired",
        "message.requested",
        "automation.fired",
        "segment.entered",
        "segment.left",
    }
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being sent right now)
    SUCCEEDED = "succeeded"  # the endpoint answered 2xx
    FAILED = "failed"  # MAX_ATTEMPTS failures; only a manual redelivery sends it again


@dataclass(frozen=True)
class Endpoint:
    id: str
    tenant_id: str
    url: str
    event_types: tuple[str, ...]
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def wants(self, event_type: str, created_at: datetime) -> bool:
        """Only events that happened after the endpoint was registered, of a type it asked for."""
        if not self.enabled or created_at < self.created_at or event_type not in EVENT_TYPES:
            return False
        return ALL_EVENTS in self.event_types or event_type in self.event_types


@dataclass(frozen=True)
class Attempt:
    id: str
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    succeeded: bool


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt came to."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_event_types(event_types: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(sorted(set(event_types)))
    unknown = [t for t in wanted if t != ALL_EVENTS and t not in EVENT_TYPES]
    if not wanted or unknown:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"unknown event types: {', '.join(unknown)}" if unknown else "name at least one event",
            errors=[
                {
                    "path": "event_types",
                    "message": f"known: *, {', '.join(sorted(EVENT_TYPES))}",
                }
            ],
        )
    return (ALL_EVENTS,) if ALL_EVENTS in wanted else wanted


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "a webhook URL must be an absolute http(s) URL of at most 2048 characters",
            errors=[{"path": "url", "message": "an absolute http or https URL"}],
        )
    return url


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 1, 2, 4, … minutes, at most 12 hours
    (12 attempts span about 29 hours)."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), LONGEST_RETRY)


def after_attempt(
    attempts: int, outcome: Outcome, now: datetime
) -> tuple[DeliveryStatus, datetime | None]:
    """The delivery's status and next attempt once its ``attempts``-th attempt came to
    ``outcome``."""
    if outcome.succeeded:
        return DeliveryStatus.SUCCEEDED, None
    if attempts >= MAX_ATTEMPTS:
        return DeliveryStatus.FAILED, None
    return DeliveryStatus.PENDING, now + retry_delay(attempts)


def event_body(
    event_id: str, event_type: str, created_at: datetime, payload: Mapping[str, Any]
) -> bytes:
    """The request body: the event as JSON, the bytes that are signed."""
    document = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": dict(payload),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Treu-Signature`` header value for ``body`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
