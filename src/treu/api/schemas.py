"""Request and response bodies of the API (``XCreate`` in, ``XRead`` out).

Requests forbid unknown fields: nobody can slip a balance, a tier or a tenant into a body.
Money goes out as ``{"amount": "5.00", "currency": "EUR"}`` (a decimal string), points as
integers, instants as RFC 3339 in UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from treu.activities.model import ActionIn, ExternalId, PurchaseIn
from treu.api.schemas_stamps import StampCardRead
from treu.api.schemas_tiers import TierSummaryRead
from treu.auth.model import ApiKey, Scope
from treu.ledger.model import Balances
from treu.ledger.service import HistoryEntry, LotLine
from treu.mechanics.model import Effect
from treu.members.model import Channel, IdentifierKind, Member
from treu.rewards.service import RewardLine, VoucherView
from treu.webhooks.model import Delivery, Endpoint

T = TypeVar("T")
MEMBER_REF = "A member id (mbr_…) or kind:value (email:…, phone:…, card:…, external:…)"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    pass


class Page(_Out, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    next_starting_after: str | None = Field(
        description="Pass as starting_after to get the next page (null on the last page)"
    )


class Money(_Out):
    amount: Decimal
    currency: str


# --- programmes ----------------------------------------------------------------------------


class ProgrammeRead(_Out):
    object: Literal["programme"] = "programme"
    id: str
    key: str
    name: str
    currency: str
    timezone: str
    locale: str
    revision_id: str | None
    document: dict[str, Any] | None = None


class ProgrammeApplied(_Out):
    object: Literal["programme_revision"] = "programme_revision"
    programme_id: str
    key: str
    revision: int
    created: bool
    changed: bool


class StoreRead(_Out):
    object: Literal["store"] = "store"
    id: str
    key: str
    name: str
    channel: str


# --- members -------------------------------------------------------------------------------


class MemberCreate(_In):
    identifiers: dict[IdentifierKind, str] = Field(min_length=1, max_length=5)
    name: str | None = Field(default=None, max_length=200)
    birthday: date | None = None
    locale: str | None = Field(default=None, max_length=16)
    attributes: dict[str, str | int | bool] = Field(default_factory=dict, max_length=50)
    consents: dict[Channel, bool] = Field(default_factory=dict)
    referral_code: str | None = Field(
        default=None, min_length=1, max_length=32, description="the code of the friend who referred"
    )
    client_address: str | None = Field(
        default=None,
        max_length=100,
        description="the customer's IP address or device id as the shop saw it (referral fraud "
        "checks; only a hash is kept). The request's own address is the shop's server's.",
    )


class MemberUpdate(_In):
    name: str | None = Field(default=None, max_length=200)
    birthday: date | None = None
    locale: str | None = Field(default=None, max_length=16)
    attributes: dict[str, str | int | bool] | None = Field(default=None, max_length=50)


class MemberErase(_In):
    reason: str = Field(min_length=1, max_length=500, description="why, for the audit trail")
    confirm: str = Field(
        min_length=1, max_length=64, description="the member's id again: erasure cannot be undone"
    )


class ErasureRead(_Out):
    object: Literal["erasure"] = "erasure"
    member_id: str
    points_given_up: int


class MemberMerge(_In):
    merge: str = Field(
        min_length=1, max_length=64, description="id of the member merged into this one"
    )


class MemberRead(_Out):
    object: Literal["member"] = "member"
    id: str
    programme_id: str
    status: str
    name: str | None
    birthday: date | None
    locale: str | None
    enrolled_at: datetime
    first_purchase_at: datetime | None
    last_activity_at: datetime | None
    attributes: dict[str, Any]
    identifiers: dict[str, str]
    consents: dict[str, bool]

    @classmethod
    def of(cls, m: Member) -> MemberRead:
        return cls(
            id=m.id,
            programme_id=m.programme_id,
            status=m.status.value,
            name=m.name,
            birthday=m.birthday,
            locale=m.locale,
            enrolled_at=m.enrolled_at,
            first_purchase_at=m.first_purchase_at,
            last_activity_at=m.last_activity_at,
            attributes=m.attributes,
            # a payment identifier is a keyed hash: of no use to anyone outside
            identifiers={k: v for k, v in m.identifiers.items() if k != "payment"},
            consents=m.consents,
        )


class BalancesRead(_Out):
    object: Literal["balances"] = "balances"
    member_id: str
    available: int
    pending: int
    held: int
    negative: int
    lifetime_earned: int
    spent: int
    expired: int
    reversed: int

    @classmethod
    def of(cls, member_id: str, b: Balances) -> BalancesRead:
        return cls(
            member_id=member_id,
            available=b.available,
            pending=b.pending,
            held=b.held,
            negative=b.negative,
            lifetime_earned=b.lifetime_earned,
            spent=b.spent,
            expired=b.expired,
            reversed=b.reversed,
        )


class HistoryEntryRead(_Out):
    object: Literal["history_entry"] = "history_entry"
    id: str
    kind: str
    posted_at: datetime
    points: int
    pending: bool
    activity_id: str | None
    activity_external_id: str | None
    explanations: list[str]
    reason: str | None
    unit: str = Field(default="points", description="points, stamps or wallet (minor units)")

    @classmethod
    def of(cls, e: HistoryEntry) -> HistoryEntryRead:
        return cls(
            id=e.transfer_id,
            kind=e.kind,
            posted_at=e.posted_at,
            points=e.points,
            pending=e.pending,
            activity_id=e.activity_id,
            activity_external_id=e.activity_external_id,
            explanations=e.explanations,
            reason=e.reason,
            unit=e.unit,
        )


class LotRead(_Out):
    object: Literal["lot"] = "lot"
    id: str
    amount: int
    remaining: int
    status: str
    earned_at: datetime
    activates_at: datetime | None
    expires_at: datetime | None
    expires_on: date | None
    activity_id: str | None

    @classmethod
    def of(cls, lot: LotLine) -> LotRead:
        return cls(
            id=lot.id,
            amount=lot.amount,
            remaining=lot.remaining,
            status=lot.status,
            earned_at=lot.earned_at,
            activates_at=lot.activates_at,
            expires_at=lot.expires_at,
            expires_on=lot.expires_on,
            activity_id=lot.activity_id,
        )


# --- activities ----------------------------------------------------------------------------


class PurchaseCreate(PurchaseIn):
    """A purchase (lines or a bare total, discounts, tax, payments) and who made it: ``member``,
    or nobody for a guest purchase that a member can claim later."""

    member: str | None = Field(default=None, min_length=1, max_length=320, description=MEMBER_REF)


class ActionCreate(ActionIn):
    member: str = Field(min_length=1, max_length=320, description=MEMBER_REF)


class SimulationCreate(PurchaseIn):
    external_id: ExternalId = "simulation"
    member: str | None = Field(default=None, min_length=1, max_length=320, description=MEMBER_REF)


class ClaimCreate(_In):
    member: str = Field(min_length=1, max_length=320, description=MEMBER_REF)
    external_id: ExternalId


class AwardRead(_Out):
    rule_key: str
    points: int
    explanation: str


class EffectRead(_Out):
    """Something an activity did beyond its points: stamps, a full card, a tier, a voucher."""

    mechanic: str = Field(description="stamps, tiers, campaigns, referrals, memberships, wallet")
    kind: str = Field(description="stable, e.g. stamps.earned, card.completed, tier.upgraded")
    explanation: str
    unit: str | None = Field(default=None, description="the ledger unit it changed, if any")
    amount: int | None = Field(default=None, description="stamps, or wallet minor units")
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, e: Effect) -> EffectRead:
        return cls(
            mechanic=e.mechanic,
            kind=e.kind,
            explanation=e.explanation,
            unit=e.unit,
            amount=e.amount,
            data=e.data,
        )


class ActivityRead(_Out):
    object: Literal["activity"] = "activity"
    id: str
    type: str
    external_id: str
    member_id: str | None
    points: int
    awards: list[AwardRead]
    effects: list[EffectRead] = Field(default_factory=list)
    replayed: bool


class SimulationRead(_Out):
    object: Literal["simulation"] = "simulation"
    points: int
    awards: list[AwardRead]


# --- rewards and vouchers ------------------------------------------------------------------


class RewardRead(_Out):
    object: Literal["reward"] = "reward"
    id: str
    key: str
    name: str
    kind: str
    cost: int | None = Field(description="points; null: only given, never bought")
    stock: int | None
    value: Money | None = None
    percent: Decimal | None = None
    sku: str | None = None
    description: str | None = None
    per_member_limit: int | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    voucher_valid_days: int | None = None

    @classmethod
    def of(cls, r: RewardLine, currency: str) -> RewardRead:
        d = r.definition
        value = d.get("value")
        return cls(
            id=r.id,
            key=r.key,
            name=r.name,
            kind=r.kind,
            cost=r.cost,
            stock=r.stock,
            value=Money(amount=Decimal(str(value)), currency=currency) if value else None,
            percent=Decimal(str(d["percent"])) if d.get("percent") is not None else None,
            sku=d.get("sku"),
            description=d.get("description"),
            per_member_limit=d.get("per_member_limit"),
            available_from=d.get("available_from"),
            available_until=d.get("available_until"),
            voucher_valid_days=d.get("voucher_valid_days"),
        )


class RedemptionCreate(_In):
    reward: str = Field(min_length=1, max_length=64, description="reward key")


class VoucherRead(_Out):
    object: Literal["voucher"] = "voucher"
    id: str
    code: str
    status: str
    member_id: str
    reward_key: str
    reward_name: str
    issued_at: datetime
    expires_at: datetime | None
    used_at: datetime | None

    @classmethod
    def of(cls, v: VoucherView) -> VoucherRead:
        return cls(
            id=v.id,
            code=v.code,
            status=v.status.value,
            member_id=v.member_id,
            reward_key=v.reward_key,
            reward_name=v.reward_name,
            issued_at=v.issued_at,
            expires_at=v.expires_at,
            used_at=v.used_at,
        )


class RedemptionRead(_Out):
    object: Literal["redemption"] = "redemption"
    id: str
    points: int
    voucher: VoucherRead
    replayed: bool


class VoucherCancel(_In):
    reason: str = Field(default="cancelled via the API", min_length=1, max_length=500)


class AdjustmentCreate(_In):
    points: int = Field(ge=-100_000_000, le=100_000_000, description="non-zero; negative takes")
    reason: str = Field(min_length=1, max_length=500)
    corrects: str | None = Field(
        default=None,
        max_length=64,
        description="id of the member's transfer this corrects (at most once per transfer)",
    )


class AdjustmentRead(_Out):
    object: Literal["adjustment"] = "adjustment"
    transfer_id: str
    member_id: str
    points: int


# --- admin ---------------------------------------------------------------------------------


class VerificationRead(_Out):
    object: Literal["ledger_verification"] = "ledger_verification"
    ok: bool
    checked: dict[str, int]
    problems: dict[str, list[str]]
    transfers: int
    lots: int


# A day the jobs can compute with: their instants (a day before, months after) must exist.
JobDay = Annotated[date, Field(ge=date(1970, 1, 1), le=date(2999, 12, 31))]


class NightlyRunCreate(_In):
    date: JobDay
    programme: str | None = Field(default=None, max_length=64, description="programme key")


class StepRead(_Out):
    programme_id: str
    step: str
    processed: int
    skipped: bool


class NightlyRunRead(_Out):
    object: Literal["nightly_run"] = "nightly_run"
    date: date
    steps: list[StepRead]


class ApiKeyCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    scope: Scope
    store: str | None = Field(default=None, max_length=64, description="store key (pos only)")
    programme: str | None = Field(default=None, max_length=64)


class ApiKeyRotate(_In):
    grace_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)


class ApiKeyRead(_Out):
    object: Literal["api_key"] = "api_key"
    id: str
    name: str
    scope: str
    store_id: str | None
    last4: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    token: str | None = Field(default=None, description="Shown once, when created or rotated")

    @classmethod
    def of(cls, k: ApiKey, token: str | None = None) -> ApiKeyRead:
        return cls(
            id=k.id,
            name=k.name,
            scope=k.scope.value,
            store_id=k.store_id,
            last4=k.last4,
            created_at=k.created_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
            token=token,
        )


# --- webhooks ------------------------------------------------------------------------------


class WebhookEndpointCreate(_In):
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL that gets the POSTs")
    event_types: list[str] = Field(
        default=["*"], min_length=1, max_length=50, description='Event types, or ["*"] for all'
    )
    description: str | None = Field(default=None, max_length=200)
    enabled: bool = True


class WebhookEndpointUpdate(_In):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=200, description='"" removes it')
    enabled: bool | None = None


class WebhookEndpointRead(_Out):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: str
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="The signing secret: shown once, when the endpoint is created"
    )

    @classmethod
    def of(cls, e: Endpoint, secret: str | None = None) -> WebhookEndpointRead:
        return cls(
            id=e.id,
            url=e.url,
            event_types=list(e.event_types),
            description=e.description,
            enabled=e.enabled,
            created_at=e.created_at,
            updated_at=e.updated_at,
            secret=secret,
        )


class WebhookEndpointDeleted(_Out):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: str
    deleted: Literal[True] = True


class WebhookAttemptRead(_Out):
    object: Literal["webhook_attempt"] = "webhook_attempt"
    id: str
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    succeeded: bool


class WebhookDeliveryRead(_Out):
    object: Literal["webhook_delivery"] = "webhook_delivery"
    id: str
    endpoint_id: str
    event_id: str = Field(description="The event's id: the same in every attempt, for deduping")
    event_type: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[WebhookAttemptRead] | None = Field(
        default=None, description="Every attempt, oldest first (on a single delivery only)"
    )

    @classmethod
    def of(cls, d: Delivery, with_log: bool = False) -> WebhookDeliveryRead:
        log = [
            WebhookAttemptRead(
                id=a.id,
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
                succeeded=a.succeeded,
            )
            for a in d.log
        ]
        return cls(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status.value,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_attempt_at=d.last_attempt_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            log=log if with_log else None,
        )


# --- the till ------------------------------------------------------------------------------


class PosScanCreate(_In):
    token: str = Field(
        min_length=1,
        max_length=320,
        description="What the till scanned: a card number, an identifier as kind:value, or a "
        "member's QR token from the portal (tqr1.…)",
    )
    programme: str | None = Field(
        default=None, max_length=64, description="programme key (only for a key without a store)"
    )


class PosPurchaseCreate(PurchaseIn):
    """A purchase at the till, for the member behind ``token`` (none: a guest purchase)."""

    token: str | None = Field(
        default=None, min_length=1, max_length=320, description="what the till scanned, if any"
    )
    programme: str | None = Field(
        default=None, max_length=64, description="programme key (only for a key without a store)"
    )


class PosRedeemCreate(PosScanCreate):
    reward: str = Field(min_length=1, max_length=64, description="reward key")


class MembershipPerksRead(_Out):
    """A membership as the till shows it: the plan, whether its perks apply, and which."""

    plan: str
    name: str
    status: str = Field(description="active, past_due, cancelled (until paid_until), expired")
    perks: list[str] = Field(description='e.g. "10 % on Classes", "free shipping"')
    free_shipping: bool


class MemberSummaryRead(_Out):
    """What a till shows after a scan: who it is, what they have, what they can use now."""

    object: Literal["member_summary"] = "member_summary"
    member_id: str
    programme_id: str
    name: str | None
    status: str = Field(
        description="active or blocked (a blocked member neither earns nor redeems)"
    )
    balances: BalancesRead
    vouchers: list[VoucherRead] = Field(description="Vouchers usable now, soonest expiry first")
    stamp_cards: list[StampCardRead] = Field(
        default_factory=list, description="The current card of every stamp card type ('3/10')"
    )
    tier: TierSummaryRead | None = Field(
        default=None, description="The member's tier and its perks (none: no tiers)"
    )
    memberships: list[MembershipPerksRead] = Field(
        default_factory=list, description="Memberships whose perks apply now"
    )
    wallet: Money | None = Field(default=None, description="Wallet money available to pay with")


# --- member log-in, the member's own account, staff sessions --------------------------------


class LoginCodeCreate(_In):
    programme: str = Field(
        min_length=1, max_length=64, description="programme id (prg_…), or its key with tenant"
    )
    tenant: str | None = Field(
        default=None, max_length=64, description="tenant key (when programme is a key)"
    )
    identifier: str = Field(
        min_length=1,
        max_length=320,
        description="the member's e-mail address or phone number (email:…, phone:…, or bare)",
    )


class LoginCodeRequested(_Out):
    object: Literal["login_code_request"] = "login_code_request"
    expires_in: int = Field(description="seconds a code sent now stays valid")


class MemberTokenCreate(LoginCodeCreate):
    code: str = Field(pattern=r"^[0-9]{6}$", description="the 6-digit code the member received")


class WidgetTokenCreate(_In):
    minutes: int = Field(
        default=15, ge=1, le=60, description="how long the token lives: the page view's length"
    )


class MemberTokenRead(_Out):
    object: Literal["member_token"] = "member_token"
    token: str = Field(description="send as Authorization: Bearer …")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme, not a secret
    member_id: str
    programme_id: str
    expires_at: datetime


class QrTokenRead(_Out):
    object: Literal["qr_token"] = "qr_token"
    token: str = Field(description="show as a QR code; the till sends it to POST /v1/pos/scan")
    expires_at: datetime
    refresh_in: int = Field(description="seconds until a fresh token should be fetched")


class StaffLoginCreate(_In):
    tenant: str = Field(min_length=1, max_length=64, description="tenant key")
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class StaffSessionRead(_Out):
    object: Literal["staff_session"] = "staff_session"
    token: str = Field(description="send as Authorization: Bearer …")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme, not a secret
    staff_user_id: str
    role: str = Field(description="owner, manager or cashier")
    expires_at: datetime


class PosPurchaseRead(_Out):
    """The purchase as recorded, and the member's summary after it (none for a guest)."""

    object: Literal["pos_purchase"] = "pos_purchase"
    activity: ActivityRead
    member: MemberSummaryRead | None


class PosRedemptionRead(_Out):
    """A reward redeemed and its voucher used at once, and the member's summary after it."""

    object: Literal["pos_redemption"] = "pos_redemption"
    redemption: RedemptionRead
    member: MemberSummaryRead
