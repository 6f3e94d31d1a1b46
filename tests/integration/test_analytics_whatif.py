"""What if? The real history of January and February replayed under a proposal.

1 point per euro, points valid 30 days, a coffee for 30 points, tiers by points earned in the
calendar year (Gold from 100). Anna buys 50.00 (3 Jan) and 20.00 (10 Jan) and redeems a coffee
(15 Jan) from her first lot; Ben buys 80.00 (6 Jan), returns 30.00 of it (8 Jan) and buys 10.00
(20 Feb). The nightly run of 28 February expires what is left of the January lots: Anna's 20 +
20 and Ben's 50.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from treu.activities.model import PurchaseIn, ReturnIn
from treu.activities.service import record_purchase, record_return
from treu.analytics.service import WhatIf, simulate_programme
from treu.clock import FixedClock
from treu.errors import ErrorCode, InvalidInput
from treu.jobs.nightly import run_nightly
from treu.ledger.tables import transfers
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import redeem_reward
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


DOCUMENT: dict[str, Any] = {
    "key": "laden",
    "name": "Laden",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "point_value": "0.01",
    "expiry": {"type": "after", "days": 30},
    "rules": [
        {
            "key": "base",
            "name": "1 Punkt je Euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "rewards": [
        {"key": "kaffee", "name": "Kaffee", "kind": "free_product", "sku": "K", "cost": 30}
    ],
    "tiers": {
        "metric": "points_earned",
        "levels": [
            {"key": "bronze", "name": "Bronze", "threshold": 0},
            {"key": "gold", "name": "Gold", "threshold": 100},
        ],
    },
}


@pytest.fixture
def programme(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> str:
    clock.set(at(2025, 12, 20, 9))
    with new_uow() as uow:
        pid = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    people: dict[str, str] = {}
    n = 0

    def enrol(name: str, when: datetime) -> None:
        clock.set(when)
        with new_uow() as uow:
            people[name] = enrol_member(
                uow, programme_id=pid, identifiers_={IdentifierKind.EMAIL: f"{name}@x.org"}
            ).id

    def buy(name: str, total: str, when: datetime) -> str:
        nonlocal n
        n += 1
        clock.set(when)
        with new_uow() as uow:
            record_purchase(
                uow,
                programme_id=pid,
                member=people[name],
                purchase=PurchaseIn(
                    external_id=f"b{n}", currency="EUR", total=Decimal(total), occurred_at=when
                ),
            )
        return f"b{n}"

    enrol("anna", at(2026, 1, 2, 9))
    enrol("ben", at(2026, 1, 5, 9))
    buy("anna", "50.00", at(2026, 1, 3, 9))
    bens = buy("ben", "80.00", at(2026, 1, 6, 9))
    clock.set(at(2026, 1, 8, 9))
    with new_uow() as uow:
        record_return(
            uow,
            programme_id=pid,
            ret=ReturnIn(
                external_id="r1",
                purchase_external_id=bens,
                amount=Decimal("30.00"),
                occurred_at=at(2026, 1, 8, 9),
            ),
        )
    buy("anna", "20.00", at(2026, 1, 10, 9))
    clock.set(at(2026, 1, 15, 9))
    with new_uow() as uow:
        redeem_reward(
            uow,
            tenant_id=tenant.id,
            member_id=people["anna"],
            reward_key="kaffee",
            idempotency_key="k1",
        )
    for day in (date(2026, 2, 1), date(2026, 2, 28)):
        clock.set(at(day.year, day.month, day.day, 12))
        run_nightly(new_uow, day=day, programme_id=pid)
    buy("ben", "10.00", at(2026, 2, 20, 9))
    clock.set(at(2026, 3, 5, 12))
    return pid


def simulate(new_uow: NewUow, pid: str, document: dict[str, Any]) -> WhatIf:
    with new_uow() as uow:
        return simulate_programme(
            uow,
            programme_id=pid,
            document=document,
            first=date(2026, 1, 1),
            end=date(2026, 3, 1),
        )


def test_the_unchanged_programme_reproduces_the_real_ledger_exactly(
    new_uow: NewUow, programme: str
) -> None:
    # when the document in force is replayed over January and February
    result = simulate(new_uow, programme, DOCUMENT)
    # then the real ledger: 50 + 80 + 20 + 10 issued, 30 taken back by the return, a 30-point
    # coffee, 20 + 20 + 50 expired, 10 left — and the replay finds exactly that
    actual = result.actual
    assert (actual.points_issued, actual.points_taken_back) == (160, 30)
    assert (actual.points_redeemed, actual.points_expired, actual.outstanding_points) == (
        30,
        90,
        10,
    )
    assert actual.tiers == {"bronze": 2}
    assert result.proposed == actual
    assert (result.activities, result.changed) == (5, 0)


def test_double_points_a_dearer_coffee_and_no_expiry(new_uow: NewUow, programme: str) -> None:
    # given a proposal: 2 points per euro, the coffee at 40, points that never expire
    proposal = copy.deepcopy(DOCUMENT)
    proposal["rules"][0]["effect"]["points"] = 2
    proposal["rewards"][0]["cost"] = 40
    proposal["expiry"] = {"type": "never"}
    before = _transfers(new_uow)
    result = simulate(new_uow, programme, proposal)
    proposed = result.proposed
    # then 320 points are issued; Ben's return takes back 60 (160 earned, 100 on what he kept)
    assert (proposed.points_issued, proposed.points_taken_back) == (320, 60)
    # the coffee costs 40, nothing expires: 320 − 60 − 40 = 220 outstanding, worth 2.20
    assert (proposed.points_redeemed, proposed.points_expired) == (40, 0)
    assert proposed.outstanding_points == 220
    assert proposed.liability == Decimal("2.20")
    assert proposed.cost == Decimal("0.40")
    # Anna (140) and Ben (120) would both have reached Gold
    assert proposed.tiers == {"gold": 2}
    assert result.changed == 5
    # and the real ledger was not touched
    assert _transfers(new_uow) == before


def test_a_proposal_in_another_currency_is_refused(new_uow: NewUow, programme: str) -> None:
    proposal = {**DOCUMENT, "currency": "CHF"}
    with pytest.raises(InvalidInput) as caught:
        simulate(new_uow, programme, proposal)
    assert caught.value.code == ErrorCode.CURRENCY_MISMATCH


def _transfers(new_uow: NewUow) -> int:
    with new_uow() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(transfers)).scalar_one())
