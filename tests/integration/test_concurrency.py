"""Concurrent requests against one member, one reward, one idempotency key.

Real threads, each with its own unit of work (its own connection and transaction), all released
at once by a barrier. On SQLite the writers queue for the database lock (``BEGIN IMMEDIATE`` with a
busy timeout); on PostgreSQL they queue for the member row (``SELECT ... FOR UPDATE``). Either way
every request must end as a clean success, a clean replay or a clean business rejection: a
database error leaking out (deadlock, "database is locked", a unique violation) is a bug.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from treu.activities.model import PurchaseIn, ReturnIn
from treu.activities.service import ActivityResult, record_purchase, record_return
from treu.activities.tables import activities
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.ledger.model import Balances
from treu.ledger.service import adjust_points, get_balances, hold_points
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import apply_programme, create_tenant
from treu.rewards.model import VoucherStatus
from treu.rewards.service import (
    RedemptionResult,
    VoucherView,
    cancel_voucher,
    consume_voucher,
    list_vouchers,
    redeem_reward,
)
from treu.rewards.tables import rewards
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.slow

T = TypeVar("T")

PROGRAMME: dict[str, Any] = {
    "key": "corner-shop",
    "name": "Corner Shop",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [
        {
            "key": "points",
            "name": "1 point per euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "rewards": [
        {"key": "coffee", "name": "Coffee", "kind": "free_product", "sku": "COFFEE", "cost": 10},
        {
            "key": "signed-mug",
            "name": "Signed mug",
            "kind": "free_product",
            "sku": "MUG",
            "cost": 10,
            "stock": 2,
        },
    ],
}


class Shop:
    """One tenant with the corner-shop programme, on the test database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock = FixedClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
        with self.uow() as uow:
            self.tenant_id = create_tenant(uow, key=f"conc-{uuid.uuid4().hex[:12]}").id
        with self.uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=self.tenant_id, document=PROGRAMME
            ).programme_id

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.clock)

    def member_with(self, points: int) -> str:
        with self.uow() as uow:
            member_id = enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EXTERNAL: uuid.uuid4().hex},
            ).id
        if points:
            with self.uow() as uow:
                adjust_points(
                    uow,
                    tenant_id=self.tenant_id,
                    member_id=member_id,
                    points=points,
                    reason="welcome gift",
                    actor="test",
                    idempotency_key=f"gift:{member_id}",
                )
        return member_id

    def balances(self, member_id: str) -> Balances:
        with self.uow() as uow:
            return get_balances(uow, tenant_id=self.tenant_id, member_id=member_id)

    def redeem(self, member_id: str, reward_key: str, key: str) -> RedemptionResult:
        with self.uow() as uow:
            return redeem_reward(
                uow,
                tenant_id=self.tenant_id,
                member_id=member_id,
                reward_key=reward_key,
                idempotency_key=key,
            )

    def buy(self, member_id: str | None, purchase: PurchaseIn) -> ActivityResult:
        with self.uow() as uow:
            return record_purchase(
                uow, programme_id=self.programme_id, member=member_id, purchase=purchase
            )

    def adjust(self, member_id: str, points: int, key: str) -> str:
        with self.uow() as uow:
            return adjust_points(
                uow,
                tenant_id=self.tenant_id,
                member_id=member_id,
                points=points,
                reason="goodwill",
                actor="support",
                idempotency_key=key,
            )

    def hold(self, member_id: str, points: int, key: str) -> str:
        with self.uow() as uow:
            return hold_points(
                uow,
                tenant_id=self.tenant_id,
                member_id=member_id,
                points=points,
                idempotency_key=key,
            )

    def cancel(self, code: str) -> VoucherView:
        with self.uow() as uow:
            return cancel_voucher(uow, tenant_id=self.tenant_id, code=code, actor="staff")

    def use(self, code: str) -> VoucherView:
        with self.uow() as uow:
            return consume_voucher(uow, tenant_id=self.tenant_id, code=code)

    def assert_ledger_ok(self) -> None:
        with self.uow() as uow:
            report = verify_ledger(uow, tenant_id=self.tenant_id)
        assert report.ok, report.problems


Outcome = tuple[str, Any]  # ("ok", result) or ("rejected", error code)


