"""The audit log's entries and their action codes (pure).

An entry says who (``actor``: ``staff:<staff user id>`` or ``key:<api key id>``) did what
(``action``: a stable code such as ``member.adjusted``) to what (``subject``: a member id, a
programme id …), with the details that make the entry readable on its own (points, reason,
receipt). Codes are stable: they are kept in the database and shown in exports, so a new action
gets a new code and an old code never changes its meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from treu.errors import ErrorCode, InvalidInput

ACTION_PATTERN = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
ACTOR_PATTERN = re.compile(r"^(staff|key):[A-Za-z0-9_]{1,60}$")


class AuditAction(StrEnum):
    """The actions the console and API record so far (more may be added, none renamed)."""

    MEMBER_ADJUSTED = "member.adjusted"  # points added or taken with a reason
    MEMBER_BLOCKED = "member.blocked"
    MEMBER_UNBLOCKED = "member.unblocked"
    PROGRAMME_APPLIED = "programme.applied"  # a new revision of the programme document
    PURCHASE_RECORDED = "purchase.recorded"  # at the till
    REWARD_REDEEMED = "reward.redeemed"  # at the till, for the member
    VOUCHER_CONSUMED = "voucher.consumed"  # a voucher used at the till
    MEMBERS_MERGED = "members.merged"  # a duplicate sign-up merged into the member kept
    REFERRAL_APPROVED = "referral.approved"  # a held referral released from the review queue
    REFERRAL_REJECTED = "referral.rejected"
    MEMBER_EXPORTED = "member.exported"  # a GDPR export downloaded in the console (a read)
    MEMBER_ERASED = "member.erased"  # GDPR erasure, with a reason


@dataclass(frozen=True)
class AuditEntry:
    id: str
    tenant_id: str
    programme_id: str | None
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    at: datetime


def check_entry(actor: str, action: str, subject: str) -> None:
    """Codes the log can be searched by: an unknown shape is a programming error, caught here
    rather than stored."""
    problems = []
    if not ACTOR_PATTERN.match(actor):
        problems.append({"path": "actor", "message": "staff:<id> or key:<id>"})
    if not ACTION_PATTERN.match(action) or len(action) > 64:
        problems.append({"path": "action", "message": "a code such as member.adjusted"})
    if not subject or len(subject) > 200:
        problems.append({"path": "subject", "message": "1 to 200 characters"})
    if problems:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "invalid audit entry", errors=problems)
