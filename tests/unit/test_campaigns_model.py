"""Campaigns, the pure part: anniversaries, ISO weeks, the reproducible lucky draw, gifts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from treu.campaigns.model import CampaignSettings, is_anniversary, iso_week, lucky


def test_an_anniversary_is_a_whole_number_of_years_after_joining() -> None:
    assert is_anniversary(date(2026, 3, 2), date(2027, 3, 2))
    assert is_anniversary(date(2026, 3, 2), date(2030, 3, 2))
    assert not is_anniversary(date(2026, 3, 2), date(2026, 3, 2))  # the day itself
    assert not is_anniversary(date(2026, 3, 2), date(2027, 3, 3))


def test_a_leap_day_joiner_celebrates_on_28_february_in_common_years() -> None:
    assert is_anniversary(date(2028, 2, 29), date(2029, 2, 28))
    assert is_anniversary(date(2028, 2, 29), date(2032, 2, 29))
    assert not is_anniversary(date(2028, 2, 29), date(2032, 2, 28))


def test_iso_weeks_run_monday_to_sunday_and_across_new_year() -> None:
    assert iso_week(date(2026, 3, 2)) == iso_week(date(2026, 3, 8)) == "2026-W10"
    assert iso_week(date(2026, 3, 9)) == "2026-W11"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"


def test_the_lucky_draw_is_the_same_for_the_same_purchase() -> None:
    draws = [lucky("mbr_1", f"act_{i}", Decimal("0.3")) for i in range(400)]
    assert draws == [lucky("mbr_1", f"act_{i}", Decimal("0.3")) for i in range(400)]
    assert 80 < sum(draws) < 160  # about 30 %
    assert all(lucky("mbr_1", f"act_{i}", Decimal(1)) for i in range(50))


def test_a_gift_gives_something_and_a_launch_window_is_ordered() -> None:
    with pytest.raises(ValidationError, match="a gift needs a reward, points or both"):
        CampaignSettings.model_validate({"welcome": {"name": "nothing"}})
    with pytest.raises(ValidationError, match="until is before from"):
        CampaignSettings.model_validate(
            {"launch_bonus": {"from": "2026-04-01", "until": "2026-03-01", "points": 5}}
        )
    settings = CampaignSettings.model_validate(
        {"welcome": {"reward": "croissant"}, "surprise": {"every": 5, "reward": "kuchen"}}
    )
    assert settings.reward_keys() == [
        ("campaigns.welcome.reward", "croissant"),
        ("campaigns.surprise.reward", "kuchen"),
    ]
