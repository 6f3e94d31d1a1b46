"""The programme document: a whole loyalty programme as one validated piece of data.

``treu programme apply FILE`` reads YAML or JSON into :class:`ProgrammeDocument`; every error
names its field path (``rules.0.effect.points: Input should be greater than 0``). An applied
document becomes an immutable revision; :class:`Programme` is the runtime view of one revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_name
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from treu.activities.model import EarningBase
from treu.automations.model import BUILTIN_SEGMENTS, AutomationDef, check_references
from treu.campaigns.model import CampaignSettings
from treu.donations.model import CharityDef
from treu.errors import ErrorCode, InvalidInput
from treu.ledger.model import ExpiryPolicy, PendingPolicy, ReturnPolicy
from treu.memberships.model import PlanDef
from treu.messaging.catalogue import BUILT_IN_KEYS
from treu.messaging.model import MessagingSettings, Templates
from treu.referrals.model import ReferralSettings
from treu.rewards.model import RewardDef
from treu.rules.model import Rounding, Rule
from treu.segments.model import SegmentDef, check_segments
from treu.stamps.model import StampCardDef
from treu.tiers.model import TierSettings
from treu.wallet.model import WalletSettings

Key = str


class StoreDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    channel: Literal["pos", "online", "app", "other"] = "pos"


class WidgetSettings(BaseModel):
    """The website widget (docs/web.md): the shop sites allowed to show it. A browser on any
    other site gets no CORS permission to read a member's account with a token it got hold of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origins: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ORIGIN.fullmatch(value):
                raise ValueError(
                    f"{value!r} is not an origin such as https://shop.example (scheme, host and "
                    "port only, no path or trailing slash)"
                )
        return [v.lower() for v in values]


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class ProgrammeDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str
    locale: str = "en"
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="phone numbers")
    point_name: str = Field(default="points", min_length=1, max_length=50)
    point_value: Decimal = Field(default=Decimal("0.01"), ge=0, description="money per point")
    rounding: Rounding = Rounding.FLOOR
    earning_base: EarningBase = Field(default_factory=EarningBase)
    pending: PendingPolicy = Field(default_factory=PendingPolicy)
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    returns: ReturnPolicy = Field(default_factory=ReturnPolicy)
    # How late a purchase may be sent (a till that was offline): older ones are refused with
    # activity_too_old. None: no limit (imports and shop webhooks are never limited).
    offline_window_hours: int | None = Field(default=None, ge=1, le=24 * 366)
    # What a till may do with a printed card number (or any typed identifier) instead of the
    # portal's rotating QR code: earn only (a number can be copied), or also spend (redeem
    # rewards, pay from the wallet).
    static_cards: Literal["earn_only", "earn_and_spend"] = "earn_only"
    stores: list[StoreDef] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    rewards: list[RewardDef] = Field(default_factory=list)
    tiers: TierSettings | None = None
    stamp_cards: list[StampCardDef] = Field(default_factory=list)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    memberships: list[PlanDef] = Field(default_factory=list)
    wallet: WalletSettings = Field(default_factory=WalletSettings)
    referral: ReferralSettings | None = None
    charities: list[CharityDef] = Field(default_factory=list)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    templates: Templates = Field(default_factory=list)
    segments: list[SegmentDef] = Field(default_factory=list)
    automations: list[AutomationDef] = Field(default_factory=list)
    widget: WidgetSettings = Field(default_factory=WidgetSettings)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # 'Europe': a directory
            raise ValueError(f"{value!r} is not an IANA timezone such as Europe/Berlin") from exc
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if get_currency_name(value, locale="en") == value:
            raise ValueError(f"{value!r} is not an ISO 4217 currency")
        return value

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value, sep="-" if "-" in value else "_")
        except (UnknownLocaleError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a locale such as de or pt-BR") from exc
        return value

    def export(self) -> dict[str, Any]:
        """The document as data that parses back the same (JSON-ready, by alias).

        Only what was set: dropping the fields equal to their defaults would also drop a
        discriminator such as ``earn.type: per_unit``, and the export would not parse.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    @model_validator(mode="after")
    def _keys_unique(self) -> ProgrammeDocument:
        keyed: tuple[tuple[str, list[str]], ...] = (
            ("stores", [s.key for s in self.stores]),
            ("rules", [r.key for r in self.rules]),
            ("rewards", [r.key for r in self.rewards]),
            ("charities", [c.key for c in self.charities]),
            ("stamp_cards", [c.key for c in self.stamp_cards]),
            ("memberships", [p.key for p in self.memberships]),
            ("wallet.cashback", [c.key for c in self.wallet.cashback]),
        )
        for name, keys in keyed:
            seen: set[str] = set()
            for index, key in enumerate(keys):
                if key in seen:
                    raise ValueError(f"{name}.{index}.key: {key!r} is used twice")
                seen.add(key)
        store_keys = {s.key for s in self.stores}
        for i, rule in enumerate(self.rules):
            unknown = set(rule.when.stores) - store_keys
            if unknown:
                raise ValueError(f"rules.{i}.when.stores: unknown store {sorted(unknown)[0]!r}")
        _check_donation_rewards(self)
        _check_referral_rewards(self)
        _check_given_rewards(self)
        _check_reward_tiers(self)
        _check_plans_named(self)
        tier_keys = self.tiers.keys() if self.tiers else ()
        check_segments(self.segments, tier_keys, [p.key for p in self.memberships])
        _check_automations(self)
        return self


def _check_automations(doc: ProgrammeDocument) -> None:
    """Automations name rewards, stamp cards, tiers, segments and templates the document has
    (or that are built in)."""
    check_references(
        doc.automations,
        rewards={r.key for r in doc.rewards},
        cards={c.key for c in doc.stamp_cards},
        tiers=set(doc.tiers.keys()) if doc.tiers else set(),
        segments=BUILTIN_SEGMENTS | {s.key for s in doc.segments},
        templates=set(BUILT_IN_KEYS) | {t.key for t in doc.templates},
    )


def _check_plans_named(doc: ProgrammeDocument) -> None:
    """Rules, cashback and rewards for members of some plans name plans the document offers."""
    known = {p.key for p in doc.memberships}
    named = [(f"rules.{i}.when.memberships", r.when.memberships) for i, r in enumerate(doc.rules)]
    named += [
        (f"wallet.cashback.{i}.memberships", c.memberships)
        for i, c in enumerate(doc.wallet.cashback)
    ]
    named += [(f"rewards.{i}.memberships", r.memberships) for i, r in enumerate(doc.rewards)]
    for path, plans in named:
        unknown = [p for p in plans if p not in known]
        if unknown:
            raise ValueError(f"{path}: unknown membership plan {unknown[0]!r}")


def _check_reward_tiers(doc: ProgrammeDocument) -> None:
    """A reward for some tiers names tiers the programme has."""
    known = set(doc.tiers.keys()) if doc.tiers else set()
    for i, reward in enumerate(doc.rewards):
        named = [*reward.tiers, *([reward.min_tier] if reward.min_tier else [])]
        unknown = [t for t in named if t not in known]
        if unknown:
            field = "min_tier" if unknown[0] == reward.min_tier else "tiers"
            raise ValueError(f"rewards.{i}.{field}: unknown tier {unknown[0]!r}")


def _check_given_rewards(doc: ProgrammeDocument) -> None:
    """A full stamp card and a campaign give a voucher of a reward the document lists."""
    known = {r.key for r in doc.rewards}
    given = [(f"stamp_cards.{i}.reward", c.reward) for i, c in enumerate(doc.stamp_cards)]
    for path, key in [*given, *doc.campaigns.reward_keys()]:
        if key not in known:
            raise ValueError(f"{path}: unknown reward {key!r}")


def _check_referral_rewards(doc: ProgrammeDocument) -> None:
    """A referral's voucher is of a reward the document lists."""
    known = {r.key for r in doc.rewards}
    for side in ("referrer_reward", "friend_reward"):
        given = getattr(doc.referral, side, None)
        if given is not None and given.reward is not None and given.reward not in known:
            raise ValueError(f"referral.{side}.reward: unknown reward {given.reward!r}")


def _check_donation_rewards(doc: ProgrammeDocument) -> None:
    """A donation reward names a listed charity, and each charity has one rate."""
    charities = {c.key for c in doc.charities}
    rated: set[str] = set()
    for i, reward in enumerate(doc.rewards):
        if reward.charity is None:
            continue
        if reward.charity not in charities:
            raise ValueError(f"rewards.{i}.charity: unknown charity {reward.charity!r}")
        if reward.charity in rated:
            raise ValueError(f"rewards.{i}.charity: {reward.charity!r} already has a donation")
        rated.add(reward.charity)


@dataclass(frozen=True)
class DocumentError:
    """One problem of a document: where (``rules.0.effect.points``), pydantic's message, and
    its kind and context (``greater_than``, ``{"gt": 0}``) so that a form can say it in the
    reader's language; ``value_error`` for the document's own checks."""

    path: str
    message: str
    kind: str = "value_error"
    context: dict[str, Any] = field(default_factory=dict)


def check_document(data: Any) -> tuple[ProgrammeDocument | None, list[DocumentError]]:
    """The document, or every error with its field path (never both)."""
    try:
        return ProgrammeDocument.model_validate(data), []
    except ValidationError as exc:
        return None, [
            _error(err["loc"], err["msg"], err["type"], err.get("ctx"), data)
            for err in exc.errors()
        ]


def parse_document(data: Any) -> ProgrammeDocument:
    """Validate a loaded YAML/JSON document; errors name their field paths."""
    doc, found = check_document(data)
    if doc is None:
        errors = [{"path": e.path, "message": e.message} for e in found]
        summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        raise InvalidInput(
            ErrorCode.INVALID_PROGRAMME, f"invalid programme document: {summary}", errors=errors
        ) from None
    return doc


_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$")


def _error(
    loc: tuple[int | str, ...], message: str, kind: str, ctx: Any, data: Any
) -> DocumentError:
    context = {k: v for k, v in (ctx or {}).items() if k != "error"}
    # Checks across a section (duplicate keys, unknown stores, tiers in order) carry the path
    # below that section in their message: ``levels.1.threshold: thresholds must increase``.
    head, sep, rest = message.removeprefix("Value error, ").partition(": ")
    if sep and _PATH.match(head) and (not loc or message.startswith("Value error, ")):
        path = ".".join(p for p in (_path(loc, data) if loc else "", head) if p)
        return DocumentError(path, rest, kind, context)
    return DocumentError(_path(loc, data), message, kind, context)


def _path(loc: tuple[int | str, ...], data: Any) -> str:
    """The error's path in the document as written: pydantic puts the tag of a discriminated
    union into ``loc`` (``rules.0.effect.per_amount.points``), the document has no such field."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "(document)"


@dataclass(frozen=True)
class Programme:
    """A programme as the services use it: its identity plus the revision in force."""

    id: str
    tenant_id: str
    revision_id: str
    document: ProgrammeDocument

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.document.timezone)

    @property
    def currency(self) -> str:
        return self.document.currency

    def local_time(self, at: datetime) -> datetime:
        """Wall-clock time in the programme's timezone, without tzinfo (for rule matching)."""
        return at.astimezone(self.tz).replace(tzinfo=None)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def rule(self, key: str) -> Rule | None:
        return next((r for r in self.document.rules if r.key == key), None)
