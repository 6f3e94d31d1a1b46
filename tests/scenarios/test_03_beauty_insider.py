"""Scenario 03 — Beauty Insider (shared/scenarios/03) through the services.

Ana's donation in steps of 500 points and the donation report; the catalogue, stock under
concurrent redemptions on both databases, and a cancellation that gives points and stock back.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from threading import Barrier
from zoneinfo import ZoneInfo

import pytest
import yaml

from treu.activities.model import PurchaseIn
from treu.activities.service import record_purchase
from treu.clock import FixedClock
from treu.donations.service import DonationTotal, donate_points, donation_report
from treu.errors import ErrorCode, TreuError
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import RedemptionResult, cancel_voucher, list_rewards, redeem_reward
from treu.storage.uow import UnitOfWork

NEW_YORK = ZoneInfo("America/New_York")
EXAMPLE = Path(__file__).parents[2] / "examples" / "beauty-insider.yaml"


def test_three_members_race_for_two_lipsticks(
    new_uow: Callable[[], UnitOfWork], clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 5, 4, 10, tzinfo=NEW_YORK))
    with new_uow() as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant.id, document=yaml.safe_load(EXAMPLE.read_text())
        ).programme_id

    def member_with(name: str, total: str) -> str:
        with new_uow() as uow:
            member_id = enrol_member(
                uow,
                programme_id=programme_id,
                identifiers_={IdentifierKind.EMAIL: f"{name}@example.com"},
                name=name,
            ).id
        with new_uow() as uow:
            record_purchase(
                uow,
                programme_id=programme_id,
                member=member_id,
                purchase=PurchaseIn(external_id=f"order-{name}", currency="USD", total=total),
            )
        return member_id

    # 1. Ana orders 1,250.00 -> 1,250 points
    ana = member_with("ana", "1250.00")
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=ana).available == 1250
    # 2. Ana donates 1,000 points -> a donation of 20.00 USD is recorded; balance 250
    with new_uow() as uow:
        given = donate_points(
            uow,
            tenant_id=tenant.id,
            member_id=ana,
            charity="nbjc",
            points=1000,
            idempotency_key="ana-gives",
        )
    assert (given.amount, given.currency) == (Decimal("20.00"), "USD")
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=ana).available == 250
    # 3. Ana tries to donate 300 points -> invalid_amount (steps of 500); balance still 250
    with pytest.raises(TreuError) as refused, new_uow() as uow:
        donate_points(
            uow,
            tenant_id=tenant.id,
            member_id=ana,
            charity="nbjc",
            points=300,
            idempotency_key="ana-tries-300",
        )
    assert refused.value.code is ErrorCode.INVALID_AMOUNT
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=ana).available == 250
    # 4. Bea, Cy and Dee (800 points each) redeem the lipstick at the same moment
    racers = [member_with(name, "800.00") for name in ("bea", "cy", "dee")]
    start = Barrier(len(racers))

    def redeem(member_id: str) -> RedemptionResult | ErrorCode:
        start.wait()
        try:
            with new_uow() as uow:
                return redeem_reward(
                    uow,
                    tenant_id=tenant.id,
                    member_id=member_id,
                    reward_key="lipstick",
                    idempotency_key=f"lip-{member_id}",
                )
        except TreuError as exc:
            return exc.code

    with ThreadPoolExecutor(len(racers)) as pool:
        outcomes = dict(zip(racers, pool.map(redeem, racers), strict=True))
    won = [m for m, o in outcomes.items() if isinstance(o, RedemptionResult)]
    lost = [m for m, o in outcomes.items() if o is ErrorCode.OUT_OF_STOCK]
    assert (len(won), len(lost)) == (2, 1)
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=lost[0]).available == 800
        assert {m: get_balances(uow, tenant_id=tenant.id, member_id=m).available for m in won} == {
            m: 50 for m in won
        }
        stock = {r.key: r.stock for r in list_rewards(uow, programme_id=programme_id)}
    assert stock["lipstick"] == 0
    # 5. staff cancel one lipstick voucher before use: 750 points and the stock come back
    voucher = outcomes[won[0]]
    assert isinstance(voucher, RedemptionResult)
    with new_uow() as uow:
        cancel_voucher(
            uow,
            tenant_id=tenant.id,
            code=voucher.voucher.code,
            actor="staff:lee",
            reason="customer changed her mind",
        )
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=won[0]).available == 800
        assert {r.key: r.stock for r in list_rewards(uow, programme_id=programme_id)}[
            "lipstick"
        ] == 1
        report = verify_ledger(uow, tenant_id=tenant.id)
        assert report.ok, report.problems
        # Expected: "National Black Justice Coalition" — 20.00 USD, 1 donor, 1,000 points
        assert donation_report(uow, programme_id=programme_id) == [
            DonationTotal(
                "nbjc", "National Black Justice Coalition", Decimal("20.00"), "USD", 1, 1000, 1
            )
        ]
