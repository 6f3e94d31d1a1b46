"""What a refused action says to a member or a cashier, in their language.

The services' messages are written for developers ("member mbr_… is blocked"); a page shows
the sentence for the error's stable code instead, and the developer's message only for codes
without one.
"""

from __future__ import annotations

from treu.errors import ErrorCode, TreuError
from treu.web.i18n import Formats


def _(message: str) -> str:
    """Marks a message for ``pybabel extract``; translated when shown."""
    return message


_SAID: dict[ErrorCode, str] = {
    ErrorCode.INSUFFICIENT_POINTS: _("You do not have enough points for this yet."),
    ErrorCode.MEMBER_BLOCKED: _("This account is blocked: please ask the team."),
    ErrorCode.MEMBER_ERASED: _("This account has been deleted."),
    ErrorCode.OUT_OF_STOCK: _("This reward is sold out."),
    ErrorCode.REWARD_NOT_ELIGIBLE: _("This reward is not available to you."),
    ErrorCode.REWARD_UNAVAILABLE: _("This reward is not available at the moment."),
    ErrorCode.REDEMPTION_LIMIT_REACHED: _("You have redeemed this reward as often as allowed."),
    ErrorCode.REWARD_NOT_FOUND: _("There is no such reward."),
    ErrorCode.INVALID_CODE: _("Wrong or expired code. Please request a new code."),
    ErrorCode.INVALID_IDENTIFIER: _("Please enter an e-mail address or a phone number."),
    ErrorCode.INVALID_TOKEN: _("The code is not valid (expired or mistyped): scan it again."),
    ErrorCode.MEMBER_NOT_FOUND: _("No member found."),
    ErrorCode.VOUCHER_NOT_FOUND: _("No such voucher."),
    ErrorCode.VOUCHER_ALREADY_USED: _("This voucher has been used already."),
    ErrorCode.VOUCHER_EXPIRED: _("This voucher has expired."),
    ErrorCode.VOUCHER_CANCELLED: _("This voucher was cancelled."),
    ErrorCode.UNAUTHENTICATED: _("Wrong e-mail or password."),
    ErrorCode.REASON_REQUIRED: _("Please give a reason."),
}


def message_for(error: TreuError, fmt: Formats) -> str:
    said = _SAID.get(error.code)
    return fmt.gettext(said) if said else error.message


def field_errors(error: TreuError) -> dict[str, str]:
    """``{"path": "message"}`` of an ``InvalidInput`` about fields (for inline messages)."""
    found = (error.details or {}).get("errors") or []
    return {str(e.get("path", "")): str(e.get("message", "")) for e in found}
