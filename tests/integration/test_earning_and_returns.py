"""Earning, returns, claims, pending points, holds and adjustments — worked examples on both DBs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from treu.activities.model import ActionIn, LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import (
    claim_purchase,
    record_action,
    record_purchase,
    record_return,
    simulate_purchase,
)
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.jobs.nightly import STEPS, run_nightly
from treu.ledger.model import Balances, MemberAccount, member_account_id
from treu.ledger.service import (
    activate_points,
    adjust_points,
    capture_hold,
    get_balances,
    hold_points,
    member_history,
    void_hold,
)
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.service import set_blocked, update_profile
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import (
    cancel_voucher,
    list_vouchers,
    redeem_reward,
    validate_voucher,
)
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "key": "shop",
        "name": "Shop",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "locale": "de",
        "stores": [{"key": "web", "name": "Online", "channel": "online"}],
        "rules": [
            {
                "key": "base",
                "name": "1 Punkt je Euro",
                "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
            },
            {
                "key": "review",
                "name": "Bewertung",
                "when": {"activity": "action", "action_types": ["review"]},
                "effect": {"type": "fixed", "points": 20},
                "caps": {"per_member": {"month": 40}},
            },
        ],
        "rewards": [{"key": "coffee", "name": "Kaffee", "kind": "custom", "cost": 50}],
    }
    doc.update(overrides)
    return doc


class Shop:
    """A programme and helpers to act in it, as a till or shop would."""

    def __init__(self, new_uow: NewUow, clock: FixedClock, tenant: Tenant, **overrides: Any):
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=document(**overrides)
            ).programme_id

    def enrol(self, email: str) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow, programme_id=self.programme_id, identifiers_={IdentifierKind.EMAIL: email}
            ).id

    def buy(self, member: str | None, external_id: str, *prices: str) -> Any:
        lines = [LineIn(sku=f"SKU{i}", unit_price=p) for i, p in enumerate(prices)]
        with self.new_uow() as uow:
            return record_purchase(
                uow,
                programme_id=self.programme_id,
                member=member,
                purchase=PurchaseIn(external_id=external_id, currency="EUR", lines=lines),
            )

    def give_back(self, external_id: str, purchase: str, **kwargs: Any) -> Any:
        with self.new_uow() as uow:
            return record_return(
                uow,
                programme_id=self.programme_id,
                ret=ReturnIn(external_id=external_id, purchase_external_id=purchase, **kwargs),
            )

    def balances(self, member_id: str) -> Balances:
        with self.new_uow() as uow:
            return get_balances(uow, tenant_id=self.tenant.id, member_id=member_id)

    def spend(self, member_id: str, points: int, key: str) -> None:
        with self.new_uow() as uow:
            hold_id = hold_points(
                uow,
                tenant_id=self.tenant.id,
                member_id=member_id,
                points=points,
                idempotency_key=key,
            )
        with self.new_uow() as uow:
            capture_hold(uow, tenant_id=self.tenant.id, hold_id=hold_id)

    def verify(self) -> None:
        with self.new_uow() as uow:
            report = verify_ledger(uow, tenant_id=self.tenant.id)
        assert report.ok, report.problems


def code_of(call: Callable[[], object]) -> ErrorCode:
    with pytest.raises(TreuError) as caught:
        call()
    return caught.value.code


def test_a_partial_return_takes_back_what_the_rest_no_longer_earns(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    mia = shop.enrol("mia@example.org")
    # given Mia bought two items of 3.40: 6 points (6.80 rounded down)
    assert shop.buy(mia, "o-1", "3.40", "3.40").points == 6
    # when one of them comes back
    result = shop.give_back("r-1", "o-1", lines=[ReturnLineIn(line=0, quantity=1)])
    # then the purchase is worth 3 points now: 3 taken back, with the reason
    assert result.points == -3
    assert "3 of 6 points" in result.awards[0].explanation
    assert shop.balances(mia).available == 3
    # and the rest comes back too: nothing left to earn, nothing more to return
    assert shop.give_back("r-2", "o-1", amount="3.40").points == -3
    assert code_of(lambda: shop.give_back("r-3", "o-1", amount="0.01")) is (
        ErrorCode.RETURN_EXCEEDS_PURCHASE
    )
    assert shop.balances(mia).available == 0
    shop.verify()


def test_a_line_returned_in_full_no_longer_earns_its_fixed_bonus(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    bonus = {
        "key": "bonus",
        "name": "10 Punkte für SKU1",
        "when": {"include": {"skus": ["SKU1"]}},
        "effect": {"type": "fixed", "points": 10},
    }
    shop = Shop(new_uow, clock, tenant, rules=[document()["rules"][0], bonus])
    mia = shop.enrol("mia@example.org")
    # given Mia bought SKU0 for 10.00 and SKU1 for 5.00: 15 points plus the 10-point bonus
    assert shop.buy(mia, "o-1", "10.00", "5.00").points == 25
    # when SKU1 comes back in full, the line is gone and so is its bonus
    result = shop.give_back("r-1", "o-1", lines=[ReturnLineIn(line=1, quantity=1)])
    assert result.points == -15
    assert shop.balances(mia).available == 10
    shop.verify()


def test_return_policies_decide_what_a_member_loses_after_spending(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    outcomes = {}
    for policy in ("reverse_pending_only", "within_balance", "allow_negative"):
        shop = Shop(
            new_uow,
            clock,
            tenant,
            key=f"shop-{policy.replace('_', '-')}",
            returns={"policy": policy},
        )
        ben = shop.enrol("ben@example.org")
        # given Ben earned 100 points and spent 80 of them
        shop.buy(ben, "o-1", "100.00")
        shop.spend(ben, 80, key=f"spend-{policy}")
        # when the whole purchase is returned
        result = shop.give_back("r-1", "o-1", amount="100.00")
        balances = shop.balances(ben)
        outcomes[policy] = (result.points, result.forgiven, balances.available, balances.negative)
        shop.verify()
    assert outcomes == {
        "reverse_pending_only": (0, 100, 20, 0),  # points were no longer pending: nothing back
        "within_balance": (-20, 80, 0, 0),  # what he still had, the rest forgiven
        "allow_negative": (-100, 0, -80, 80),  # all of it: he owes 80
    }


def test_a_negative_balance_is_paid_back_by_the_next_points(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, returns={"policy": "allow_negative"})
    cy = shop.enrol("cy@example.org")
    shop.buy(cy, "o-1", "50.00")
    shop.spend(cy, 50, key="cy-1")
    shop.give_back("r-1", "o-1", amount="50.00")
    assert shop.balances(cy).available == -50
    shop.buy(cy, "o-2", "70.00")
    balances = shop.balances(cy)
    assert (balances.available, balances.negative) == (20, 0)
    assert code_of(lambda: shop.spend(cy, 21, key="cy-2")) is ErrorCode.INSUFFICIENT_POINTS
    shop.verify()


def test_guest_purchases_are_recorded_and_can_be_claimed_within_the_window(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(
        new_uow, clock, tenant, returns={"policy": "within_balance", "claim_window_days": 14}
    )
    guest = shop.buy(None, "o-guest", "12.00")
    assert (guest.member_id, guest.points) == (None, 0)
    dee = shop.enrol("dee@example.org")
    clock.advance(timedelta(days=3))
    with new_uow() as uow:
        claimed = claim_purchase(
            uow, programme_id=shop.programme_id, member=dee, external_id="o-guest"
        )
    assert claimed.points == 12
    with new_uow() as uow:
        again = claim_purchase(
            uow, programme_id=shop.programme_id, member=dee, external_id="o-guest"
        )
    assert again.replayed
    eve = shop.enrol("eve@example.org")
    with new_uow() as uow:
        assert (
            code_of(
                lambda: claim_purchase(
                    uow, programme_id=shop.programme_id, member=eve, external_id="o-guest"
                )
            )
            is ErrorCode.ALREADY_CLAIMED
        )
    shop.buy(None, "o-old", "9.00")
    clock.advance(timedelta(days=15))
    with new_uow() as uow:
        assert (
            code_of(
                lambda: claim_purchase(
                    uow, programme_id=shop.programme_id, member=eve, external_id="o-old"
                )
            )
            is ErrorCode.CLAIM_WINDOW_CLOSED
        )
    assert shop.balances(dee).available == 12
    assert shop.balances(eve).available == 0
    shop.verify()


def test_pending_points_become_spendable_after_the_return_window(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, pending={"mode": "after_days", "days": 14})
    clock.set(datetime(2026, 3, 1, 10, tzinfo=UTC))
    fay = shop.enrol("fay@example.org")
    assert shop.buy(fay, "o-1", "30.00").pending
    assert (shop.balances(fay).available, shop.balances(fay).pending) == (0, 30)
    # a return while pending takes the points back from pending under every policy
    shop.give_back("r-1", "o-1", amount="10.00")
    assert shop.balances(fay).pending == 20
    clock.set(datetime(2026, 3, 15, 23, tzinfo=UTC))
    run_nightly(new_uow, day=datetime(2026, 3, 16).date(), programme_id=shop.programme_id)
    assert (shop.balances(fay).available, shop.balances(fay).pending) == (20, 0)
    shop.verify()


def test_points_held_until_activated_by_the_shop(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, pending={"mode": "on_activation"})
    gil = shop.enrol("gil@example.org")
    result = shop.buy(gil, "o-1", "25.00")
    assert shop.balances(gil).pending == 25
    with new_uow() as uow:
        assert activate_points(uow, tenant_id=tenant.id, activity_id=result.activity_id) == 25
    with new_uow() as uow:
        assert activate_points(uow, tenant_id=tenant.id, activity_id=result.activity_id) == 0
    assert shop.balances(gil).available == 25
    shop.verify()


def test_a_void_puts_held_points_back_where_they_were(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    hal = shop.enrol("hal@example.org")
    shop.buy(hal, "o-1", "40.00")
    with new_uow() as uow:
        hold_id = hold_points(
            uow, tenant_id=tenant.id, member_id=hal, points=30, idempotency_key="h1"
        )
    with new_uow() as uow:  # the same request again: the same hold, not a second one
        assert (
            hold_points(uow, tenant_id=tenant.id, member_id=hal, points=30, idempotency_key="h1")
            == hold_id
        )
    assert (shop.balances(hal).available, shop.balances(hal).held) == (10, 30)
    with new_uow() as uow:
        void_hold(uow, tenant_id=tenant.id, hold_id=hold_id)
    with new_uow() as uow:
        assert code_of(lambda: capture_hold(uow, tenant_id=tenant.id, hold_id=hold_id)) is (
            ErrorCode.HOLD_NOT_OPEN
        )
    assert (shop.balances(hal).available, shop.balances(hal).held) == (40, 0)
    shop.verify()


def test_adjustments_need_a_reason_and_happen_once(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    ivy = shop.enrol("ivy@example.org")
    for _ in range(2):
        with new_uow() as uow:
            adjust_points(
                uow,
                tenant_id=tenant.id,
                member_id=ivy,
                points=25,
                reason="Kulanz: Kaffee verschüttet",
                actor="staff:anna",
                idempotency_key="adj-1",
            )
    with new_uow() as uow:
        assert (
            code_of(
                lambda: adjust_points(
                    uow,
                    tenant_id=tenant.id,
                    member_id=ivy,
                    points=-5,
                    reason=" ",
                    actor="staff:anna",
                    idempotency_key="adj-2",
                )
            )
            is ErrorCode.VALIDATION_ERROR
        )
    with new_uow() as uow:
        assert (
            code_of(
                lambda: adjust_points(
                    uow,
                    tenant_id=tenant.id,
                    member_id=ivy,
                    points=-30,
                    reason="Korrektur",
                    actor="staff:anna",
                    idempotency_key="adj-3",
                )
            )
            is ErrorCode.INSUFFICIENT_POINTS
        )
    with new_uow() as uow:
        adjust_points(
            uow,
            tenant_id=tenant.id,
            member_id=ivy,
            points=-5,
            reason="Korrektur",
            actor="staff:anna",
            idempotency_key="adj-4",
        )
    assert shop.balances(ivy).available == 20
    with new_uow() as uow:
        reasons = [h.reason for h in member_history(uow, tenant_id=tenant.id, member_id=ivy)]
    assert reasons == ["Kulanz: Kaffee verschüttet", "Korrektur"]
    shop.verify()


def test_caps_per_member_and_month_limit_actions(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    jo = shop.enrol("jo@example.org")
    earned = []
    for i in range(2):
        with new_uow() as uow:
            earned.append(
                record_action(
                    uow,
                    programme_id=shop.programme_id,
                    member=jo,
                    action=ActionIn(external_id=f"rev-{i}", type="review"),
                ).points
            )
    assert earned == [20, 20]
    # the month's cap is used up: a third review is refused (see test_action_limits.py)
    with pytest.raises(TreuError) as refused, new_uow() as uow:
        record_action(
            uow,
            programme_id=shop.programme_id,
            member=jo,
            action=ActionIn(external_id="rev-2", type="review"),
        )
    assert refused.value.code is ErrorCode.ACTION_LIMIT_REACHED
    clock.advance(timedelta(days=31))
    with new_uow() as uow:
        assert (
            record_action(
                uow,
                programme_id=shop.programme_id,
                member=jo,
                action=ActionIn(external_id="rev-next", type="review"),
            ).points
            == 20
        )


def test_rejected_requests_change_nothing(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    kai = shop.enrol("kai@example.org")
    shop.buy(kai, "o-1", "10.00")
    before = shop.balances(kai)
    with new_uow() as uow:
        events_before = len(list_events(uow, tenant_id=tenant.id))

    def purchase(**fields: Any) -> PurchaseIn:
        return PurchaseIn(**{"external_id": "o-bad", "currency": "EUR", "total": "5.00", **fields})

    attempts = {
        "currency": lambda uow: record_purchase(
            uow, programme_id=shop.programme_id, member=kai, purchase=purchase(currency="USD")
        ),
        "decimals": lambda uow: record_purchase(
            uow, programme_id=shop.programme_id, member=kai, purchase=purchase(total="5.005")
        ),
        "future": lambda uow: record_purchase(
            uow,
            programme_id=shop.programme_id,
            member=kai,
            purchase=purchase(occurred_at=clock.now() + timedelta(days=1)),
        ),
        "store": lambda uow: record_purchase(
            uow, programme_id=shop.programme_id, member=kai, purchase=purchase(store="mars")
        ),
        "member": lambda uow: record_purchase(
            uow,
            programme_id=shop.programme_id,
            member="email:nobody@example.org",
            purchase=purchase(),
        ),
        "return": lambda uow: record_return(
            uow,
            programme_id=shop.programme_id,
            ret=ReturnIn(external_id="r-x", purchase_external_id="nope", amount="1.00"),
        ),
        "too_much": lambda uow: record_return(
            uow,
            programme_id=shop.programme_id,
            ret=ReturnIn(external_id="r-y", purchase_external_id="o-1", amount="10.01"),
        ),
    }
    codes = {}
    for name, attempt in attempts.items():
        with new_uow() as uow:
            codes[name] = code_of(lambda attempt=attempt, uow=uow: attempt(uow))
    assert codes == {
        "currency": ErrorCode.CURRENCY_MISMATCH,
        "decimals": ErrorCode.INVALID_AMOUNT,
        "future": ErrorCode.VALIDATION_ERROR,
        "store": ErrorCode.STORE_NOT_FOUND,
        "member": ErrorCode.MEMBER_NOT_FOUND,
        "return": ErrorCode.PURCHASE_NOT_FOUND,
        "too_much": ErrorCode.RETURN_EXCEEDS_PURCHASE,
    }
    with new_uow() as uow:
        set_blocked(uow, tenant_id=tenant.id, member_id=kai, blocked=True)
    assert code_of(lambda: shop.buy(kai, "o-2", "5.00")) is ErrorCode.MEMBER_BLOCKED
    assert shop.balances(kai) == before
    with new_uow() as uow:
        assert len(list_events(uow, tenant_id=tenant.id)) == events_before + 1  # member.updated
    shop.verify()


def test_simulation_explains_and_writes_nothing(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    with new_uow() as uow:
        awards = simulate_purchase(
            uow,
            programme_id=shop.programme_id,
            purchase=PurchaseIn(external_id="sim", currency="EUR", total="12.99"),
        )
    assert [(a.rule_key, a.points) for a in awards] == [("base", 12)]
    assert "12.99 EUR" in awards[0].explanation
    assert shop.buy(None, "sim", "1.00").points == 0  # "sim" was never recorded


def test_a_claim_after_a_guest_return_earns_only_what_was_kept(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    # given a guest bought 20.00 + 10.00 and returned the 10.00 item at the till
    shop.buy(None, "o-guest", "20.00", "10.00")
    shop.give_back("r-guest", "o-guest", lines=[ReturnLineIn(line=1, quantity=1)])
    # when Fay claims the receipt
    fay = shop.enrol("fay@example.org")
    with new_uow() as uow:
        claimed = claim_purchase(
            uow, programme_id=shop.programme_id, member=fay, external_id="o-guest"
        )
    # then she earns on the 20.00 she kept, and returning the rest takes back exactly that
    assert claimed.points == 20
    assert shop.give_back("r-fay", "o-guest", amount="20.00").points == -20
    assert shop.balances(fay).available == 0
    shop.verify()


def test_a_return_is_judged_by_the_facts_the_purchase_earned_with(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    vip_rule = {
        "key": "vip",
        "name": "VIP bonus",
        "when": {"member_attributes": {"vip": True}},
        "effect": {"type": "bonus", "points": 10},
    }
    base = document()["rules"]
    shop = Shop(new_uow, clock, tenant, rules=[*base, vip_rule])
    gil = shop.enrol("gil@example.org")
    with new_uow() as uow:
        update_profile(uow, tenant_id=tenant.id, member_id=gil, attributes={"vip": True})
    # given Gil bought as a VIP: 30 + 10 points
    assert shop.buy(gil, "o-1", "30.00").points == 40
    # and is no longer a VIP today
    with new_uow() as uow:
        update_profile(uow, tenant_id=tenant.id, member_id=gil, attributes={"vip": False})
    # when he returns half of it, the VIP bonus he earned stays (the rest still qualifies)
    result = shop.give_back("r-1", "o-1", amount="15.00")
    assert result.points == -15
    assert shop.balances(gil).available == 25
    shop.verify()


def test_a_retried_purchase_replays_even_after_the_member_was_blocked(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    hal = shop.enrol("hal@example.org")
    first = shop.buy(hal, "o-1", "12.00")
    with new_uow() as uow:
        set_blocked(uow, tenant_id=tenant.id, member_id=hal, blocked=True)
    again = shop.buy(hal, "o-1", "12.00")
    assert (again.replayed, again.points, again.activity_id) == (True, 12, first.activity_id)
    assert code_of(lambda: shop.buy(hal, "o-2", "12.00")) is ErrorCode.MEMBER_BLOCKED
    shop.verify()


def test_points_given_back_by_a_void_pay_the_debt_first(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, returns={"policy": "allow_negative"})
    ida = shop.enrol("ida@example.org")
    shop.buy(ida, "o-1", "80.00")
    # given Ida's 80 points are held at checkout and the purchase is then returned: she owes 80
    with new_uow() as uow:
        hold_id = hold_points(
            uow, tenant_id=tenant.id, member_id=ida, points=80, idempotency_key="checkout-1"
        )
    shop.give_back("r-1", "o-1", amount="80.00")
    assert shop.balances(ida).negative == 80
    # when the checkout is cancelled, the 80 points come back and pay the debt
    with new_uow() as uow:
        void_hold(uow, tenant_id=tenant.id, hold_id=hold_id)
    balances = shop.balances(ida)
    assert (balances.available, balances.negative, balances.held) == (0, 0, 0)
    # so they cannot be spent a second time
    assert code_of(lambda: shop.spend(ida, 80, key="again")) is ErrorCode.INSUFFICIENT_POINTS
    shop.verify()


def test_points_past_their_date_cannot_be_spent_before_the_nightly_run(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, expiry={"type": "after", "days": 30})
    jo = shop.enrol("jo@example.org")
    shop.buy(jo, "o-1", "60.00")
    # given the points' last day has passed and no nightly run has expired them yet
    clock.advance(timedelta(days=32))
    # when Jo tries to spend them, they are gone
    assert code_of(lambda: shop.spend(jo, 50, key="late")) is ErrorCode.INSUFFICIENT_POINTS
    # and the next successful spend records the expiry itself
    shop.buy(jo, "o-2", "20.00")
    shop.spend(jo, 20, key="fresh")
    balances = shop.balances(jo)
    assert (balances.available, balances.expired) == (0, 60)
    shop.verify()


def test_the_nightly_run_refuses_a_day_that_has_not_begun(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, pending={"mode": "after_days", "days": 14})
    clock.set(datetime(2026, 3, 1, 10, tzinfo=UTC))
    kim = shop.enrol("kim@example.org")
    shop.buy(kim, "o-1", "30.00")
    # given it is 23:00 in Berlin on 15 March: 16 March has not begun there
    clock.set(datetime(2026, 3, 15, 22, tzinfo=UTC))
    with pytest.raises(TreuError) as refused:
        run_nightly(new_uow, day=datetime(2026, 3, 16).date(), programme_id=shop.programme_id)
    assert refused.value.code is ErrorCode.VALIDATION_ERROR
    # and a run far ahead would have activated the points early: nothing changed
    with pytest.raises(TreuError):
        run_nightly(new_uow, day=datetime(2027, 1, 1).date(), programme_id=shop.programme_id)
    assert (shop.balances(kim).available, shop.balances(kim).pending) == (0, 30)
    # when midnight has passed in Berlin, the run goes ahead
    clock.set(datetime(2026, 3, 15, 23, 1, tzinfo=UTC))
    steps = run_nightly(new_uow, day=datetime(2026, 3, 16).date(), programme_id=shop.programme_id)
    assert [s.step for s in steps] == [name for name, _ in STEPS]
    assert [s.step for s in steps][:5] == [
        "activate_pending",
        "birthday_bonus",
        "expire_points",
        "expire_vouchers",
        "expiry_reminders",
    ]
    assert (shop.balances(kim).available, shop.balances(kim).pending) == (30, 0)
    # and a second run of the same date skips every step
    again = run_nightly(new_uow, day=datetime(2026, 3, 16).date(), programme_id=shop.programme_id)
    assert all(s.skipped for s in again)
    shop.verify()


def test_inactive_members_lose_their_points_at_night(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, expiry={"type": "inactivity", "months": 6})
    lea, max_ = shop.enrol("lea@example.org"), shop.enrol("max@example.org")
    start = clock.now()
    shop.buy(lea, "o-1", "40.00")
    shop.buy(max_, "o-2", "50.00")
    # given Max comes back after five months and Lea does not
    clock.set(start + timedelta(days=150))
    shop.buy(max_, "o-3", "10.00")
    # when six months have passed since Lea's last purchase
    clock.set(start + timedelta(days=190))
    run_nightly(new_uow, day=clock.now().date(), programme_id=shop.programme_id)
    # then Lea's points are gone and Max keeps his
    assert (shop.balances(lea).available, shop.balances(lea).expired) == (0, 40)
    assert (shop.balances(max_).available, shop.balances(max_).expired) == (60, 0)
    shop.verify()


def test_a_return_frees_no_cap_room_in_a_later_month(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    capped = {
        "key": "base",
        "name": "1 per euro, 10 a month",
        "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        "caps": {"per_member": {"month": 10}},
    }
    shop = Shop(new_uow, clock, tenant, rules=[capped])
    clock.set(datetime(2026, 3, 10, 10, tzinfo=UTC))
    mo = shop.enrol("mo@example.org")
    assert shop.buy(mo, "march", "10.00").points == 10
    clock.set(datetime(2026, 4, 10, 10, tzinfo=UTC))
    assert shop.buy(mo, "april-1", "10.00").points == 10
    # when March's purchase comes back in April, its points go, in March
    assert shop.give_back("r-march", "march", amount="10.00").points == -10
    # then April's cap is still used up
    assert shop.buy(mo, "april-2", "10.00").points == 0
    shop.verify()


def test_a_return_gives_the_campaign_its_budget_back(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    campaign = {
        "key": "launch",
        "name": "Launch week, 15 points in all",
        "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        "caps": {"budget": 15},
    }
    shop = Shop(new_uow, clock, tenant, rules=[campaign])
    ned, ola = shop.enrol("ned@example.org"), shop.enrol("ola@example.org")
    assert shop.buy(ned, "o-1", "10.00").points == 10
    shop.give_back("r-1", "o-1", amount="10.00")
    # the 10 points Ned gave back are the campaign's again
    assert shop.buy(ola, "o-2", "20.00").points == 15
    shop.verify()


def test_a_voucher_is_good_to_the_end_of_its_last_local_day_and_then_stays_expired(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    reward = {"key": "coffee", "name": "Kaffee", "kind": "custom", "cost": 50}
    shop = Shop(new_uow, clock, tenant, rewards=[{**reward, "voucher_valid_days": 30}])
    clock.set(datetime(2026, 3, 10, 14, tzinfo=UTC))
    pia = shop.enrol("pia@example.org")
    shop.buy(pia, "o-1", "60.00")
    with new_uow() as uow:
        voucher = redeem_reward(
            uow, tenant_id=tenant.id, member_id=pia, reward_key="coffee", idempotency_key="r-1"
        ).voucher
    # issued on 10 March: good all of 9 April in Berlin, which ends at 22:00 UTC (summer time)
    assert voucher.expires_at == datetime(2026, 4, 9, 22, tzinfo=UTC)
    clock.set(datetime(2026, 4, 9, 22, 30, tzinfo=UTC))
    # an expired voucher cannot be cancelled to get the points back
    with new_uow() as uow:
        assert (
            code_of(lambda: cancel_voucher(uow, tenant_id=tenant.id, code=voucher.code, actor="t"))
            is ErrorCode.VOUCHER_EXPIRED
        )
    assert shop.balances(pia).available == 10
    shop.verify()


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        (
            "UPDATE accounts SET balance = balance + 5 WHERE id = :available",
            {"cached_balance_equals_replay", "active_lots_equal_available"},
        ),
        (
            "UPDATE lots SET remaining = remaining - 1"
            " WHERE member_id = :member AND status = 'active' AND remaining > 1",
            {"lot_remaining_equals_allocations", "active_lots_equal_available"},
        ),
        (
            "UPDATE transfers SET activity_id = NULL WHERE debit_account_id = :debt",
            {"negative_only_by_policy"},
        ),
    ],
    ids=["balance", "lot", "debt-without-return"],
)
def test_verify_finds_a_ledger_that_was_tampered_with(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant, tamper: str, broken: set[str]
) -> None:
    shop = Shop(new_uow, clock, tenant, returns={"policy": "allow_negative"})
    quinn = shop.enrol("quinn@example.org")
    shop.buy(quinn, "o-1", "50.00")
    shop.buy(quinn, "o-2", "30.00")
    shop.spend(quinn, 70, key="q-1")
    shop.give_back("r-1", "o-1", amount="50.00")  # 10 left, 40 owed
    shop.buy(quinn, "o-3", "20.00")  # pays 20 of the debt
    shop.buy(quinn, "o-4", "50.00")  # pays the other 20, 30 left in this lot
    shop.verify()
    with new_uow() as uow:
        uow.conn.execute(
            text(tamper),
            {
                "member": quinn,
                "available": member_account_id(quinn, MemberAccount.AVAILABLE),
                "debt": member_account_id(quinn, MemberAccount.DEBT),
            },
        )
        uow.commit()
    with new_uow() as uow:
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert set(report.problems) == broken


def test_a_programme_cannot_change_its_currency(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    with new_uow() as uow:
        refused = code_of(
            lambda: apply_programme(uow, tenant_id=tenant.id, document=document(currency="CHF"))
        )
    assert refused is ErrorCode.INVALID_PROGRAMME
    with new_uow() as uow:  # a change of anything else is a new revision
        changed = apply_programme(uow, tenant_id=tenant.id, document=document(name="Shop 2"))
    assert (changed.programme_id, changed.revision) == (shop.programme_id, 2)


def test_redeeming_counts_as_activity_for_inactivity_expiry(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, expiry={"type": "inactivity", "months": 6})
    ray = shop.enrol("ray@example.org")
    start = clock.now()
    shop.buy(ray, "o-1", "80.00")
    # given Ray last bought 7 months ago, but redeemed a coffee 2 months ago
    clock.set(start + timedelta(days=150))
    with new_uow() as uow:
        redeem_reward(
            uow, tenant_id=tenant.id, member_id=ray, reward_key="coffee", idempotency_key="k"
        )
    clock.set(start + timedelta(days=210))
    run_nightly(new_uow, day=clock.now().date(), programme_id=shop.programme_id)
    # then he is not inactive: his 30 points stay
    assert (shop.balances(ray).available, shop.balances(ray).expired) == (30, 0)
    shop.verify()


def test_a_correction_names_what_it_corrects_and_happens_once(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    sam, tia = shop.enrol("sam@example.org"), shop.enrol("tia@example.org")

    def adjust(member: str, points: int, key: str, corrects: str | None = None) -> str:
        with new_uow() as uow:
            return adjust_points(
                uow,
                tenant_id=tenant.id,
                member_id=member,
                points=points,
                reason="typo at the counter",
                actor="staff:ana",
                idempotency_key=key,
                corrects=corrects,
            )

    # given staff credited Sam 500 instead of 50
    wrong = adjust(sam, 500, "goodwill-1")
    # when they take the 450 back as a correction of that credit
    fix = adjust(sam, -450, "fix-1", corrects=wrong)
    assert adjust(sam, -450, "fix-1", corrects=wrong) == fix  # a retry is the same correction
    assert shop.balances(sam).available == 50
    # then the credit cannot be corrected a second time, nor through another member
    assert code_of(lambda: adjust(sam, -50, "fix-2", corrects=wrong)) is (
        ErrorCode.ALREADY_CORRECTED
    )
    assert code_of(lambda: adjust(tia, 10, "fix-3", corrects=wrong)) is ErrorCode.NOT_FOUND
    assert shop.balances(sam).available == 50
    shop.verify()


def test_limits_and_windows_hold_at_redemption_and_vouchers_run_their_life(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    catalogue = [
        {
            "key": "coffee",
            "name": "Kaffee",
            "kind": "custom",
            "cost": 10,
            "per_member_limit": 2,
            "voucher_valid_days": 7,
        },
        {
            "key": "summer",
            "name": "Eis",
            "kind": "custom",
            "cost": 10,
            "available_from": "2026-06-01T00:00:00+02:00",
        },
    ]
    shop = Shop(new_uow, clock, tenant, rewards=catalogue)
    clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    wim = shop.enrol("wim@example.org")
    shop.buy(wim, "o-1", "100.00")

    def redeem(reward: str, key: str) -> Any:
        with new_uow() as uow:
            return redeem_reward(
                uow, tenant_id=tenant.id, member_id=wim, reward_key=reward, idempotency_key=key
            )

    first = redeem("coffee", "c-1").voucher
    redeem("coffee", "c-2")
    # a third coffee is over the per-member limit, the ice cream is not on offer before June
    assert code_of(lambda: redeem("coffee", "c-3")) is ErrorCode.REDEMPTION_LIMIT_REACHED
    assert code_of(lambda: redeem("summer", "s-1")) is ErrorCode.REWARD_UNAVAILABLE
    assert shop.balances(wim).available == 80
    # a voucher validates until its last day is over, then the nightly run marks it expired
    with new_uow() as uow:
        assert validate_voucher(uow, tenant_id=tenant.id, code=first.code).status.value == "issued"
    clock.set(datetime(2026, 3, 9, 23, 30, tzinfo=UTC))  # 10 March in Berlin
    with new_uow() as uow:
        assert code_of(lambda: validate_voucher(uow, tenant_id=tenant.id, code=first.code)) is (
            ErrorCode.VOUCHER_EXPIRED
        )
    run_nightly(new_uow, day=datetime(2026, 3, 10).date(), programme_id=shop.programme_id)
    with new_uow() as uow:
        statuses = {v.status.value for v in list_vouchers(uow, tenant_id=tenant.id, member_id=wim)}
    assert statuses == {"expired"}
    shop.verify()


def test_members_hear_once_before_their_points_expire(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant, expiry={"type": "after", "days": 30, "reminder_days": 7})
    clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    xia = shop.enrol("xia@example.org")
    shop.buy(xia, "o-1", "25.00")
    # points earned on 2 March are good to the end of 1 April; a week before, one reminder
    for day in (24, 25, 26):
        clock.set(datetime(2026, 3, day, 1, tzinfo=UTC))
        run_nightly(new_uow, day=datetime(2026, 3, day).date(), programme_id=shop.programme_id)
    with new_uow() as uow:
        reminders = list_events(uow, tenant_id=tenant.id, type="points.expiring")
    assert [(e["payload"]["member_id"], e["payload"]["points"]) for e in reminders] == [(xia, 25)]


def test_checkout_holds_announce_who_spent_or_got_back_how_many_points(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    shop = Shop(new_uow, clock, tenant)
    yan = shop.enrol("yan@example.org")
    shop.buy(yan, "o-1", "50.00")
    shop.spend(yan, 20, key="checkout-1")  # hold and capture
    with new_uow() as uow:
        hold_id = hold_points(
            uow, tenant_id=tenant.id, member_id=yan, points=5, idempotency_key="checkout-2"
        )
    with new_uow() as uow:
        void_hold(uow, tenant_id=tenant.id, hold_id=hold_id)
    with new_uow() as uow:
        redeemed = list_events(uow, tenant_id=tenant.id, type="points.redeemed")
        released = list_events(uow, tenant_id=tenant.id, type="points.released")
    assert [(e["payload"]["member_id"], e["payload"]["points"]) for e in redeemed] == [(yan, 20)]
    assert [(e["payload"]["member_id"], e["payload"]["points"]) for e in released] == [(yan, 5)]
