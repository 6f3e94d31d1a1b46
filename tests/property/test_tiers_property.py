"""Tiers as a pure function of the period's activities (Hypothesis).

A member's year is a list of activities (purchases, returns as negative spend). Upgrades happen
along the way, in whatever order the activities arrive; at the period end the tier is
re-evaluated. Whatever the order and whatever happened mid-period, the tier after the
re-evaluation is the tier the period's total earns, recomputed from scratch — and with
``max_steps_down: 1`` it is never more than one step below where the member stood.
"""

from __future__ import annotations

import random
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from treu.tiers.model import (
    PeriodResult,
    TierSettings,
    Window,
    evaluate_tier,
    tier_for,
    upgrade_due,
)

YEAR = Window(date(2026, 1, 1), date(2027, 1, 1))
LEVELS = [
    {"key": "insider", "name": "Insider", "threshold": "0"},
    {"key": "enthusiast", "name": "Enthusiast", "threshold": "250.00"},
    {"key": "superfan", "name": "Superfan", "threshold": "450.00"},
]

# an order of up to 300.00, or a return of up to 150.00 (never more than was bought: see below)
amounts = st.lists(st.integers(min_value=-15_000, max_value=30_000), max_size=12)


def year_of(amounts: list[int]) -> list[PeriodResult]:
    """Activities whose running total never goes below zero (a return follows its purchase)."""
    out, total = [], 0
    for minor in amounts:
        minor = max(minor, -total)
        total += minor
        out.append(PeriodResult(spend_minor=minor, visits=1 if minor > 0 else 0))
    return out


def tier_after_the_year(config: TierSettings, activities: list[PeriodResult]) -> tuple[str, str]:
    """(highest tier reached mid-period, tier after the period-end re-evaluation)."""
    current, running = config.lowest.key, PeriodResult()
    for activity in activities:
        running = running + activity
        due = upgrade_due(config, current, running, exponent=2, currency="USD", window=YEAR)
        if due is not None:
            current = due.target.key
    decided = evaluate_tier(config, current, running, exponent=2, currency="USD", window=YEAR)
    return current, decided.target.key


@settings(max_examples=300, deadline=None)
@given(amounts, st.randoms(use_true_random=False))
def test_the_tier_after_re_evaluation_depends_only_on_the_period_s_activities(
    raw: list[int], rnd: random.Random
) -> None:
    config = TierSettings.model_validate({"levels": LEVELS})
    activities = year_of(raw)
    shuffled = list(activities)
    rnd.shuffle(shuffled)
    from_scratch = tier_for(config, sum(activities, PeriodResult()), 2).key
    assert tier_after_the_year(config, activities)[1] == from_scratch
    assert tier_after_the_year(config, shuffled)[1] == from_scratch


@settings(max_examples=300, deadline=None)
@given(amounts)
def test_with_max_one_step_down_the_period_end_never_drops_two_levels(raw: list[int]) -> None:
    config = TierSettings.model_validate({"levels": LEVELS, "downgrade": {"max_steps_down": 1}})
    reached, after = tier_after_the_year(config, year_of(raw))
    assert config.rank(after) >= config.rank(reached) - 1
