"""The exception tree and the stable error codes, in one place.

Every error a user can cause is a :class:`TreuError` with a stable :class:`ErrorCode`. The CLI
prints ``code: message`` and exits non-zero; the API (later) turns the same error into an
``application/problem+json`` body (see ``treu.api.problems`` for the HTTP statuses). Codes are
part of the public contract: never rename one.

    TreuError
    ├── NotFound          the thing named does not exist (or belongs to another tenant)
    ├── InvalidInput      the request itself is malformed (field paths in ``details``)
    ├── Conflict          the request clashes with existing state (duplicate, already used)
    ├── Rejected          well-formed, but a business rule says no (balance, stock, window)
    ├── Unauthenticated   no credentials, or credentials that are unknown, revoked or expired
    └── Forbidden         valid credentials whose scope does not allow this operation
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # NotFound
    NOT_FOUND = "not_found"
    TENANT_NOT_FOUND = "tenant_not_found"
    PROGRAMME_NOT_FOUND = "programme_not_found"
    STORE_NOT_FOUND = "store_not_found"
    MEMBER_NOT_FOUND = "member_not_found"
    PURCHASE_NOT_FOUND = "purchase_not_found"
    REWARD_NOT_FOUND = "reward_not_found"
    VOUCHER_NOT_FOUND = "voucher_not_found"
    HOLD_NOT_FOUND = "hold_not_found"
    API_KEY_NOT_FOUND = "api_key_not_found"
    WEBHOOK_ENDPOINT_NOT_FOUND = "webhook_endpoint_not_found"
    WEBHOOK_DELIVERY_NOT_FOUND = "webhook_delivery_not_found"
    PLAN_NOT_FOUND = "plan_not_found"
    MEMBERSHIP_NOT_FOUND = "membership_not_found"
    CHARITY_NOT_FOUND = "charity_not_found"
    REFERRAL_CODE_NOT_FOUND = "referral_code_not_found"
    REFERRAL_NOT_FOUND = "referral_not_found"
    SHOP_CONNECTION_NOT_FOUND = "shop_connection_not_found"
    UNKNOWN_SEGMENT = "unknown_segment"  # no segment (built-in or defined) with this key
    IMPORT_NOT_FOUND = "import_not_found"
    AUTOMATION_NOT_FOUND = "automation_not_found"  # no automation with this key
    # InvalidInput
    VALIDATION_ERROR = "validation_error"
    INVALID_PROGRAMME = "invalid_programme"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_IDENTIFIER = "invalid_identifier"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a scanned member QR token: bad or expired
    INVALID_GIFT_CARD = "invalid_gift_card"  # a typed or scanned gift card code: no such card
    REASON_REQUIRED = "reason_required"  # a manual override (tier ...) without a reason
    UNKNOWN_TIER = "unknown_tier"
    UNKNOWN_TEMPLATE = "unknown_template"  # a message template key neither built in nor defined
    TEMPLATE_ERROR = "template_error"  # a message template that does not render
    INVALID_SEGMENT = "invalid_segment"  # an ad-hoc segment definition or a static upload
    INVALID_IMPORT_FILE = "invalid_import_file"  # unreadable, or a header the import cannot use
    # Conflict
    DUPLICATE_IDENTIFIER = "duplicate_identifier"
    IDEMPOTENCY_KEY_REUSE = "idempotency_key_reuse"
    ALREADY_CLAIMED = "already_claimed"
    ALREADY_CORRECTED = "already_corrected"
    VOUCHER_ALREADY_USED = "voucher_already_used"
    VOUCHER_CANCELLED = "voucher_cancelled"
    HOLD_NOT_OPEN = "hold_not_open"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    API_KEY_REVOKED = "api_key_revoked"
    DUPLICATE_STAFF_USER = "duplicate_staff_user"
    TIERS_NOT_CONFIGURED = "tiers_not_configured"  # the programme has no tiers
    REFERRAL_NOT_HELD = "referral_not_held"  # approve/reject a referral that is not on hold
    SEGMENT_NOT_STATIC = "segment_not_static"  # an upload to a segment defined by rules
    IMPORT_IN_PROGRESS = "import_in_progress"  # another run moved the file's checkpoint on
    PROGRAMME_CHANGED = "programme_changed"  # edited from a revision no longer in force
    # Rejected
    INSUFFICIENT_POINTS = "insufficient_points"
    INSUFFICIENT_STAMPS = "insufficient_stamps"
    INSUFFICIENT_FUNDS = "insufficient_funds"  # wallet money (store credit, gift card)
    OUT_OF_STOCK = "out_of_stock"
    REWARD_NOT_ELIGIBLE = "reward_not_eligible"
    REWARD_UNAVAILABLE = "reward_unavailable"
    REDEMPTION_LIMIT_REACHED = "redemption_limit_reached"
    VOUCHER_EXPIRED = "voucher_expired"
    MEMBER_BLOCKED = "member_blocked"
    RETURN_EXCEEDS_PURCHASE = "return_exceeds_purchase"
    CLAIM_WINDOW_CLOSED = "claim_window_closed"
    MEMBER_ERASED = "member_erased"
    GIFT_CARD_EXPIRED = "gift_card_expired"
    SELF_REFERRAL = "self_referral"
    ACTION_LIMIT_REACHED = "action_limit_reached"  # an action's limits leave it nothing to earn
    ACTIVITY_TOO_OLD = "activity_too_old"  # sent later than the programme's offline window
    QR_CODE_REQUIRED = "qr_code_required"  # spending at the till with a printed card number
    # Unauthenticated / Forbidden
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    INVALID_CODE = "invalid_code"  # a member login code: wrong, expired, used up or none
    INVALID_SIGNATURE = "invalid_signature"  # a shop webhook not signed with its secret
    # HTTP only (no exception class: the API answers them itself)
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    NOT_READY = "not_ready"
    INTERNAL_ERROR = "internal_error"


class TreuError(Exception):
    """Base of every error Treu raises on purpose."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NotFound(TreuError):
    pass


class InvalidInput(TreuError):
    """``details["errors"]`` holds ``[{"path": "rules.0.effect.points", "message": ...}]``."""


class Conflict(TreuError):
    pass


class Rejected(TreuError):
    pass


class Unauthenticated(TreuError):
    pass


class Forbidden(TreuError):
    pass
