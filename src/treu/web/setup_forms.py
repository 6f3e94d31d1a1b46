"""The sections of the programme document that the console edits as forms.

A :class:`Section` is a place in the document (``rules``, ``tiers.levels``, ``expiry``), a list
of items with a ``key`` or one mapping, and the :class:`Input` fields its form shows. A field is
a dotted path inside the item (``effect.points``). What the form does not show stays in an
"advanced" YAML text area for that one item, so no option of the document is lost by editing.

Everything here is pure: turn an item into form values and back, put an item into the document,
and say which field a validation error belongs to. The routes (``console_setup``) load, validate
with the document's own model and apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from treu.programmes.model import DocumentError

Kind = Literal["text", "int", "decimal", "date", "select", "list", "bool"]


def N_(message: str) -> str:
    """Marks a message for the catalogue; the template translates it."""
    return message


@dataclass(frozen=True)
class Input:
    name: str  # dotted path inside the item
    label: str  # English msgid
    kind: Kind = "text"
    choices: tuple[str, ...] = ()
    hint: str | None = None
    # shown (and sent) only when another field has one of these values
    only_if: tuple[str, tuple[str, ...]] | None = None

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


@dataclass(frozen=True)
class Section:
    slug: str
    title: str  # English msgid
    path: tuple[str, ...]  # where in the document
    many: bool
    inputs: tuple[Input, ...]
    columns: tuple[str, ...] = ()  # inputs shown in the overview's table
    removable: bool = False  # a single section that may be switched off (``referral``)
    kept: tuple[str, ...] = ()  # keys of the item another section edits (tiers' ``levels``)
    preview: bool = False  # the form has a basket preview

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)


_KEY_HINT = N_("Lower-case letters, digits, - and _; used by the API and in reports.")
_LIST_HINT = N_("Separated by commas.")
_EARNING = ("per_amount", "fixed", "bonus")

RULES = Section(
    "rules",
    N_("Earning rules"),
    ("rules",),
    many=True,
    preview=True,
    columns=("name", "effect.type", "effect.points", "effect.factor"),
    inputs=(
        Input("key", N_("Key"), hint=_KEY_HINT),
        Input("name", N_("Name")),
        Input(
            "effect.type", N_("Effect"), "select", ("per_amount", "fixed", "multiplier", "bonus")
        ),
        Input("effect.points", N_("Points"), "int", only_if=("effect.type", _EARNING)),
        Input(
            "effect.per",
            N_("Per amount spent"),
            "decimal",
            hint=N_("e.g. 1.00: the points are given per this much money."),
            only_if=("effect.type", ("per_amount",)),
        ),
        Input("effect.factor", N_("Factor"), "decimal", only_if=("effect.type", ("multiplier",))),
        Input("when.activity", N_("Earned on"), "select", ("purchase", "action")),
        Input(
            "when.action_types",
            N_("Action types"),
            "list",
            hint=_LIST_HINT,
            only_if=("when.activity", ("action",)),
        ),
        Input("when.min_spend", N_("Minimum spend"), "decimal"),
        Input("when.include.categories", N_("Only these categories"), "list", hint=_LIST_HINT),
        Input("when.include.skus", N_("Only these SKUs"), "list", hint=_LIST_HINT),
        Input("when.exclude.categories", N_("Not these categories"), "list", hint=_LIST_HINT),
        Input("when.weekdays", N_("Weekdays"), "list", hint=N_("e.g. mon, tue; empty: every day")),
        Input("when.valid_from", N_("Valid from"), "date"),
        Input("when.valid_until", N_("Valid until (inclusive)"), "date"),
        Input("priority", N_("Priority"), "int", hint=N_("Higher runs first; 0 by default.")),
        Input("stacking", N_("Stacking"), "select", ("stack", "exclusive")),
        Input("caps.per_activity", N_("At most per purchase"), "int"),
    ),
)

REWARDS = Section(
    "rewards",
    N_("Rewards"),
    ("rewards",),
    many=True,
    columns=("name", "kind", "cost"),
    inputs=(
        Input("key", N_("Key"), hint=_KEY_HINT),
        Input("name", N_("Name")),
        Input(
            "kind",
            N_("Kind"),
            "select",
            (
                "free_product",
                "fixed_discount",
                "percentage_discount",
                "free_shipping",
                "experience",
                "custom",
            ),
        ),
        Input("cost", N_("Cost in points"), "int", hint=N_("Empty: only given, never bought.")),
        Input("value", N_("Value (money off)"), "decimal", only_if=("kind", ("fixed_discount",))),
        Input("percent", N_("Percent off"), "decimal", only_if=("kind", ("percentage_discount",))),
        Input("sku", N_("Product SKU"), only_if=("kind", ("free_product",))),
        Input("stock", N_("Stock"), "int", hint=N_("Empty: unlimited.")),
        Input("per_member_limit", N_("At most per member"), "int"),
        Input("voucher_valid_days", N_("Voucher valid for (days)"), "int"),
        Input("description", N_("Description")),
        Input("active", N_("Active"), "bool"),
    ),
)

TIER_SETTINGS = Section(
    "tiers",
    N_("Tiers"),
    ("tiers",),
    many=False,
    kept=("levels",),
    inputs=(
        Input("metric", N_("Members qualify by"), "select", ("spend", "points_earned", "visits")),
        Input(
            "period",
            N_("Counted over"),
            "select",
            ("calendar_year", "rolling_12_months", "anniversary", "lifetime"),
        ),
        Input("upgrade", N_("Upgrade"), "select", ("immediately", "next_period")),
        Input("downgrade.grace_days", N_("Grace days before a downgrade"), "int"),
        Input("will_downgrade_warning_days", N_("Warn this many days before a downgrade"), "int"),
    ),
)

TIER_LEVELS = Section(
    "tier-levels",
    N_("Tier levels"),
    ("tiers", "levels"),
    many=True,
    columns=("name", "threshold", "earn_multiplier"),
    inputs=(
        Input("key", N_("Key"), hint=_KEY_HINT),
        Input("name", N_("Name")),
        Input("threshold", N_("Threshold"), "decimal", hint=N_("The lowest level starts at 0.")),
        Input("earn_multiplier", N_("Earn multiplier"), "decimal", hint=N_("e.g. 1.5; 1: none.")),
        Input("perks", N_("Perks"), "list", hint=_LIST_HINT),
    ),
)

STAMP_CARDS = Section(
    "stamp-cards",
    N_("Stamp cards"),
    ("stamp_cards",),
    many=True,
    columns=("name", "stamps_needed", "reward"),
    inputs=(
        Input("key", N_("Key"), hint=_KEY_HINT),
        Input("name", N_("Name")),
        Input("stamps_needed", N_("Stamps for a full card"), "int"),
        Input("reward", N_("Reward of a full card (key)")),
        Input("earn.type", N_("A stamp for"), "select", ("per_visit", "per_unit")),
        Input(
            "earn.min_spend",
            N_("Minimum spend"),
            "decimal",
            only_if=("earn.type", ("per_visit",)),
        ),
        Input("earn.items.categories", N_("Categories"), "list", hint=_LIST_HINT),
        Input("earn.items.skus", N_("SKUs"), "list", hint=_LIST_HINT),
        Input("caps.max_per_day", N_("At most per day"), "int"),
        Input("expires_after_days", N_("An incomplete card expires after (days)"), "int"),
        Input("carry_over", N_("Extra stamps carry over to the next card"), "bool"),
        Input("on_return", N_("On a return"), "select", ("cancel_voucher", "keep_voucher")),
    ),
)

REFERRAL = Section(
    "referral",
    N_("Referral"),
    ("referral",),
    many=False,
    removable=True,
    inputs=(
        Input("referrer_reward.points", N_("Points for the referrer"), "int"),
        Input("referrer_reward.reward", N_("…or a reward for the referrer (key)")),
        Input("friend_reward.points", N_("Points for the friend"), "int"),
        Input("friend_reward.reward", N_("…or a reward for the friend (key)")),
        Input("min_purchase", N_("The friend's first purchase at least"), "decimal"),
        Input("per_referrer_per_month", N_("Rewarded referrals per referrer and month"), "int"),
        Input("per_referrer_total", N_("Rewarded referrals per referrer in all"), "int"),
        Input("confirm_after_days", N_("Confirmed after (days)"), "int"),
        Input("link_base", N_("Link address"), hint=N_("The member's code is added at the end.")),
    ),
)

MEMBERSHIPS = Section(
    "memberships",
    N_("Memberships"),
    ("memberships",),
    many=True,
    columns=("name", "billing", "fee"),
    inputs=(
        Input("key", N_("Key"), hint=_KEY_HINT),
        Input("name", N_("Name")),
        Input("billing", N_("Billing"), "select", ("monthly", "yearly", "lifetime")),
        Input("fee", N_("Fee"), "decimal"),
        Input("grace_days", N_("Grace days after a missed payment"), "int"),
    ),
)

EXPIRY = Section(
    "expiry",
    N_("Points expiry"),
    ("expiry",),
    many=False,
    inputs=(
        Input(
            "type", N_("Points expire"), "select", ("never", "after", "fixed_date", "inactivity")
        ),
        Input("days", N_("After (days)"), "int", only_if=("type", ("after",))),
        Input("months", N_("After (months)"), "int", only_if=("type", ("after", "inactivity"))),
        Input(
            "round_to",
            N_("Rounded up to"),
            "select",
            ("", "month_end", "quarter_end", "year_end"),
            only_if=("type", ("after",)),
        ),
        Input("month", N_("Month"), "int", only_if=("type", ("fixed_date",))),
        Input("day", N_("Day"), "int", only_if=("type", ("fixed_date",))),
        Input("years", N_("Years after earning"), "int", only_if=("type", ("fixed_date",))),
        Input("reminder_days", N_("Remind members this many days before"), "int"),
    ),
)

RETURNS = Section(
    "returns",
    N_("Returns"),
    ("returns",),
    many=False,
    inputs=(
        Input(
            "policy",
            N_("Points of a returned purchase"),
            "select",
            ("within_balance", "reverse_pending_only", "allow_negative"),
        ),
        Input("claim_window_days", N_("Receipts can be claimed for (days)"), "int"),
    ),
)

SECTIONS = {
    s.slug: s
    for s in (
        RULES,
        REWARDS,
        TIER_SETTINGS,
        TIER_LEVELS,
        STAMP_CARDS,
        REFERRAL,
        MEMBERSHIPS,
        EXPIRY,
        RETURNS,
    )
}


# --- items and form values -----------------------------------------------------------------


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        child = data.get(part)
        if not isinstance(child, dict):
            child = data[part] = {}
        data = child
    data[path[-1]] = value


def _drop(data: dict[str, Any], path: tuple[str, ...]) -> None:
    parent = _get(data, path[:-1]) if len(path) > 1 else data
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def items(section: Section, document: dict[str, Any]) -> list[dict[str, Any]]:
    found = _get(document, section.path)
    return list(found) if isinstance(found, list) else []


def item_of(section: Section, document: dict[str, Any], key: str | None) -> dict[str, Any] | None:
    """The item with ``key`` (a list section) or the section itself (``None`` when absent)."""
    if not section.many:
        found = _get(document, section.path)
        return found if isinstance(found, dict) else None
    return next((i for i in items(section, document) if i.get("key") == key), None)


def index_of(section: Section, document: dict[str, Any], key: str | None) -> int:
    """Where the item is (or, new, would be) in its list."""
    listed = items(section, document)
    keys = [i.get("key") for i in listed]
    return keys.index(key) if key in keys else len(listed)


def form_values(section: Section, item: dict[str, Any] | None) -> dict[str, str]:
    """The item as the form shows it: text for every input, ``advanced`` for the rest."""
    item = item or {}
    values: dict[str, str] = {}
    for field_ in section.inputs:
        value = _get(item, tuple(field_.name.split(".")))
        if field_.kind == "bool":
            values[field_.name] = "on" if value or (value is None and not item) else ""
        elif isinstance(value, list):
            values[field_.name] = ", ".join(str(v) for v in value)
        else:
            values[field_.name] = "" if value is None else str(value)
    rest = _pruned({k: v for k, v in item.items() if k not in section.kept})
    for field_ in section.inputs:
        _drop(rest, tuple(field_.name.split(".")))
    rest = _pruned(rest)
    values["advanced"] = (
        yaml.safe_dump(rest, allow_unicode=True, sort_keys=False, width=100) if rest else ""
    )
    return values


def _pruned(data: Any) -> Any:
    """Without the empty values (``None``, ``[]``, ``{}``): they are the defaults."""
    if isinstance(data, dict):
        kept = {k: _pruned(v) for k, v in data.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    return data


@dataclass
class Built:
    item: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> English message


def build_item(section: Section, values: dict[str, str], current: dict[str, Any] | None) -> Built:
    """The item the form describes: the advanced YAML, then every shown input on top."""
    built = Built()
    advanced = values.get("advanced", "").strip()
    if advanced:
        try:
            parsed = yaml.safe_load(advanced)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict):
            built.errors["advanced"] = N_(
                "Not valid YAML: a mapping such as “caps: {budget: 500}”."
            )
            parsed = {}
        built.item = parsed
    for name in section.kept:
        if current and name in current:
            built.item[name] = current[name]
    for field_ in section.inputs:
        path = tuple(field_.name.split("."))
        _drop(built.item, path)
        if field_.only_if is not None:
            other, allowed = field_.only_if
            if values.get(other, "").strip() not in allowed:
                continue
        value = _value(field_, values.get(field_.name, ""))
        if value is not None:
            _set(built.item, path, value)
    return built


def _value(field_: Input, text: str) -> Any:
    if field_.kind == "bool":
        return text == "on"
    text = text.strip()
    if field_.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()] or None
    if field_.kind == "decimal" and text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")  # 1,50 as a German till types it
    # Numbers and dates go to the document's model as text: it parses them and says what is
    # wrong with the field's own message.
    return text or None


def put_item(
    section: Section, document: dict[str, Any], key: str | None, item: dict[str, Any] | None
) -> dict[str, Any]:
    """A copy of the document with the item replaced, added (``key`` None or unknown) or, with
    ``item`` None, removed. A tier structure without levels is no tiers at all."""
    draft = copy.deepcopy(document)
    if not section.many:
        _set(draft, section.path, item)
        return draft
    listed = items(section, draft)
    at = index_of(section, draft, key)
    if item is None:
        del listed[at : at + 1]
    elif at < len(listed):
        listed[at] = item
    else:
        listed.append(item)
    if section.path == ("tiers", "levels") and not listed:
        draft["tiers"] = None
    else:
        _set(draft, section.path, listed)
    return draft


# --- errors --------------------------------------------------------------------------------


@dataclass
class Placed:
    """Errors of a draft, by where the form shows them."""

    fields: dict[str, DocumentError] = field(default_factory=dict)  # input name or "advanced"
    item: list[DocumentError] = field(default_factory=list)  # the item as a whole
    elsewhere: list[DocumentError] = field(default_factory=list)  # other parts of the document


def place_errors(section: Section, index: int | None, errors: list[DocumentError]) -> Placed:
    """Which input each error belongs to: ``rules.2.when.include.categories.0`` is the
    categories input of the third rule; an error in an option the form does not show goes to
    the advanced text area, one in another section to the top of the page with its path."""
    where = section.dotted if index is None else f"{section.dotted}.{index}"
    placed = Placed()
    names = sorted((i.name for i in section.inputs), key=len, reverse=True)
    for error in errors:
        if error.path == where:
            placed.item.append(error)
            continue
        if not error.path.startswith(where + "."):
            placed.elsewhere.append(error)
            continue
        inner = error.path[len(where) + 1 :]
        name = next((n for n in names if inner == n or inner.startswith(n + ".")), None)
        target = name or "advanced"
        if target in placed.fields:
            continue  # the first message of a field is enough
        if name is None:
            error = DocumentError(inner, error.message, error.kind, error.context)
        placed.fields[target] = error
    return placed


# What the options of the select fields are called on the page.
CHOICES: dict[str, str] = {
    "": N_("(none)"),
    "per_amount": N_("Points per amount spent"),
    "fixed": N_("Fixed points"),
    "multiplier": N_("Multiplier"),
    "bonus": N_("Bonus points"),
    "purchase": N_("Purchases"),
    "action": N_("Actions (reviews, check-ins …)"),
    "stack": N_("Adds to other rules"),
    "exclusive": N_("Stops rules of lower priority"),
    "free_product": N_("Free product"),
    "fixed_discount": N_("Money off"),
    "percentage_discount": N_("Percent off"),
    "free_shipping": N_("Free shipping"),
    "experience": N_("Experience"),
    "custom": N_("Other"),
    "spend": N_("Spend"),
    "points_earned": N_("Points earned"),
    "visits": N_("Visits"),
    "calendar_year": N_("Calendar year"),
    "rolling_12_months": N_("Last 12 months"),
    "anniversary": N_("Membership year"),
    "lifetime": N_("Lifetime"),
    "immediately": N_("Immediately"),
    "next_period": N_("From the next period"),
    "per_visit": N_("Each visit"),
    "per_unit": N_("Each unit of the products"),
    "cancel_voucher": N_("Cancel the voucher of a full card"),
    "keep_voucher": N_("Keep the voucher"),
    "monthly": N_("Monthly"),
    "yearly": N_("Yearly"),
    "never": N_("Never"),
    "after": N_("After a time"),
    "fixed_date": N_("On a fixed date"),
    "inactivity": N_("After inactivity"),
    "month_end": N_("End of the month"),
    "quarter_end": N_("End of the quarter"),
    "year_end": N_("End of the year"),
    "within_balance": N_("Taken back as far as the balance allows"),
    "reverse_pending_only": N_("Only pending points are taken back"),
    "allow_negative": N_("Taken back in full (balance may go negative)"),
}
