"""Non-purchase actions farmed in a loop: limits per day, per member lifetime and per target
(the same product reviewed twice earns once). Past a limit an action is refused with
``action_limit_reached`` and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from treu.activities.model import ActionIn
from treu.activities.service import record_action
from treu.api.app import create_app
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.ledger.service import get_balances
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")
DOCUMENT: dict[str, Any] = {
    "key": "actions",
    "name": "Actions",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [
        {
            "key": "review",
            "name": "Product review",
            "when": {"activity": "action", "action_types": ["review"]},
            "effect": {"type": "fixed", "points": 10},
            "caps": {"per_member": {"day": 30, "lifetime": 50}, "per_target": 10},
        },
        {
            "key": "check-in",
            "name": "Check-in",
            "when": {"activity": "action", "action_types": ["check_in"]},
            "effect": {"type": "fixed", "points": 5},
            "caps": {"per_member": {"day": 5}},
        },
    ],
}


@pytest.fixture
def world(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> tuple[str, str]:
    clock.set(datetime(2026, 6, 1, 10, tzinfo=BERLIN))
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    with new_uow() as uow:
        member = enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: "mo@example.org"}
        )
    return programme_id, member.id


def _act(new_uow: NewUow, world: tuple[str, str], ref: str, kind: str, target: str | None) -> int:
    """Points the action earned; -1 if it was refused for its limits."""
    programme_id, member_id = world
    action = ActionIn(external_id=ref, type=kind, target=target)
    try:
        with new_uow() as uow:
            result = record_action(uow, programme_id=programme_id, member=member_id, action=action)
    except TreuError as exc:
        if exc.code is not ErrorCode.ACTION_LIMIT_REACHED:
            raise
        return -1
    return result.points


def _points(new_uow: NewUow, tenant: Tenant, member_id: str) -> int:
    with new_uow() as uow:
        return get_balances(uow, tenant_id=tenant.id, member_id=member_id).available


def test_a_loop_of_1000_check_ins_earns_the_daily_limit_once(
    new_uow: NewUow, tenant: Tenant, world: tuple[str, str]
) -> None:
    earned = [_act(new_uow, world, f"check-in-{i}", "check_in", None) for i in range(1000)]
    assert earned[:1] == [5]
    assert earned[1:] == [-1] * 999
    assert _points(new_uow, tenant, world[1]) == 5


def test_reviewing_the_same_product_twice_counts_once(
    new_uow: NewUow, tenant: Tenant, world: tuple[str, str]
) -> None:
    assert _act(new_uow, world, "r-1", "review", "sku-lipstick") == 10
    assert _act(new_uow, world, "r-2", "review", "sku-lipstick") == -1
    assert _act(new_uow, world, "r-3", "review", "sku-mascara") == 10
    assert _points(new_uow, tenant, world[1]) == 20


def test_reviews_stop_at_the_daily_and_then_the_lifetime_limit(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant, world: tuple[str, str]
) -> None:
    day_one = [_act(new_uow, world, f"d1-{i}", "review", f"sku-{i}") for i in range(5)]
    assert day_one == [10, 10, 10, -1, -1]
    clock.set(datetime(2026, 6, 2, 10, tzinfo=BERLIN))
    day_two = [_act(new_uow, world, f"d2-{i}", "review", f"sku-2-{i}") for i in range(5)]
    assert day_two == [10, 10, -1, -1, -1]  # 50 in a member's lifetime
    assert _points(new_uow, tenant, world[1]) == 50


def test_an_action_no_rule_rewards_is_still_recorded(
    new_uow: NewUow, world: tuple[str, str]
) -> None:
    assert _act(new_uow, world, "s-1", "survey", None) == 0
    assert _act(new_uow, world, "s-2", "survey", None) == 0


def test_farming_over_http_is_refused_with_a_clear_code(
    engine: Any, clock: FixedClock, tenant: Tenant, world: tuple[str, str]
) -> None:
    _programme_id, member_id = world
    with UnitOfWork(engine, clock) as uow:
        token = create_api_key(uow, tenant_id=tenant.id, scope=Scope.INTEGRATION, name="app").token
    with TestClient(create_app(engine, clock)) as client:
        answers = [
            client.post(
                "/v1/programmes/actions/actions",
                json={"external_id": f"h-{i}", "type": "check_in", "member": member_id},
                headers={"Authorization": f"Bearer {token}"},
            )
            for i in range(5)
        ]
    assert [a.status_code for a in answers] == [201, 422, 422, 422, 422]
    assert answers[1].json()["code"] == "action_limit_reached"
    assert answers[1].headers["content-type"] == "application/problem+json"
