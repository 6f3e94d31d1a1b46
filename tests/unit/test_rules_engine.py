"""The rule engine, told as the programmes in examples/ would tell it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from treu.activities.model import Basket, EarningBase, LineIn, PurchaseIn, build_basket
from treu.money import from_minor
from treu.programmes.model import Programme, parse_document
from treu.rules.model import (
    Award,
    EarnContext,
    MemberFacts,
    PerAmount,
    Period,
    Rounding,
    Rule,
    evaluate,
    total_points,
)

BERLIN = ZoneInfo("Europe/Berlin")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")

# The programmes are written out here (not read from examples/, which follow the scenarios).
KIEZCAFE_YAML = """
key: kiezcafe
name: Kiezcafé Treue
currency: EUR
timezone: Europe/Berlin
rules:
  - key: punkte
    name: "1 Punkt je Euro"
    effect: {type: per_amount, points: 1, per: "1.00"}
  - key: fruehstueck
    name: "Frühstücksbonus werktags 7–9 Uhr"
    when:
      weekdays: [mon, tue, wed, thu, fri]
      hours: {from: "07:00", to: "09:00"}
      min_spend: "5.00"
    effect: {type: bonus, points: 2}
    caps: {per_member: {day: 2}}
  - key: bewertung
    name: "Bewertung geschrieben"
    when: {activity: action, action_types: [review]}
    effect: {type: fixed, points: 10}
    caps: {per_member: {month: 10}}
"""

MERCADO_YAML = """
key: mercado-smart
name: Mercado Smart
currency: BRL
timezone: America/Sao_Paulo
rules:
  - key: base
    name: "1 ponto por R$1"
    when: {exclude: {categories: [Tabak]}}
    effect: {type: per_amount, points: 1, per: "1.00"}
  - key: natal
    name: "Natal: pontos em dobro"
    when:
      valid_from: 2026-12-20
      valid_until: 2026-12-24
      exclude: {categories: [Tabak]}
    effect: {type: multiplier, factor: "2"}
