"""Stamp cards on both databases: cards that fill, carry over, come back with returns, expire."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from treu.activities.model import LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import ActivityResult, record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import InvalidInput
from treu.jobs.nightly import run_nightly
from treu.ledger.model import MemberAccount, Unit
from treu.ledger.postings import balance
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import consume_voucher, list_vouchers
from treu.stamps.service import StampCardView, member_stamp_cards
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def document(stock: int | None = None, **card: Any) -> dict[str, Any]:
    kaffeekarte = {
        "key": "kaffeekarte",
        "name": "Kaffeekarte",
        "stamps_needed": 5,
        "earn": {"type": "per_unit", "items": {"categories": ["Kaffee"]}},
        "reward": "gratis-kaffee",
        **card,
    }
    return {
        "key": "cafe",
        "name": "Café",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rewards": [
            {
                "key": "gratis-kaffee",
                "name": "Gratis Kaffee",
                "kind": "free_product",
                "sku": "K",
                "stock": stock,
            }
        ],
        "stamp_cards": [kaffeekarte],
    }


class Cafe:
    def __init__(self, new_uow: NewUow, clock: FixedClock, tenant: Tenant, **card: Any) -> None:
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        clock.set(datetime(2026, 5, 4, 8, tzinfo=BERLIN))
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=document(**card)
            ).programme_id
        with new_uow() as uow:
            self.member = enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: "lea@example.de"},
                source="till",
            ).id
        self.bons = 0
        self.returns = itertools.count(1)

    def buy(self, coffees: int, *, day: int = 4, month: int = 5) -> ActivityResult:
        self.bons += 1
        at = datetime(2026, month, day, 8, self.bons, tzinfo=BERLIN)
        self.clock.set(at)
        purchase = PurchaseIn(
            external_id=f"bon-{self.bons}",
            currency="EUR",
            lines=[LineIn(sku="LATTE", category="Kaffee", quantity=coffees, unit_price="3.00")],
            occurred_at=at,
        )
        with self.new_uow() as uow:
            return record_purchase(
                uow, programme_id=self.programme_id, member=self.member, purchase=purchase
            )

    def give_back(self, bon: int, coffees: int) -> ActivityResult:
        with self.new_uow() as uow:
            return record_return(
                uow,
                programme_id=self.programme_id,
                ret=ReturnIn(
                    external_id=f"storno-{bon}-{next(self.returns)}",
                    purchase_external_id=f"bon-{bon}",
                    lines=[ReturnLineIn(line=0, quantity=coffees)],
                ),
            )

    def cards(self) -> list[StampCardView]:
        with self.new_uow() as uow:
            return member_stamp_cards(uow, tenant_id=self.tenant.id, member_id=self.member)

    def current(self) -> tuple[int, int]:
        card = self.cards()[0]
        return card.number, card.stamps

    def stamps_balance(self) -> int:
        with self.new_uow() as uow:
            return balance(uow, self.member, MemberAccount.AVAILABLE, Unit.STAMPS)

    def voucher_statuses(self) -> list[str]:
        with self.new_uow() as uow:
            found = list_vouchers(uow, tenant_id=self.tenant.id, member_id=self.member)
            return [v.status.value for v in found]

    def verified(self) -> bool:
        with self.new_uow() as uow:
            return verify_ledger(uow, tenant_id=self.tenant.id).ok


def kinds(result: ActivityResult) -> list[str]:
    return [e.kind for e in result.effects]


def test_twelve_coffees_on_a_five_card_complete_two_cards_and_carry_two(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)

    result = cafe.buy(12)

    assert kinds(result) == ["stamps.earned", "card.completed", "card.completed"]
    assert cafe.current() == (3, 2)
    assert cafe.stamps_balance() == 2
    assert cafe.voucher_statuses() == ["issued", "issued"]
    assert cafe.verified()


def test_without_carry_over_the_surplus_is_forfeited(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, carry_over=False)
    cafe.buy(4)

    cafe.buy(3)

    assert cafe.current() == (2, 0)
    assert cafe.voucher_statuses() == ["issued"]
    assert cafe.verified()


def test_a_return_takes_stamps_off_the_open_card(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.buy(3)

    back = cafe.give_back(1, 2)

    assert kinds(back) == ["stamps.returned"]
    assert back.effects[0].amount == -2
    assert cafe.current() == (1, 1)
    assert cafe.verified()


def test_a_return_that_empties_a_completed_card_cancels_its_unused_voucher(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.buy(4)
    cafe.buy(2)  # completes card 1, one stamp on card 2

    back = cafe.give_back(2, 2)

    assert kinds(back) == ["stamps.returned", "voucher.cancelled"]
    assert cafe.voucher_statuses() == ["cancelled"]
    # card 1 is open again with the 4 stamps of the first purchase; card 2 is gone
    assert cafe.current() == (1, 4)
    assert cafe.stamps_balance() == 4
    assert cafe.verified()


def test_a_used_voucher_is_kept_and_the_spent_stamps_are_forgiven(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.buy(5)  # completes card 1
    with new_uow() as uow:
        [voucher] = list_vouchers(uow, tenant_id=tenant.id, member_id=cafe.member)
        consume_voucher(uow, tenant_id=tenant.id, code=voucher.code)

    back = cafe.give_back(1, 3)

    assert back.effects[0].data["forgiven"] == 3
    assert back.effects[0].amount == 0
    assert "3 already on a completed card, forgiven" in back.effects[0].explanation
    assert cafe.voucher_statuses() == ["used"]
    assert cafe.current() == (2, 0)
    assert cafe.stamps_balance() == 0  # never below zero
    assert cafe.verified()


def test_keep_voucher_policy_keeps_an_unused_voucher(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, on_return="keep_voucher")
    cafe.buy(6)  # card 1 complete, 1 on card 2

    cafe.give_back(1, 6)

    assert cafe.voucher_statuses() == ["issued"]
    assert cafe.current() == (2, 0)
    assert cafe.verified()


def test_a_second_return_of_the_same_purchase_never_takes_more_than_it_gave(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.buy(2)
    cafe.buy(1)
    cafe.give_back(1, 1)

    cafe.give_back(1, 1)

    assert cafe.current() == (1, 1)
    assert cafe.verified()


def test_a_daily_cap_limits_the_stamps_per_programme_day(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, caps={"max_per_day": 2})

    first = cafe.buy(3)
    second = cafe.buy(1)
    next_day = cafe.buy(1, day=5)

    assert first.effects[0].explanation == (
        "Kaffeekarte: 2 stamps for 3 × Kaffee (at most 2 per day)"
    )
    assert second.effects[0].explanation == "Kaffeekarte: already stamped today"
    assert next_day.effects[0].amount == 1
    assert cafe.current() == (1, 3)


def test_an_incomplete_card_expires_after_its_days_in_the_nightly_run(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, expires_after_days=30)
    cafe.buy(3)
    clock.set(datetime(2026, 6, 5, 2, tzinfo=BERLIN))

    # first stamp 2026-05-04 08:01: still valid all of 3 June, gone when 4 June begins
    early = run_nightly(new_uow, day=date(2026, 6, 3), programme_id=cafe.programme_id)
    assert cafe.current() == (1, 3)
    run_nightly(new_uow, day=date(2026, 6, 4), programme_id=cafe.programme_id)
    again = run_nightly(new_uow, day=date(2026, 6, 4), programme_id=cafe.programme_id)

    assert next(r for r in early if r.step == "expire_stamp_cards").processed == 0
    assert next(r for r in again if r.step == "expire_stamp_cards").skipped
    assert cafe.current() == (2, 0)
    assert cafe.stamps_balance() == 0
    assert cafe.verified()
    assert cafe.buy(1, day=5, month=6).effects[0].data["number"] == 2


def test_a_card_of_zero_stamps_or_an_unknown_reward_is_refused(
    new_uow: NewUow, tenant: Tenant
) -> None:
    for bad, path in (
        ({"stamps_needed": 0}, "stamp_cards.0.stamps_needed"),
        ({"reward": "nope"}, "stamp_cards.0.reward"),
    ):
        with new_uow() as uow, pytest.raises(InvalidInput) as caught:
            apply_programme(uow, tenant_id=tenant.id, document=document(**bad))
        assert caught.value.details["errors"][0]["path"] == path


def test_the_almost_complete_event_is_published_once_per_card(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.buy(4)
    cafe.give_back(1, 1)
    cafe.buy(1)  # 4 of 5 again: no second event for card 1
    cafe.buy(5)  # card 1 full, card 2 at 4

    with new_uow() as uow:
        events = list_events(uow, tenant_id=tenant.id, type="stamps.almost_complete")
    assert [(e["payload"]["number"], e["payload"]["stamps"]) for e in events] == [(1, 4), (2, 4)]


def test_a_full_card_whose_reward_is_out_of_stock_completes_without_failing_the_purchase(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, stock=0)

    result = cafe.buy(5)

    completed = result.effects[1]
    assert completed.kind == "card.completed"
    assert completed.data["voucher_error"] == "out_of_stock"
    assert "no voucher could be issued" in completed.explanation
    assert cafe.voucher_statuses() == []
    assert cafe.current() == (2, 0)
    assert cafe.verified()
