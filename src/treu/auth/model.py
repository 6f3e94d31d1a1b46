"""API keys and what each scope may do (pure).

A key is shown once, as ``treu_sk_<key id>_<secret>``: the key id (a ULID, also the row's id
without its ``key_`` prefix) says which row to read, the secret proves possession. Only the
SHA-256 of the whole token is stored: the secret has 256 bits of entropy, so a slow password
hash would buy nothing and cost every request a few hundred milliseconds.

Scopes are coarse on purpose (an integrator must be able to predict them); each API operation
names one :class:`Permission`, and :data:`SCOPE_PERMISSIONS` (API keys), :data:`ROLE_PERMISSIONS`
(staff sessions) and :data:`MEMBER_PERMISSIONS` (member tokens) are the whole policy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ulid import ULID

from treu.errors import ErrorCode, Unauthenticated

TOKEN_PREFIX = "treu_sk_"  # noqa: S105 - a public prefix, not a secret
KEY_ID_PREFIX = "key_"
_ULID_LENGTH = 26


class Scope(StrEnum):
    ADMIN = "admin"  # programme set-up and everything else
    INTEGRATION = "integration"  # a shop or CRM: members, activities, rewards, webhooks
    POS = "pos"  # a till: look-up, purchase, redeem, voucher use — nothing else
    READ = "read"  # reports: every read, no write


class Permission(StrEnum):
    PROGRAMMES_READ = "programmes:read"
    PROGRAMMES_WRITE = "programmes:write"
    MEMBERS_LIST = "members:list"
    MEMBERS_READ = "members:read"
    MEMBERS_LOOKUP = "members:lookup"
    MEMBERS_WRITE = "members:write"
    BALANCES_READ = "balances:read"
    ACTIVITIES_READ = "activities:read"
    PURCHASES_WRITE = "purchases:write"
    ACTIVITIES_WRITE = "activities:write"
    SIMULATE = "activities:simulate"
    REWARDS_READ = "rewards:read"
    REDEEM = "rewards:redeem"
    VOUCHERS_READ = "vouchers:read"
    VOUCHERS_USE = "vouchers:use"
    VOUCHERS_CANCEL = "vouchers:cancel"
    POINTS_ADJUST = "points:adjust"
    TIERS_OVERRIDE = "tiers:override"  # staff put a member into a tier by hand, with a reason
    LEDGER_VERIFY = "ledger:verify"
    JOBS_RUN = "jobs:run"
    API_KEYS_MANAGE = "api_keys:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    POS_SCAN = "pos:scan"
    MEMBERS_PRIVACY = "members:privacy"  # GDPR export and erasure, merging members
    DONATIONS_READ = "donations:read"  # the donation report
    REFERRALS_REVIEW = "referrals:review"  # approve or reject referrals held as suspicious
    MEMBERSHIPS_WRITE = "memberships:write"  # report membership payments, cancel
    WALLET_CREDIT = "wallet:credit"  # store credit and goodwill into a member's wallet
    WALLET_PAY = "wallet:pay"  # pay with the wallet at the till (at once, or hold/capture/void)
    REPORTS_READ = "reports:read"  # programme KPIs such as membership revenue and dividends
    DATA_IMPORT = "data:import"  # bulk import of members and activities (CSV), status, report
    DATA_EXPORT = "data:export"  # bulk export of a programme's members, balances, lots, ...
    # a member token's own account (/v1/me…); no API key or staff user has these
    ME_READ = "me:read"
    ME_QR_TOKEN = "me:qr_token"  # noqa: S105 - a permission name, not a secret
    # a shop's backend gets a short-lived, read-only member token for the website widget
    MEMBERS_TOKEN = "members:token"  # noqa: S105 - a permission name, not a secret


class StaffRole(StrEnum):
    OWNER = "owner"  # everything an admin key may do
    MANAGER = "manager"  # an admin minus API key management
    CASHIER = "cashier"  # what a till's pos key may do


P = Permission
MEMBER_PERMISSIONS = frozenset({P.ME_READ, P.ME_QR_TOKEN})
WIDGET_PERMISSIONS = frozenset({P.ME_READ})  # a widget token: read the account, nothing else
_READS = frozenset(
    {
        P.PROGRAMMES_READ,
        P.MEMBERS_LIST,
        P.MEMBERS_READ,
        P.MEMBERS_LOOKUP,
        P.BALANCES_READ,
        P.ACTIVITIES_READ,
        P.REWARDS_READ,
        P.VOUCHERS_READ,
        P.DONATIONS_READ,
        P.REPORTS_READ,
    }
)
SCOPE_PERMISSIONS: dict[Scope, frozenset[Permission]] = {
    Scope.ADMIN: frozenset(Permission) - MEMBER_PERMISSIONS,
    Scope.INTEGRATION: _READS
    | {
        P.MEMBERS_WRITE,
        P.PURCHASES_WRITE,
        P.ACTIVITIES_WRITE,
        P.SIMULATE,
        P.REDEEM,
        P.VOUCHERS_USE,
        P.VOUCHERS_CANCEL,
        P.WEBHOOKS_MANAGE,
        P.POS_SCAN,
        P.MEMBERSHIPS_WRITE,
        P.WALLET_CREDIT,
        P.WALLET_PAY,
        P.MEMBERS_TOKEN,
    },
    Scope.POS: frozenset(
        {
            P.MEMBERS_LOOKUP,
            P.BALANCES_READ,
            P.REWARDS_READ,
            P.PURCHASES_WRITE,
            P.REDEEM,
            P.VOUCHERS_USE,
            P.POS_SCAN,
            P.WALLET_PAY,
        }
    ),
    Scope.READ: _READS,
}


ROLE_PERMISSIONS: dict[StaffRole, frozenset[Permission]] = {
    StaffRole.OWNER: SCOPE_PERMISSIONS[Scope.ADMIN],
    StaffRole.MANAGER: SCOPE_PERMISSIONS[Scope.ADMIN] - {P.API_KEYS_MANAGE},
    StaffRole.CASHIER: SCOPE_PERMISSIONS[Scope.POS],
}


def allows(scope: Scope, permission: Permission) -> bool:
    return permission in SCOPE_PERMISSIONS[scope]


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of a tenant (perhaps bound to one store: a till), a staff
    user's session (``role``) or a member's token (``member_id``; ``programme_id`` is theirs).
    ``key_id`` names the credential's owner: the API key, the staff user or the member."""

    key_id: str
    tenant_id: str
    scope: Scope | None  # API keys only
    store_id: str | None = None
    store_key: str | None = None
    programme_id: str | None = None  # the store's programme, for a store-bound key
    role: StaffRole | None = None
    member_id: str | None = None
    widget: bool = False  # a member's widget token: read only

    def allows(self, permission: Permission) -> bool:
        if self.member_id is not None:
            return permission in (WIDGET_PERMISSIONS if self.widget else MEMBER_PERMISSIONS)
        if self.role is not None:
            return permission in ROLE_PERMISSIONS[self.role]
        return self.scope is not None and allows(self.scope, permission)

    @property
    def is_api_key(self) -> bool:
        return self.scope is not None

    @property
    def label(self) -> str:
        """``a pos key``, ``a cashier``, ``a member``: for messages."""
        if self.member_id is not None:
            return "a member"
        return f"a {self.role}" if self.role is not None else f"a {self.scope} key"


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_id: str
    name: str
    scope: Scope
    store_id: str | None
    last4: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class NewToken:
    key_id: str
    token: str
    hash: str


def new_token() -> NewToken:
    ulid = str(ULID())
    token = f"{TOKEN_PREFIX}{ulid}_{secrets.token_urlsafe(32)}"
    return NewToken(KEY_ID_PREFIX + ulid, token, hash_token(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str:
    """The key id a token names; raises :class:`Unauthenticated` for anything malformed."""
    body = token.removeprefix(TOKEN_PREFIX)
    if (
        body == token
        or len(body) < _ULID_LENGTH + 2
        or body[_ULID_LENGTH] != "_"
        or not body[:_ULID_LENGTH].isalnum()
    ):
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "malformed API key")
    return KEY_ID_PREFIX + body[:_ULID_LENGTH]


def token_matches(token: str, stored_hash: str) -> bool:
    # constant-time comparison: the hash must not leak byte by byte through response times
    return hmac.compare_digest(hash_token(token), stored_hash)