"""


def programme(text: str) -> Programme:
    return Programme("prg_01", "ten_01", "rev_01", parse_document(yaml.safe_load(text)))


KIEZCAFE = programme(KIEZCAFE_YAML)
MERCADO = programme(MERCADO_YAML)


def item(price: str, category: str | None = None, **fields: Any) -> LineIn:
    return LineIn(unit_price=Decimal(price), category=category, **fields)


def basket_of(*lines: LineIn, currency: str = "EUR") -> Basket:
    p = PurchaseIn(external_id="till-1", currency=currency, lines=list(lines))
    return build_basket(p, currency, EarningBase())


def earn(prog: Programme, at: datetime, *lines: LineIn, **context: Any) -> dict[str, Award]:
    """What a purchase at the instant ``at`` earns, by rule key."""
    ctx = EarnContext(
        "purchase",
        prog.local_time(at),
        basket=basket_of(*lines, currency=prog.currency),
        rounding=prog.document.rounding,
        **context,
    )
    return {a.rule_key: a for a in evaluate(list(prog.document.rules), ctx)}


def rule(key: str, effect: dict[str, Any], **fields: Any) -> Rule:
    return Rule.model_validate({"key": key, "name": key.title(), "effect": effect, **fields})


def run(rules: list[Rule], *lines: LineIn, **context: Any) -> dict[str, int]:
    context.setdefault("local_time", datetime(2026, 3, 4, 12, 0))
    ctx = EarnContext("purchase", basket=basket_of(*lines), **context)
    return {a.rule_key: a.points for a in evaluate(rules, ctx)}


PER_EURO = rule("base", {"type": "per_amount", "points": 1, "per": "1.00"})
SUNDAY_AFTERNOON = datetime(2026, 3, 8, 15, 0, tzinfo=BERLIN)


# --- earning per amount, rounding ----------------------------------------------------------


def test_a_6_80_eur_purchase_earns_6_points_rounded_down() -> None:
    awards = earn(KIEZCAFE, SUNDAY_AFTERNOON, item("6.80", "Kaffee"))
    assert list(awards) == ["punkte"]
    assert awards["punkte"].points == 6
    assert awards["punkte"].explanation == "1 Punkt je Euro: 1 per 1.00 EUR on 6.80 EUR = 6 points"


@pytest.mark.parametrize(
    ("amount", "rounding", "points"),
    [
        ("6.80", Rounding.FLOOR, 6),
        ("6.80", Rounding.HALF_UP, 7),
        ("6.50", Rounding.HALF_UP, 7),
        ("6.49", Rounding.HALF_UP, 6),
        ("6.80", Rounding.CEIL, 7),
        ("6.01", Rounding.CEIL, 7),
        ("6.00", Rounding.CEIL, 6),
        ("0.99", Rounding.FLOOR, 0),
    ],
)
def test_one_rule_is_rounded_as_the_programme_says(
    amount: str, rounding: Rounding, points: int
) -> None:
    assert run([PER_EURO], item(amount), rounding=rounding).get("base", 0) == points


def test_a_sub_point_remainder_is_never_carried_into_a_point() -> None:
    # three lines of 0.60: 1.80 earns 1, not three lines of 0 and not 2
    assert run([PER_EURO], item("0.60"), item("0.60"), item("0.60")) == {"base": 1}


def test_points_per_a_larger_amount() -> None:
    five_per_two = rule("base", {"type": "per_amount", "points": 5, "per": "2.00"})
    assert run([five_per_two], item("7.00")) == {"base": 17}  # 17.5 rounded down


def test_a_purchase_without_a_matching_rule_earns_nothing() -> None:
    awards = earn(MERCADO, datetime(2026, 1, 10, 10, tzinfo=SAO_PAULO), item("30.00", "Tabak"))
    assert awards == {}


# --- multipliers and bonuses -----------------------------------------------------------


def test_natal_doubles_the_points_of_non_tobacco_lines() -> None:
    lines = (item("120.00", "Mercearia"), item("30.00", "Tabak"))
    awards = earn(MERCADO, datetime(2026, 12, 22, 10, tzinfo=SAO_PAULO), *lines)
    assert {k: a.points for k, a in awards.items()} == {"base": 120, "natal": 120}
    assert awards["natal"].explanation == (
        "Natal: pontos em dobro: x2 on 120 base points = 120 points"
    )
    assert total_points(list(awards.values())) == 240


def test_natal_ends_with_christmas_eve_in_programme_time() -> None:
    lines = (item("120.00", "Mercearia"),)
    # 01:00 UTC on the 25th is still 22:00 on the 24th in São Paulo
    assert "natal" in earn(MERCADO, datetime(2026, 12, 25, 1, tzinfo=UTC), *lines)
    assert "natal" not in earn(MERCADO, datetime(2026, 12, 25, 0, 0, tzinfo=SAO_PAULO), *lines)
    assert "natal" not in earn(MERCADO, datetime(2026, 12, 19, 23, 59, tzinfo=SAO_PAULO), *lines)
    assert "natal" in earn(MERCADO, datetime(2026, 12, 20, 0, 0, tzinfo=SAO_PAULO), *lines)


def test_a_multiplier_counts_only_the_lines_it_selects() -> None:
    organic = rule(
        "bio",
        {"type": "multiplier", "factor": "1.5"},
        when={"include": {"categories": ["Bio"]}},
    )
    assert run([PER_EURO, organic], item("10.00", "Bio"), item("7.00", "Snacks")) == {
        "base": 17,
        "bio": 5,
    }


def test_a_multiplier_multiplies_fixed_points_but_never_bonus_points() -> None:
    rules = [
        PER_EURO,
        rule("welcome", {"type": "fixed", "points": 10}),
        rule("triple", {"type": "multiplier", "factor": "3"}),
        rule("treat", {"type": "bonus", "points": 5}),
    ]
    points = run(rules, item("10.00"))
    assert points == {"base": 10, "welcome": 10, "triple": 40, "treat": 5}


def test_a_multiplier_alone_has_nothing_to_multiply() -> None:
    assert run([rule("double", {"type": "multiplier", "factor": "2"})], item("10.00")) == {}


# --- conditions in programme time ------------------------------------------------------


def test_the_weekday_morning_bonus_applies_on_a_monday_at_08_10_in_berlin() -> None:
    # 07:10 UTC is 08:10 in Berlin (CET) on Monday 2 March 2026
    awards = earn(KIEZCAFE, datetime(2026, 3, 2, 7, 10, tzinfo=UTC), item("6.80"))
    assert {k: a.points for k, a in awards.items()} == {"punkte": 6, "fruehstueck": 2}
    assert awards["fruehstueck"].explanation == (
        "Frühstücksbonus werktags 7–9 Uhr: bonus 2 points = 2 points"
    )


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 7, 8, 10, tzinfo=BERLIN),  # Saturday
        datetime(2026, 3, 8, 8, 10, tzinfo=BERLIN),  # Sunday
        datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN),  # 09:00 is no longer breakfast
        datetime(2026, 3, 2, 8, 0, tzinfo=UTC),  # 09:00 in Berlin
        datetime(2026, 3, 2, 6, 59, tzinfo=BERLIN),
    ],
)
def test_the_weekday_morning_bonus_does_not_apply(at: datetime) -> None:
    assert "fruehstueck" not in earn(KIEZCAFE, at, item("6.80"))


def test_the_morning_bonus_starts_at_07_00_even_in_summer_time() -> None:
    # 05:00 UTC is 07:00 in Berlin (CEST) on Monday 29 June 2026
    assert "fruehstueck" in earn(KIEZCAFE, datetime(2026, 6, 29, 5, 0, tzinfo=UTC), item("6.80"))


def test_the_morning_bonus_needs_5_eur() -> None:
    monday = datetime(2026, 3, 2, 8, 10, tzinfo=BERLIN)
    assert "fruehstueck" not in earn(KIEZCAFE, monday, item("4.99"))
    assert "fruehstueck" in earn(KIEZCAFE, monday, item("5.00"))


def test_min_spend_counts_only_the_selected_lines() -> None:
    coffee_bonus = rule(
        "coffee",
        {"type": "bonus", "points": 3},
        when={"include": {"categories": ["Kaffee"]}, "min_spend": "5.00"},
    )
    assert run([coffee_bonus], item("4.00", "Kaffee"), item("20.00", "Kuchen")) == {}
    assert run([coffee_bonus], item("5.00", "Kaffee"), item("1.00", "Kuchen")) == {"coffee": 3}


def test_hours_may_span_midnight() -> None:
    late = rule(
        "late", {"type": "bonus", "points": 1}, when={"hours": {"from": "22:00", "to": "02:00"}}
    )
    for hour, minute, applies in [(23, 30, True), (1, 59, True), (2, 0, False), (12, 0, False)]:
        got = run([late], item("1.00"), local_time=datetime(2026, 3, 4, hour, minute))
        assert bool(got) is applies, (hour, minute)


def test_store_channel_and_item_filters() -> None:
    online = rule(
        "online",
        {"type": "bonus", "points": 5},
        when={"channels": ["online"], "stores": ["shop"], "exclude": {"brands": ["Acme"]}},
    )
    assert run([online], item("1.00"), channel="online", store="shop") == {"online": 5}
    assert run([online], item("1.00"), channel="pos", store="shop") == {}
    assert run([online], item("1.00"), channel="online", store="other") == {}
    assert run([online], item("1.00", brand="Acme"), channel="online", store="shop") == {}


def test_member_conditions() -> None:
    rules = [
        rule("first", {"type": "bonus", "points": 50}, when={"first_purchase": True}),
        rule("gold", {"type": "bonus", "points": 20}, when={"tiers": ["gold"]}),
        rule("students", {"type": "bonus", "points": 7}, when={"segments": ["students"]}),
        rule("staff", {"type": "bonus", "points": 3}, when={"member_attributes": {"staff": True}}),
    ]
    anonymous = run(rules, item("1.00"))
    assert anonymous == {}
    everything = MemberFacts(
        attributes={"staff": True},
        is_first_purchase=True,
        tier="gold",
        segments=frozenset({"students", "berlin"}),
    )
    assert run(rules, item("1.00"), member=everything) == {
        "first": 50,
        "gold": 20,
        "students": 7,
        "staff": 3,
    }
    other = MemberFacts(attributes={"staff": "yes"}, tier="silver", segments=frozenset({"x"}))
    assert run(rules, item("1.00"), member=other) == {}


def test_action_rules_fire_on_their_action_types_only() -> None:
    def act(action_type: str) -> dict[str, int]:
        ctx = EarnContext("action", datetime(2026, 3, 4, 12), action_type=action_type)
        return {a.rule_key: a.points for a in evaluate(list(KIEZCAFE.document.rules), ctx)}

    assert act("review") == {"bewertung": 10}
    assert act("referral") == {}


# --- caps and budgets ------------------------------------------------------------------


def test_the_daily_cap_cuts_the_morning_bonus_and_says_so() -> None:
    monday = datetime(2026, 3, 2, 8, 10, tzinfo=BERLIN)
    awards = earn(KIEZCAFE, monday, item("6.80"), used_per_member={("fruehstueck", Period.DAY): 1})
    assert awards["fruehstueck"].points == 1
    assert awards["fruehstueck"].explanation.endswith("= 1 points (capped at 2 per day)")
    spent = earn(KIEZCAFE, monday, item("6.80"), used_per_member={("fruehstueck", Period.DAY): 2})
    assert "fruehstueck" not in spent


def test_the_monthly_cap_on_reviews() -> None:
    ctx = EarnContext(
        "action",
        datetime(2026, 3, 4, 12),
        action_type="review",
        used_per_member={("bewertung", Period.MONTH): 5},
    )
    (award,) = evaluate(list(KIEZCAFE.document.rules), ctx)
    assert award.points == 5
    assert "(capped at 10 per month)" in award.explanation


def test_caps_per_day_and_week_both_cut_and_both_say_so() -> None:
    capped = rule(
        "promo",
        {"type": "fixed", "points": 100},
        caps={"per_member": {"day": 30, "week": 50}},
    )
    ctx = EarnContext(
        "purchase",
        datetime(2026, 3, 4, 12),
        basket=basket_of(item("1.00")),
        used_per_member={("promo", Period.WEEK): 40},
    )
    (award,) = evaluate([capped], ctx)
    assert award.points == 10
    assert award.explanation == (
        "Promo: 100 points = 10 points (capped at 30 per day; capped at 50 per week)"
    )


def test_caps_of_other_rules_do_not_count() -> None:
    capped = rule("promo", {"type": "fixed", "points": 100}, caps={"per_member": {"day": 30}})
    used = {("other", Period.DAY): 30}
    assert run([capped], item("1.00"), used_per_member=used) == {"promo": 30}


def test_the_cap_per_activity() -> None:
    capped = rule(
        "base", {"type": "per_amount", "points": 1, "per": "1.00"}, caps={"per_activity": 50}
    )
    ctx = EarnContext("purchase", datetime(2026, 3, 4, 12), basket=basket_of(item("80.00")))
    (award,) = evaluate([capped], ctx)
    assert award.points == 50
    assert award.explanation.endswith("(capped at 50 per activity)")


def test_the_budget_left_cuts_the_award() -> None:
    campaign = rule("spring", {"type": "bonus", "points": 100}, caps={"budget": 10_000})
    ctx = EarnContext(
        "purchase",
        datetime(2026, 3, 4, 12),
        basket=basket_of(item("1.00")),
        budget_left={"spring": 30},
    )
    (award,) = evaluate([campaign], ctx)
    assert award.points == 30
    assert award.explanation.endswith("(campaign budget used up)")
    assert run([campaign], item("1.00")) == {"spring": 100}  # nothing used yet
    assert run([campaign], item("1.00"), budget_left={"spring": 0}) == {}


# --- priority and exclusive rules ------------------------------------------------------


VIP = rule(
    "vip",
    {"type": "fixed", "points": 50},
    when={"tiers": ["gold"]},
    priority=10,
    stacking="exclusive",
)


def test_an_exclusive_rule_stops_lower_priority_rules() -> None:
    gold = MemberFacts(tier="gold")
    double = rule("double", {"type": "multiplier", "factor": "2"})
    assert run([PER_EURO, double, VIP], item("10.00"), member=gold) == {"vip": 50}


def test_an_exclusive_rule_that_does_not_match_stops_nothing() -> None:
    assert run([PER_EURO, VIP], item("10.00"), member=MemberFacts(tier="silver")) == {"base": 10}


@pytest.mark.parametrize("other_key", ["aaa", "zzz"])
def test_an_exclusive_rule_does_not_stop_rules_of_the_same_priority(other_key: str) -> None:
    same = rule(other_key, {"type": "bonus", "points": 5}, priority=10)
    lower = rule("low", {"type": "bonus", "points": 1}, priority=9)
    points = run([same, lower, VIP], item("10.00"), member=MemberFacts(tier="gold"))
    assert points == {"vip": 50, other_key: 5}


def test_higher_priority_rules_still_apply_above_an_exclusive_one() -> None:
    top = rule("top", {"type": "bonus", "points": 2}, priority=20)
    points = run([PER_EURO, VIP, top], item("10.00"), member=MemberFacts(tier="gold"))
    assert points == {"vip": 50, "top": 2}


# --- rules as data ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"when": {"activity": "action"}, "effect": {"type": "per_amount", "points": 1}},
        {"when": {"activity": "action"}, "effect": {"type": "multiplier", "factor": "2"}},
        {"when": {"valid_from": "2026-12-24", "valid_until": "2026-12-20"}},
        {"effect": {"type": "multiplier", "factor": "1"}},
        {"effect": {"type": "per_amount", "points": 0}},
        {"effect": {"type": "per_amount", "points": 1, "per": "0"}},
        {"effect": {"type": "percent", "points": 1}},
        {"key": "Base Rule"},
        {"stacking": "sometimes"},
        {"when": {"min_spend": "-1"}},
        {"when": {"weekdays": ["monday"]}},
        {"colour": "red"},
    ],
)
def test_malformed_rules_do_not_validate(data: dict[str, Any]) -> None:
    rule_data = {"key": "r", "name": "R", "effect": {"type": "fixed", "points": 1}, **data}
    with pytest.raises(ValidationError):
        Rule.model_validate(rule_data)


# --- properties ------------------------------------------------------------------------


CATEGORIES = ["Kaffee", "Kuchen", "Tabak"]

lines_st = st.lists(
    st.tuples(st.integers(min_value=0, max_value=200_000), st.sampled_from(CATEGORIES)),
    min_size=1,
    max_size=8,
)
per_amount_st = st.builds(
    lambda points, per, excluded: rule(
        "base",
        {"type": "per_amount", "points": points, "per": per},
        when={"exclude": {"categories": excluded}},
    ),
    st.integers(min_value=1, max_value=1000),
    st.sampled_from(["0.01", "0.50", "1.00", "2.50", "3", "7.77"]),
    st.lists(st.sampled_from(CATEGORIES), max_size=2),
)
extras_st = st.lists(
    st.one_of(
        st.builds(
            lambda f, cat: rule(
                f"mult-{cat.lower()}",
                {"type": "multiplier", "factor": f},
                when={"include": {"categories": [cat]}},
            ),
            st.sampled_from(["1.5", "2", "2.25", "3"]),
            st.sampled_from(CATEGORIES),
        ),
        st.builds(
            lambda p: rule(f"bonus-{p}", {"type": "bonus", "points": p}),
            st.integers(min_value=1, max_value=100),
        ),
        st.builds(
            lambda p: rule(f"fixed-{p}", {"type": "fixed", "points": p}),
            st.integers(min_value=1, max_value=100),
        ),
    ),
    max_size=4,
    unique_by=lambda r: r.key,
)


def _basket(drawn: list[tuple[int, str]]) -> Basket:
    return basket_of(*(item(str(from_minor(m, "EUR")), c) for m, c in drawn))


@given(lines_st, per_amount_st, extras_st)
def test_evaluation_never_gives_negative_points_and_rounds_once_per_activity(
    drawn: list[tuple[int, str]], base_rule: Rule, extras: list[Rule]
) -> None:
    basket = _basket(drawn)
    rules = [base_rule, *extras]
    by_mode = {
        mode: {
            a.rule_key: a.points
            for a in evaluate(
                rules, EarnContext("purchase", datetime(2026, 3, 4), basket, rounding=mode)
            )
        }
        for mode in Rounding
    }
    for awards in by_mode.values():
        assert all(points > 0 for points in awards.values())

    assert isinstance(base_rule.effect, PerAmount)
    selected = sum(
        x.base_minor for x in basket.lines if x.category not in base_rule.when.exclude.categories
    )
    exact = Fraction(selected) / (Fraction(base_rule.effect.per) * 100) * base_rule.effect.points
    # the base rule gets its exact points rounded down, plus at most one point of the remainders
    for awards in by_mode.values():
        assert math.floor(exact) <= awards.get("base", 0) <= math.floor(exact) + 1
    if not extras:  # alone, it is rounded as the programme says
        assert by_mode[Rounding.FLOOR].get("base", 0) == math.floor(exact)
        assert by_mode[Rounding.CEIL].get("base", 0) == math.ceil(exact)

    # rounding happens once per activity: the modes differ by at most one point in total
    low, mid, high = (sum(by_mode[m].values()) for m in Rounding)
    assert low <= mid <= high <= low + 1


def test_rounding_happens_once_per_activity_not_once_per_rule() -> None:
    # 6.80 EUR at 1 point per euro, doubled: 13.6 points exactly, 13 rounded down (not 6 + 6)
    double = rule("double", {"type": "multiplier", "factor": "2"})
    ctx = EarnContext("purchase", datetime(2026, 3, 4, 12), basket=basket_of(item("6.80")))
    awards = {a.rule_key: a for a in evaluate([PER_EURO, double], ctx)}
    assert (awards["base"].points, awards["double"].points) == (7, 6)
    assert "6.80 exactly, the activity's remainders make one more" in awards["base"].explanation


def test_a_multiplier_doubles_the_base_points_as_capped() -> None:
    capped = rule("base", PER_EURO.effect.model_dump(mode="json"), caps={"per_activity": 10})
    double = rule("double", {"type": "multiplier", "factor": "2"})
    assert run([capped, double], item("30.00")) == {"base": 10, "double": 10}
