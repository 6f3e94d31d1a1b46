"""Scenario 01 — Kiezcafé (shared/scenarios/01): stamps and points from one purchase.

Mia's points, her Kaffeekarte (2 stamps a Monday, full on the fifth, one back with the refund),
the welcome croissant, the surprise of the fifth visit-week, DST and replays. The welcome e-mail
comes with the messaging issue (it will send it from the ``voucher.issued`` / ``member.enrolled``
events); it is not faked here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from treu.activities.model import LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import record_purchase, record_return
from treu.clock import FixedClock
from treu.ledger.service import get_balances, member_history
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import list_vouchers
from treu.stamps.service import member_stamp_cards
from treu.storage.uow import UnitOfWork

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).parents[2] / "examples" / "kiezcafe.yaml"


def test_mia_collects_41_points_over_seven_mondays_and_a_refund(
    new_uow: Callable[[], UnitOfWork], clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 3, 2, 8, tzinfo=BERLIN))
    with new_uow() as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant.id, document=yaml.safe_load(EXAMPLE.read_text())
        ).programme_id
    with new_uow() as uow:
        mia = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: "mia@example.de"},
            name="Mia",
            consents_={Channel.EMAIL: True},
            source="till",
        ).id

    def buy(external_id: str, at: datetime, *lines: LineIn) -> int:
        clock.set(at)
        purchase = PurchaseIn(
            external_id=external_id,
            currency="EUR",
            lines=list(lines),
            occurred_at=at,
            store="kastanienallee",
            channel="pos",
        )
        with new_uow() as uow:
            return record_purchase(
                uow, programme_id=programme_id, member=mia, purchase=purchase
            ).points

    cappuccinos = LineIn(sku="CAPPU", category="Kaffee", quantity=2, unit_price="3.40")
    # 1. every Monday 08:10 Berlin time, across the switch to summer time on 2026-03-29
    mondays = [datetime(2026, 3, 2, 8, 10, tzinfo=BERLIN) + timedelta(weeks=w) for w in range(7)]
    assert {m.utcoffset() for m in mondays} == {timedelta(hours=1), timedelta(hours=2)}
    assert [buy(f"bon-{m:%m%d}", m, cappuccinos) for m in mondays] == [6] * 7
    # 2. a croissant on 2026-03-09 at 15:00
    croissant = LineIn(sku="CROISSANT", category="Gebäck", unit_price="2.50")
    assert buy("bon-0309-2", datetime(2026, 3, 9, 15, tzinfo=BERLIN), croissant) == 2
    # 4. on 2026-04-14 one cappuccino of 2026-04-13 comes back: 3 points instead of 6
    clock.set(datetime(2026, 4, 14, 9, tzinfo=BERLIN))
    with new_uow() as uow:
        refund = record_return(
            uow,
            programme_id=programme_id,
            ret=ReturnIn(
                external_id="storno-0414",
                purchase_external_id="bon-0413",
                lines=[ReturnLineIn(line=0, quantity=1)],
            ),
        )
    assert refund.points == -3
    # replaying any purchase or the refund changes nothing
    assert buy("bon-0302", mondays[0], cappuccinos) == 6
    with new_uow() as uow:
        again = record_return(
            uow,
            programme_id=programme_id,
            ret=ReturnIn(
                external_id="storno-0414",
                purchase_external_id="bon-0413",
                lines=[ReturnLineIn(line=0, quantity=1)],
            ),
        )
    assert again.replayed

    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=mia).available == 7 * 6 + 2 - 3
        history = member_history(uow, tenant_id=tenant.id, member_id=mia)
        assert sum(h.points for h in history if h.unit == "points") == 41
        # the card: full after 2026-03-30, then 2 (week 15) + 2 - 1 (week 16)
        current, completed = member_stamp_cards(uow, tenant_id=tenant.id, member_id=mia)
        assert (current.number, current.stamps, current.stamps_needed) == (2, 3, 10)
        assert (completed.number, completed.status, completed.voucher_status) == (
            1,
            "completed",
            "issued",
        )
        vouchers = list_vouchers(uow, tenant_id=tenant.id, member_id=mia)
        assert [
            (v.reward_name, v.issued_at.astimezone(BERLIN).date().isoformat()) for v in vouchers
        ] == [
            ("Willkommens-Croissant", "2026-03-02"),
            ("Gratis Kaffee", "2026-03-30"),
            ("Überraschung des Hauses", "2026-03-30"),
        ]
        assert completed.voucher_code == vouchers[1].code
        stamps = [h for h in history if h.unit == "stamps"]
        assert sum(h.points for h in stamps) == 3
        first = next(h for h in stamps if h.activity_external_id == "bon-0302")
        assert first.explanations == ["Kaffeekarte: 2 stamps for 2 × Kaffee"]
        back = next(h for h in stamps if h.activity_external_id == "storno-0414")
        assert back.points == -1
        assert back.explanations == ["Kaffeekarte: 1 stamp taken back by the return"]
        # every award explains itself: the purchase, the rule, the points
        earn = next(h for h in history if h.activity_external_id == "bon-0309-2")
        assert earn.explanations == ["1 Punkt je Euro: 1 per 1.00 EUR on 2.50 EUR = 2 points"]
        refund_entry = next(h for h in history if h.activity_external_id == "storno-0414")
        assert refund_entry.points == -3
        assert "3 of 6 points" in refund_entry.explanations[0]
        assert verify_ledger(uow, tenant_id=tenant.id).ok