def all_at_once(calls: list[Callable[[], T]]) -> list[Outcome]:
    """Run every call in its own thread, released together; business errors become outcomes,
    anything else (a database error) is re-raised by ``future.result()`` and fails the test."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> Outcome:
        start.wait(timeout=60)
        try:
            return ("ok", call())
        except TreuError as exc:
            return ("rejected", exc.code)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result() for future in futures]


@pytest.fixture
def shop(engine: Engine) -> Shop:
    return Shop(engine)


def test_fifty_simultaneous_redemptions_spend_exactly_the_balance(shop: Shop) -> None:
    # given a member with exactly 100 points and a 10-point coffee in unlimited supply
    member = shop.member_with(100)

    # when 50 redemptions of the coffee arrive at the same moment, each with its own key
    outcomes = all_at_once(
        [lambda i=i: shop.redeem(member, "coffee", f"coffee-{i}") for i in range(50)]
    )

    # then exactly 10 succeed and the other 40 are told the points are not enough
    assert Counter(kind for kind, _ in outcomes) == {"ok": 10, "rejected": 40}
    assert {code for kind, code in outcomes if kind == "rejected"} == {
        ErrorCode.INSUFFICIENT_POINTS
    }
    # and the member has 10 distinct vouchers, no points left, and a consistent ledger
    vouchers = {result.voucher.code for kind, result in outcomes if kind == "ok"}
    assert len(vouchers) == 10
    with shop.uow() as uow:
        assert len(list_vouchers(uow, tenant_id=shop.tenant_id, member_id=member)) == 10
    balances = shop.balances(member)
    assert (balances.available, balances.held, balances.spent) == (0, 0, 100)
    shop.assert_ledger_ok()


def test_the_last_items_in_stock_go_to_exactly_as_many_members(shop: Shop) -> None:
    # given a mug with 2 left in stock and 3 members who can each afford it
    members = [shop.member_with(25) for _ in range(3)]

    # when all three redeem it at the same moment
    outcomes = all_at_once([lambda m=m: shop.redeem(m, "signed-mug", f"mug-{m}") for m in members])

    # then two get a voucher and one is told it is out of stock
    assert sorted(kind for kind, _ in outcomes) == ["ok", "ok", "rejected"]
    [(unlucky, (_, code))] = [
        (m, o) for m, o in zip(members, outcomes, strict=True) if o[0] != "ok"
    ]
    assert code == ErrorCode.OUT_OF_STOCK
    # and the member who missed out keeps every point, the others paid for their mug
    for member in members:
        expected = 25 if member == unlucky else 15
        assert shop.balances(member).available == expected
    with shop.uow() as uow:
        stock = uow.conn.execute(
            select(rewards.c.stock).where(
                rewards.c.programme_id == shop.programme_id, rewards.c.key == "signed-mug"
            )
        ).scalar_one()
        assert stock == 0
        assert len(list_vouchers(uow, tenant_id=shop.tenant_id, member_id=unlucky)) == 0
    shop.assert_ledger_ok()


def test_a_purchase_sent_five_times_earns_once(shop: Shop) -> None:
    # given a member and a till that retries a 42.50 EUR purchase
    member = shop.member_with(0)
    purchase = PurchaseIn(external_id="till-7-0815", currency="EUR", total=Decimal("42.50"))

    # when it arrives once, then four more times at the same moment
    first = shop.buy(member, purchase)
    outcomes = all_at_once([lambda: shop.buy(member, purchase) for _ in range(4)])

    # then all five answers describe the same activity with the same 42 points
    results = [first] + [result for kind, result in outcomes if kind == "ok"]
    assert len(results) == 5
    assert {(r.activity_id, r.points) for r in results} == {(first.activity_id, 42)}
    assert [r.replayed for r in results] == [False, True, True, True, True]
    # and the purchase is recorded once and earned once
    with shop.uow() as uow:
        recorded = uow.conn.execute(
            select(func.count())
            .select_from(activities)
            .where(
                activities.c.programme_id == shop.programme_id,
                activities.c.external_id == "till-7-0815",
            )
        ).scalar_one()
    assert recorded == 1
    assert shop.balances(member).available == 42
    shop.assert_ledger_ok()


def test_a_purchase_sent_five_times_at_once_earns_once(shop: Shop) -> None:
    # given a member and a till that fires the same purchase five times without waiting
    member = shop.member_with(0)
    purchase = PurchaseIn(external_id="till-7-0816", currency="EUR", total=Decimal("19.99"))

    # when all five arrive at the same moment
    outcomes = all_at_once([lambda: shop.buy(member, purchase) for _ in range(5)])

    # then one of them recorded it and the other four replayed that result
    assert [kind for kind, _ in outcomes] == ["ok"] * 5
    results: list[ActivityResult] = [result for _, result in outcomes]
    assert len({r.activity_id for r in results}) == 1
    assert {r.points for r in results} == {19}
    assert sorted(r.replayed for r in results) == [False, True, True, True, True]
    assert shop.balances(member).available == 19
    shop.assert_ledger_ok()


def test_a_redemption_retried_five_times_at_once_buys_one_voucher(shop: Shop) -> None:
    # given a member with 100 points
    member = shop.member_with(100)

    # when the app sends the same redemption (one idempotency key) five times at once
    outcomes = all_at_once([lambda: shop.redeem(member, "coffee", "app-tap-1") for _ in range(5)])

    # then all five get the same voucher, four of them as a replay
    assert [kind for kind, _ in outcomes] == ["ok"] * 5
    results: list[RedemptionResult] = [result for _, result in outcomes]
    assert len({(r.redemption_id, r.voucher.code) for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False, True, True, True, True]
    # and the points were spent once
    with shop.uow() as uow:
        assert len(list_vouchers(uow, tenant_id=shop.tenant_id, member_id=member)) == 1
    assert shop.balances(member).available == 90
    shop.assert_ledger_ok()


def test_a_guest_purchase_sent_five_times_at_once_is_recorded_once(shop: Shop) -> None:
    # given a till that fires the same purchase of a customer without a card five times
    purchase = PurchaseIn(external_id="till-9-guest", currency="EUR", total=Decimal("12.00"))

    # when all five arrive at the same moment (no member row to queue on)
    outcomes = all_at_once([lambda: shop.buy(None, purchase) for _ in range(5)])

    # then the purchase exists once, and every answer names it
    assert [kind for kind, _ in outcomes] == ["ok"] * 5
    results: list[ActivityResult] = [result for _, result in outcomes]
    assert len({r.activity_id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False, True, True, True, True]


def test_eight_full_returns_of_one_guest_purchase_at_once_return_it_once(shop: Shop) -> None:
    # given a guest bought for 50.00
    purchase = PurchaseIn(external_id="till-9-guest-r", currency="EUR", total=Decimal("50.00"))
    shop.buy(None, purchase)

    # when eight tills each return the whole of it at the same moment
    def give_back(n: int) -> ActivityResult:
        ret = ReturnIn(
            external_id=f"r-{n}", purchase_external_id="till-9-guest-r", amount=Decimal("50.00")
        )
        with shop.uow() as uow:
            return record_return(uow, programme_id=shop.programme_id, ret=ret)

    outcomes = all_at_once([lambda n=n: give_back(n) for n in range(8)])

    # then one return goes through and seven are refused: never more back than was paid
    assert Counter(kind for kind, _ in outcomes) == {"ok": 1, "rejected": 7}
    assert {code for kind, code in outcomes if kind == "rejected"} == {
        ErrorCode.RETURN_EXCEEDS_PURCHASE
    }
    with shop.uow() as uow:
        returned = uow.conn.execute(
            select(func.sum(activities.c.paid_minor)).where(
                activities.c.programme_id == shop.programme_id, activities.c.type == "return"
            )
        ).scalar_one()
    assert returned == 5000


def test_two_sign_ups_with_the_same_email_at_once_make_one_member(shop: Shop) -> None:
    # given a customer who taps "join" on two devices with the same e-mail address
    def join() -> str:
        with shop.uow() as uow:
            return enrol_member(
                uow,
                programme_id=shop.programme_id,
                identifiers_={IdentifierKind.EMAIL: "ada@example.org"},
            ).id

    # when both sign-ups arrive at the same moment
    outcomes = all_at_once([join, join])

    # then one creates the member and the other is told the address is taken
    assert sorted(kind for kind, _ in outcomes) == ["ok", "rejected"]
    assert [code for kind, code in outcomes if kind == "rejected"] == [
        ErrorCode.DUPLICATE_IDENTIFIER
    ]


def test_one_idempotency_key_used_by_two_members_at_once_buys_one_voucher(shop: Shop) -> None:
    # given two members of the same household whose app (wrongly) sends one key for both
    anna, ben = shop.member_with(30), shop.member_with(30)

    # when both redeem the coffee with that key at the same moment
    outcomes = all_at_once(
        [lambda m=m: shop.redeem(m, "coffee", "household-tap") for m in (anna, ben)]
    )

    # then one gets the coffee and the other is told the key was used for something else
    assert sorted(kind for kind, _ in outcomes) == ["ok", "rejected"]
    assert [code for kind, code in outcomes if kind == "rejected"] == [
        ErrorCode.IDEMPOTENCY_KEY_REUSE
    ]
    assert sorted(shop.balances(m).available for m in (anna, ben)) == [20, 30]
    shop.assert_ledger_ok()


def test_a_goodwill_credit_submitted_five_times_at_once_is_made_once(shop: Shop) -> None:
    # given a member, and a support agent who clicks "credit 15 points" five times
    member = shop.member_with(0)

    # when the five submissions arrive at the same moment
    outcomes = all_at_once([lambda: shop.adjust(member, 15, "ticket-4711") for _ in range(5)])

    # then all five name one and the same transfer, and the member got 15 points once
    assert [kind for kind, _ in outcomes] == ["ok"] * 5
    assert len({transfer_id for _, transfer_id in outcomes}) == 1
    assert shop.balances(member).available == 15
    shop.assert_ledger_ok()


def test_one_adjustment_key_used_for_two_members_at_once_credits_one(shop: Shop) -> None:
    # given two members, and a support tool that reuses one key for two different credits
    anna, ben = shop.member_with(0), shop.member_with(0)

    # when both credits arrive at the same moment
    outcomes = all_at_once([lambda m=m: shop.adjust(m, 15, "ticket-4712") for m in (anna, ben)])

    # then one member is credited and the other request is told the key was used
    assert sorted(kind for kind, _ in outcomes) == ["ok", "rejected"]
    assert [code for kind, code in outcomes if kind == "rejected"] == [
        ErrorCode.IDEMPOTENCY_KEY_REUSE
    ]
    assert sorted(shop.balances(m).available for m in (anna, ben)) == [0, 15]
    shop.assert_ledger_ok()


def test_one_checkout_hold_key_used_for_two_members_at_once_holds_once(shop: Shop) -> None:
    # given two members, and a shop checkout that reuses one key for both baskets
    anna, ben = shop.member_with(30), shop.member_with(30)

    # when both holds arrive at the same moment
    outcomes = all_at_once([lambda m=m: shop.hold(m, 20, "basket-1") for m in (anna, ben)])

    # then one member's points are held and the other request is told the key was used
    assert sorted(kind for kind, _ in outcomes) == ["ok", "rejected"]
    assert [code for kind, code in outcomes if kind == "rejected"] == [
        ErrorCode.IDEMPOTENCY_KEY_REUSE
    ]
    assert sorted(shop.balances(m).held for m in (anna, ben)) == [0, 20]
    shop.assert_ledger_ok()


def test_a_voucher_cancelled_twice_at_once_gives_the_points_back_once(shop: Shop) -> None:
    # given a member who turned 10 of their 30 points into a coffee voucher
    member = shop.member_with(30)
    code = shop.redeem(member, "coffee", "tap-1").voucher.code

    # when two staff members cancel it at the same moment
    outcomes = all_at_once([lambda: shop.cancel(code), lambda: shop.cancel(code)])

    # then one cancellation goes through, the other is told it is already cancelled
    assert sorted(kind for kind, _ in outcomes) == ["ok", "rejected"]
    assert [code for kind, code in outcomes if kind == "rejected"] == [ErrorCode.VOUCHER_CANCELLED]
    # and the 10 points came back once
    assert shop.balances(member).available == 30
    shop.assert_ledger_ok()


def test_a_voucher_used_and_cancelled_at_once_is_either_used_or_refunded(shop: Shop) -> None:
    # given a member with ten coffee vouchers (all their 100 points)
    member = shop.member_with(100)
    codes = [shop.redeem(member, "coffee", f"tap-{i}").voucher.code for i in range(10)]

    # when each voucher is scanned at the till while staff cancel it, at the same moment
    calls: list[Callable[[], VoucherView]] = []
    for code in codes:
        calls += [lambda code=code: shop.use(code), lambda code=code: shop.cancel(code)]
    outcomes = all_at_once(calls)

    # then for every voucher exactly one of the two went through, and the other says why not
    for code, used, cancelled in zip(codes, outcomes[::2], outcomes[1::2], strict=True):
        assert (used[0], cancelled[0]) in {("ok", "rejected"), ("rejected", "ok")}, code
        if used[0] == "ok":
            assert cancelled[1] == ErrorCode.VOUCHER_ALREADY_USED
        else:
            assert used[1] == ErrorCode.VOUCHER_CANCELLED
    # and the member got back the points of exactly the cancelled vouchers
    with shop.uow() as uow:
        vouchers = list_vouchers(uow, tenant_id=shop.tenant_id, member_id=member)
    statuses = Counter(v.status for v in vouchers)
    assert statuses[VoucherStatus.USED] + statuses[VoucherStatus.CANCELLED] == 10
    assert shop.balances(member).available == 10 * statuses[VoucherStatus.CANCELLED]
    shop.assert_ledger_ok()
