"""Prefixed, time-ordered, opaque ids: ``mbr_01JD3…``.

Time-ordered (ULID) because random keys in a unique index cost ~4.6x on SQLite batch inserts
(see shared PERFORMANCE.md); prefixed so an id says what it is in logs, support tickets and URLs.
"""

from __future__ import annotations

from ulid import ULID

PREFIXES = {
    "tenant": "ten",
    "programme": "prg",
    "revision": "rev",
    "store": "sto",
    "member": "mbr",
    "identifier": "idn",
    "consent": "cns",
    "activity": "act",
    "award": "awd",
    "transfer": "txf",
    "lot": "lot",
    "allocation": "alc",
    "hold": "hld",
    "reward": "rwd",
    "redemption": "red",
    "voucher": "vch",
    "event": "evt",
    "request": "req",
    "job_run": "job",
    "api_key": "key",
    "webhook_endpoint": "whe",
    "webhook_delivery": "whd",
    "webhook_attempt": "wha",
    "staff_user": "stf",
    "effect": "eff",
    "tier_change": "tch",
    "stamp_card": "stc",
    "stamp_award": "sta",
    "campaign_award": "cpa",
    "campaign_visit": "cpv",
    "donation": "don",
    "referral": "ref",
    "membership": "msh",
    "membership_payment": "mpy",
    "dividend": "div",
    "cashback": "cbk",
    "gift_card": "gft",
    "shop_connection": "shc",
    "shop_receipt": "shr",
    "import_job": "imp",
    "import_error": "ime",
    "automation_run": "aur",
    "message": "msg",
    "suppression": "sup",
    "audit_entry": "aud",
}


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}_{ULID()}"
