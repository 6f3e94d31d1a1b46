"""Scenario 02 — Hooked Rewards (shared/scenarios/02) at the service level: Jo's year.

The HTTP walk-through with Sam, the webhook and the tier history is test_02_http.py; this one
shows the same numbers through the use cases an integration would call in process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from treu.activities.model import LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import ActivityResult, record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import ErrorCode, Rejected
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.rewards.service import redeem_reward
from treu.storage.uow import UnitOfWork
from treu.tiers.service import current_tier

LA = ZoneInfo("America/Los_Angeles")
EXAMPLE = Path(__file__).parents[2] / "examples" / "hooked-rewards.yaml"


def test_jo_reaches_enthusiast_keeps_it_through_a_return_and_loses_it_on_new_year(
    new_uow: Callable[[], UnitOfWork], clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 2, 1, 9, tzinfo=LA))
    with new_uow() as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant.id, document=yaml.safe_load(EXAMPLE.read_text())
        ).programme_id
    with new_uow() as uow:
        jo = enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: "jo@example.com"}
        ).id

    def order(when: datetime, external_id: str, merchandise: str, **extra: str) -> ActivityResult:
        clock.set(when)
        purchase = PurchaseIn.model_validate(
            {
                "external_id": external_id,
                "currency": "USD",
                "lines": [LineIn(sku="HOOK", unit_price=merchandise)],
                "prices_include_tax": False,
                **extra,
            }
        )
        with new_uow() as uow:
            return record_purchase(uow, programme_id=programme_id, purchase=purchase, member=jo)

    def balance() -> int:
        with new_uow() as uow:
            return get_balances(uow, tenant_id=tenant.id, member_id=jo).available

    def tier() -> str:
        with new_uow() as uow:
            found = current_tier(uow, load_programme(uow, programme_id), jo)
        assert found is not None
        return found.key

    def redeem(reward: str) -> None:
        with new_uow() as uow:
            redeem_reward(
                uow, tenant_id=tenant.id, member_id=jo, reward_key=reward, idempotency_key=reward
            )

    # shipping and tax earn nothing and do not qualify
    assert (
        order(
            datetime(2026, 2, 10, 14, tzinfo=LA), "o1", "120.00", shipping="8.00", tax="10.00"
        ).points
        == 120
    )
    second = order(datetime(2026, 5, 1, 11, tzinfo=LA), "o2", "140.00")
    assert (second.points, balance(), tier()) == (140, 260, "enthusiast")
    assert [e.kind for e in second.effects] == ["tier.upgraded"]
    assert order(datetime(2026, 6, 1, 10, tzinfo=LA), "o3", "100.00").points == 125
    assert balance() == 385

    clock.set(datetime(2026, 6, 10, 16, tzinfo=LA))
    with new_uow() as uow:
        record_return(
            uow,
            programme_id=programme_id,
            ret=ReturnIn(
                external_id="r2",
                purchase_external_id="o2",
                lines=[ReturnLineIn(line=0, quantity=1)],
            ),
        )
    assert (balance(), tier()) == (245, "enthusiast")

    with pytest.raises(Rejected) as refused:
        redeem("limited-drop")
    assert refused.value.code is ErrorCode.REWARD_NOT_ELIGIBLE
    assert balance() == 245
    redeem("seasonal-offer")
    assert balance() == 145

    clock.set(datetime(2027, 1, 1, 0, tzinfo=LA))
    run_nightly(new_uow, day=date(2027, 1, 1), programme_id=programme_id)
    assert (tier(), balance()) == ("insider", 145)
