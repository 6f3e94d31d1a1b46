"""Automations, the pure part: triggers and their options, occasions, the control group,
delays, "so close", statement days, anniversaries, and the document's cross-references."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from treu.automations.model import (
    AutomationDef,
    TriggerEvent,
    almost_reward,
    anniversary_on,
    event_occasion,
    held_out,
    parse_delay,
    statement_due,
)
from treu.errors import InvalidInput
from treu.programmes.model import parse_document

T = TriggerEvent


def automation(**fields: Any) -> AutomationDef:
    data = {
        "key": "a",
        "name": "A",
        "trigger": {"event": "member.enrolled"},
        "action": {"type": "message", "template": "welcome"},
        **fields,
    }
    return AutomationDef.model_validate(data)


# --- the control group -------------------------------------------------------------------


def test_the_control_group_holds_out_about_its_share_of_members() -> None:
    members = [f"mbr_{i:05d}" for i in range(10_000)]
    out = [m for m in members if held_out("fast-geschafft", m, 20)]
    assert 1_800 < len(out) < 2_200


def test_the_same_member_is_held_out_every_time_and_per_automation() -> None:
    members = [f"mbr_{i:05d}" for i in range(2_000)]
    first = {m for m in members if held_out("welcome", m, 30)}
    assert first == {m for m in members if held_out("welcome", m, 30)}
    other = {m for m in members if held_out("win-back", m, 30)}
    assert first != other  # another automation draws its own group
    # a bigger group keeps everyone the smaller one held out
    assert first <= {m for m in members if held_out("welcome", m, 50)}


def test_no_control_group_holds_nobody_and_a_full_one_everybody() -> None:
    assert not any(held_out("a", f"mbr_{i}", 0) for i in range(500))
    assert all(held_out("a", f"mbr_{i}", 100) for i in range(500))


# --- triggers, delays, actions -------------------------------------------------------------


def test_a_delay_is_minutes_hours_or_days() -> None:
    assert parse_delay("30m") == timedelta(minutes=30)
    assert parse_delay("2h") == timedelta(hours=2)
    assert parse_delay("1d") == timedelta(days=1)
    assert parse_delay(None) == timedelta(0)
    assert automation(delay="1d").wait == timedelta(days=1)
    for wrong in ("0h", "2w", "1.5h", "h"):
        with pytest.raises(ValidationError):
            automation(delay=wrong)


def test_each_trigger_takes_only_its_own_options() -> None:
    assert automation(trigger={"event": "inactivity", "days": 60}).trigger.is_date
    with pytest.raises(ValidationError, match="trigger inactivity needs days"):
        automation(trigger={"event": "inactivity"})
    with pytest.raises(ValidationError, match=r"trigger points\.almost_reward needs within"):
        automation(trigger={"event": "points.almost_reward"})
    with pytest.raises(
        ValidationError, match=r"cards is not an option of trigger member\.enrolled"
    ):
        automation(trigger={"event": "member.enrolled", "cards": ["brotkarte"]})
    with pytest.raises(ValidationError, match="day"):
        automation(trigger={"event": "statement", "day": 32})
    with pytest.raises(ValidationError):
        automation(trigger={"event": "member.exploded"})


def test_an_action_is_a_message_points_a_voucher_or_a_webhook() -> None:
    assert automation(action={"type": "points", "points": 50}).action.type == "points"
    assert automation(action={"type": "voucher", "reward": "brot"}).action.type == "voucher"
    hook = automation(action={"type": "webhook", "data": {"list": "vip"}})
    assert hook.action.type == "webhook"
    with pytest.raises(ValidationError):
        automation(action={"type": "points", "points": 0})
    with pytest.raises(ValidationError):
        automation(action={"type": "message", "template": "x", "channel": "post"})
    with pytest.raises(ValidationError):
        automation(control_group=101)


# --- occasions -------------------------------------------------------------------------------


def test_each_event_trigger_names_its_occasion() -> None:
    def of(trigger: TriggerEvent, **payload: Any) -> str:
        return event_occasion(trigger, "evt_1", payload)

    assert of(T.ENROLLED) == "enrolment"  # once per member, ever
    assert of(T.FIRST_PURCHASE, activity_id="act_1") == "first-purchase"
    assert of(T.ACTIVITY, activity_id="act_1") == "act_1"
    assert of(T.STAMPS_ALMOST_COMPLETE, card="brotkarte", number=3) == "brotkarte:3"
    assert of(T.TIER_WILL_DOWNGRADE, period_ends_on="2027-01-01") == "2027-01-01"
    assert of(T.POINTS_EXPIRING, expires_on="2027-07-31") == "2027-07-31"
    assert of(T.VOUCHER_ISSUED, voucher_id="vch_1") == "vch_1"
    assert of(T.CART_ABANDONED, id="cart-77") == "cart-77"
    assert of(T.TIER_UPGRADED, to="gold") == "evt_1"
    assert of(T.SEGMENT_ENTERED, segment="vip") == "evt_1"


def test_so_close_is_the_cheapest_reward_not_yet_affordable_within_reach() -> None:
    costs = [("kaffee", 30), ("kuchen", 50), ("fuenf-euro", 100)]
    assert almost_reward(25, costs, 5) == ("kaffee", 5)
    assert almost_reward(24, costs, 5) is None  # 6 short
    assert almost_reward(30, costs, 20) == ("kuchen", 20)  # the coffee is affordable already
    assert almost_reward(95, costs, 10) == ("fuenf-euro", 5)
    assert almost_reward(100, costs, 10) is None  # everything affordable
    assert almost_reward(0, [], 10) is None


def test_the_statement_day_falls_back_to_the_end_of_a_short_month() -> None:
    assert statement_due(1, date(2026, 4, 1))
    assert not statement_due(1, date(2026, 4, 2))
    assert statement_due(31, date(2026, 4, 30))
    assert statement_due(31, date(2027, 2, 28))
    assert statement_due(29, date(2028, 2, 29))
    assert not statement_due(31, date(2026, 5, 30))


def test_anniversaries_are_whole_years_and_leap_days_move_to_28_february() -> None:
    assert anniversary_on(date(2026, 3, 2), date(2027, 3, 2))
    assert not anniversary_on(date(2026, 3, 2), date(2026, 3, 2))
    assert anniversary_on(date(2028, 2, 29), date(2029, 2, 28))
    assert not anniversary_on(date(2028, 2, 29), date(2032, 2, 28))


# --- the programme document ------------------------------------------------------------------

BASE: dict[str, Any] = {
    "key": "p",
    "name": "P",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rewards": [{"key": "brot", "name": "Brot", "kind": "free_product", "sku": "B"}],
    "stamp_cards": [
        {
            "key": "brotkarte",
            "name": "Brotkarte",
            "stamps_needed": 8,
            "earn": {"type": "per_visit"},
            "reward": "brot",
        }
    ],
}


def doc_with(*automations: dict[str, Any]) -> Any:
    return parse_document({**BASE, "automations": list(automations)})


def test_a_document_with_automations_names_what_it_has() -> None:
    doc = doc_with(
        {
            "key": "fast-geschafft",
            "name": "Fast geschafft",
            "trigger": {"event": "stamps.almost_complete", "cards": ["brotkarte"]},
            "audience": {"segment": "active"},  # a built-in segment
            "action": {"type": "message", "template": "so_close_stamps"},
        },
        {
            "key": "geburtstag",
            "name": "Geburtstag",
            "trigger": {"event": "birthday"},
            "action": {"type": "voucher", "reward": "brot"},
            "control_group": 10,
        },
    )
    assert [a.key for a in doc.automations] == ["fast-geschafft", "geburtstag"]


@pytest.mark.parametrize(
    ("automation_", "path", "message"),
    [
        (
            {"trigger": {"event": "stamps.almost_complete", "cards": ["kaffeekarte"]}},
            "automations.0.trigger.cards",
            "unknown stamp card 'kaffeekarte'",
        ),
        (
            {"action": {"type": "voucher", "reward": "kuchen"}},
            "automations.0.action.reward",
            "unknown reward 'kuchen'",
        ),
        (
            {"audience": {"segment": "night-owls"}},
            "automations.0.audience.segment",
            "unknown segment 'night-owls'",
        ),
        (
            {"action": {"type": "message", "template": "fast-geschaft"}},
            "automations.0.action.template",
            "unknown template 'fast-geschaft'",
        ),
        (
            {"trigger": {"event": "tier.upgraded", "tiers": ["gold"]}},
            "automations.0.trigger.tiers",
            "unknown tier 'gold'",
        ),
    ],
)
def test_a_reference_to_something_the_document_lacks_is_an_error_at_its_path(
    automation_: dict[str, Any], path: str, message: str
) -> None:
    base = {
        "key": "x",
        "name": "X",
        "trigger": {"event": "member.enrolled"},
        "action": {"type": "webhook"},
    }
    with pytest.raises(InvalidInput) as raised:
        doc_with({**base, **automation_})
    assert raised.value.details["errors"][0] == {"path": path, "message": message}


def test_two_automations_cannot_share_a_key() -> None:
    one = {"key": "x", "name": "X", "trigger": {"event": "birthday"}, "action": {"type": "webhook"}}
    with pytest.raises(InvalidInput) as raised:
        doc_with(one, one)
    assert raised.value.details["errors"][0]["path"] == "automations.1.key"
