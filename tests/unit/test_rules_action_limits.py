"""Action limits in the rule engine (pure): per member lifetime, per target, and when an action
has nothing left to earn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from treu.rules.model import EarnContext, Period, Rule, evaluate, limits_reached

NOON = datetime(2026, 6, 1, 12)


def review(**caps: Any) -> Rule:
    return Rule.model_validate(
        {
            "key": "review",
            "name": "Review",
            "when": {"activity": "action", "action_types": ["review"]},
            "effect": {"type": "fixed", "points": 10},
            "caps": caps,
        }
    )


def action(kind: str = "review", **ctx: Any) -> EarnContext:
    return EarnContext(activity="action", local_time=NOON, action_type=kind, **ctx)


def test_a_lifetime_cap_counts_everything_the_member_ever_got() -> None:
    rule = review(per_member={"lifetime": 50})
    (award,) = evaluate([rule], action(used_per_member={("review", Period.LIFETIME): 45}))
    assert award.points == 5
    assert "capped at 50 per lifetime" in award.explanation


def test_the_same_target_earns_once() -> None:
    rule = review(per_target=10)
    assert evaluate([rule], action(target="sku-1"))[0].points == 10
    again = action(target="sku-1", used_per_target={"review": 10})
    assert evaluate([rule], again) == []
    assert limits_reached([rule], again) == ["review"]
    # an action without a target is not limited per target
    assert limits_reached([rule], action(used_per_target={"review": 10})) == []


def test_an_action_is_refused_only_when_every_matching_rule_is_used_up() -> None:
    capped = review(per_member={"day": 30})
    open_ended = Rule.model_validate(
        {
            "key": "any-action",
            "name": "Any action",
            "when": {"activity": "action"},
            "effect": {"type": "bonus", "points": 1},
        }
    )
    used = {("review", Period.DAY): 30}
    assert limits_reached([capped], action(used_per_member=used)) == ["review"]
    assert limits_reached([capped, open_ended], action(used_per_member=used)) == []
    assert limits_reached([capped], action("survey", used_per_member=used)) == []  # no match
