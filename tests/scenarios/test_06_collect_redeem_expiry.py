"""Scenario 06 — Mercado Smart: collect and redeem with expiry (shared/scenarios/06).

Rui collects points in São Paulo; the January lot is used up first by his redemption, the
birthday lot's remainder expires at the end of July 2027, the December lot stays.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase
from treu.clock import FixedClock
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances, list_lots, member_history
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import redeem_reward
from treu.storage.uow import UnitOfWork

SP = ZoneInfo("America/Sao_Paulo")
EXAMPLE = Path(__file__).parents[2] / "examples" / "mercado-smart.yaml"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SP)


def test_rui_collects_redeems_and_loses_only_the_birthday_remainder(
    new_uow: Callable[[], UnitOfWork], clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(at(2026, 1, 1, 9))
    with new_uow() as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant.id, document=yaml.safe_load(EXAMPLE.read_text())
        ).programme_id
    with new_uow() as uow:
        rui = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: "rui@example.com.br"},
            name="Rui",
            birthday=date(1990, 7, 15),
        )

    def buy(external_id: str, when: datetime, lines: list[LineIn]) -> int:
        clock.set(when)
        with new_uow() as uow:
            return record_purchase(
                uow,
                programme_id=programme_id,
                member=rui.id,
                purchase=PurchaseIn(
                    external_id=external_id,
                    currency="BRL",
                    lines=lines,
                    occurred_at=when,
                    store="paulista",
                ),
            ).points

    def nightly(day: date) -> None:
        clock.set(datetime(day.year, day.month, day.day, 1, tzinfo=SP))
        run_nightly(new_uow, day=day, programme_id=programme_id)

    # 1. 150.00 of which 30.00 Tabak -> 120 points, expiring 2027-01-31
    assert (
        buy(
            "pdv-1",
            at(2026, 1, 10, 10),
            [
                LineIn(sku="ARROZ", category="Mercearia", unit_price="120.00"),
                LineIn(sku="CIG", category="Tabak", unit_price="30.00"),
            ],
        )
        == 120
    )
    # 2. birthday job, twice: 100 points once
    nightly(date(2026, 7, 15))
    run_nightly(new_uow, day=date(2026, 7, 15), programme_id=programme_id)
    # the job is idempotent even when its run record is ignored: the action's external id is
    from treu.jobs.nightly import birthday_bonus

    birthday_bonus(new_uow, programme_id, date(2026, 7, 15))
    # 3. Natal: double points
    assert (
        buy(
            "pdv-2",
            at(2026, 12, 22, 18),
            [LineIn(sku="PANETONE", category="Doces", unit_price="80.00")],
        )
        == 160
    )

    with new_uow() as uow:
        lots = list_lots(uow, tenant_id=tenant.id, member_id=rui.id)
        assert [(lot.amount, lot.expires_on) for lot in lots] == [
            (120, date(2027, 1, 31)),
            (100, date(2027, 7, 31)),
            (160, date(2027, 12, 31)),
        ]
        assert get_balances(uow, tenant_id=tenant.id, member_id=rui.id).available == 380

    # 4. redeem 200: 120 from January, 80 from the birthday lot
    clock.set(at(2027, 1, 5, 12))
    with new_uow() as uow:
        redemption = redeem_reward(
            uow,
            tenant_id=tenant.id,
            member_id=rui.id,
            reward_key="desconto-10",
            idempotency_key="rui-1",
        )
    assert redemption.points == 200
    with new_uow() as uow:
        assert [lot.remaining for lot in list_lots(uow, tenant_id=tenant.id, member_id=rui.id)] == [
            0,
            20,
            160,
        ]
        assert get_balances(uow, tenant_id=tenant.id, member_id=rui.id).available == 180

    # 5. nothing expires on 2027-02-01
    nightly(date(2027, 2, 1))
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=rui.id).expired == 0

    # 6. the reminder on 2027-07-01 names 20 points and 2027-07-31
    nightly(date(2027, 7, 1))
    with new_uow() as uow:
        reminders = list_events(uow, tenant_id=tenant.id, type="points.expiring")
    assert [(e["payload"]["points"], e["payload"]["expires_on"]) for e in reminders] == [
        (20, "2027-07-31")
    ]

    # 7. 20 points expire on 2027-08-01
    nightly(date(2027, 8, 1))
    with new_uow() as uow:
        balances = get_balances(uow, tenant_id=tenant.id, member_id=rui.id)
        assert (balances.available, balances.expired) == (160, 20)
        history = member_history(uow, tenant_id=tenant.id, member_id=rui.id)
        assert [(h.kind, h.points) for h in history] == [
            ("earn", 120),
            ("earn", 100),
            ("earn", 160),
            ("hold", -200),
            ("expire", -20),
        ]
        assert any("Natal" in text for h in history for text in h.explanations)
        report = verify_ledger(uow, tenant_id=tenant.id)
        assert report.ok, report.problems
