"""Points, stamps and wallet money in one ledger, under any sequence of what members do.

A second Hypothesis state machine (the first, ``test_ledger_state_machine``, drives the points
in depth: lots, returns, expiry, holds). This one drives the units side by side, through the
public use cases only: purchases that earn points, coffee stamps and — for members of the "plus"
plan — 10 % cashback as store credit; donations of points in steps; store credit; wallet
payments at once or as holds that are captured or voided; membership payments (right and wrong
currency); and retries of all of it. Its model is what a customer reads in the programme:

* 1 point per full euro of a purchase; 1 stamp per coffee, 4 stamps fill a card and give a
  voucher, the rest carries over;
* 10 points buy a 1.00 EUR donation, nothing else is accepted;
* the wallet holds cents: cashback (rounded down), credits, minus payments and open holds.

After every step ``verify_ledger`` finds nothing wrong, and each member's points, stamps, cards
and wallet are exactly what the model says — points never move when money does, and the other
way round. A refused request (short of points or money, a donation not in steps, a payment in
another currency) changes nothing; a retry answers the first result and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, func, select

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase
from treu.clock import FixedClock
from treu.donations.service import donate_points
from treu.errors import ErrorCode, TreuError
from treu.ledger.service import get_balances
from treu.ledger.tables import accounts, transfers
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.memberships.service import report_payment
from treu.programmes.service import apply_programme, create_tenant
from treu.rewards.service import list_vouchers
from treu.stamps.service import member_stamp_cards
from treu.storage.uow import UnitOfWork
from treu.wallet.service import close_wallet_hold, credit_wallet, get_wallet, pay_with_wallet

T = TypeVar("T")

CARD_SIZE = 4
STEP_POINTS = 10

DOCUMENT: dict[str, Any] = {
    "key": "units-walk",
    "name": "Units walk",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [
        {
            "key": "per-euro",
            "name": "1 point per euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "stamp_cards": [
        {
            "key": "karte",
            "name": "Kaffeekarte",
            "stamps_needed": CARD_SIZE,
            "earn": {"type": "per_unit", "items": {"categories": ["Kaffee"]}},
            "reward": "gratis",
        }
    ],
    "rewards": [
        {"key": "gratis", "name": "Gratis Kaffee", "kind": "free_product", "sku": "KAFFEE"},
        {
            "key": "spende",
            "name": "Spende an die Tafel",
            "kind": "donation",
            "charity": "tafel",
            "points_per_step": STEP_POINTS,
            "amount_per_step": "1.00",
        },
    ],
    "charities": [{"key": "tafel", "name": "Tafel"}],
    "memberships": [{"key": "plus", "name": "Plus", "billing": "lifetime", "fee": "5.00"}],
    "wallet": {"cashback": [{"key": "plus-back", "percent": "10", "memberships": ["plus"]}]},
}


@dataclass
class Member:
    id: str
    points: int = 0
    stamps: int = 0  # on the open card
    cards: int = 0  # completed, each with a voucher
    wallet: int = 0  # available, cents
    held: int = 0  # cents in open holds
    plus: bool = False


@dataclass
class Purchase:
    member: Member
    request: PurchaseIn
    points: int


@dataclass
class WalletHold:
    member: Member
    hold_id: str
    amount: int
    closed: str | None = None


class UnitsMachine(RuleBasedStateMachine):
    engine: ClassVar[Engine]

    purchases = Bundle("purchases")
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(datetime(2026, 5, 4, 9, tzinfo=UTC))
        self.members: list[Member] = []
        self.counter = 0

    # --- helpers ---------------------------------------------------------------------------

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.clock)

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def run(self, use_case: Callable[[UnitOfWork], T]) -> T:
        self.clock.advance(timedelta(seconds=1))
        with self.uow() as uow:
            return use_case(uow)

    def ledger(self) -> tuple[object, ...]:
        with self.uow() as uow:
            balances = uow.conn.execute(
                select(accounts.c.id, accounts.c.balance)
                .where(accounts.c.programme_id == self.programme_id)
                .order_by(accounts.c.id)
            ).all()
            posted = uow.conn.execute(
                select(func.count())
                .select_from(transfers)
                .where(transfers.c.tenant_id == self.tenant_id)
            ).scalar_one()
        return balances, posted

    def refused(self, code: ErrorCode, use_case: Callable[[UnitOfWork], object]) -> None:
        before = self.ledger()
        with pytest.raises(TreuError) as refusal:
            self.run(use_case)
        assert refusal.value.code == code, refusal.value
        assert self.ledger() == before

    def unchanged(self, use_case: Callable[[UnitOfWork], T]) -> T:
        before = self.ledger()
        answer = self.run(use_case)
        assert self.ledger() == before
        return answer

    # --- setting up ------------------------------------------------------------------------

    @initialize()
    def open_programme(self) -> None:
        with self.uow() as uow:
            self.tenant_id = create_tenant(uow, key=f"um-{uuid.uuid4().hex[:12]}").id
        with self.uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=self.tenant_id, document=DOCUMENT
            ).programme_id
        for name in ("ana", "ben"):
            member = self.run(
                lambda uow, name=name: enrol_member(  # type: ignore[misc]
                    uow,
                    programme_id=self.programme_id,
                    identifiers_={IdentifierKind.EMAIL: f"{name}@example.org"},
                )
            )
            self.members.append(Member(member.id))

    # --- purchases: points, stamps, cashback -----------------------------------------------

    @rule(
        target=purchases,
        who=st.integers(0, 1),
        coffees=st.integers(0, 6),
        coffee_cents=st.integers(150, 480),
        other_cents=st.integers(0, 2_500),
    )
    def buy(self, who: int, coffees: int, coffee_cents: int, other_cents: int) -> Purchase:
        member = self.members[who]
        lines = [
            LineIn(
                sku="CROISSANT", category="Gebäck", unit_price=Decimal(other_cents or 1).scaleb(-2)
            )
        ]
        if coffees:
            lines.append(
                LineIn(
                    sku="CAPPU",
                    category="Kaffee",
                    quantity=coffees,
                    unit_price=Decimal(coffee_cents).scaleb(-2),
                )
            )
        request = PurchaseIn(external_id=self.next_id("bon"), currency="EUR", lines=lines)
        result = self.run(
            lambda uow: record_purchase(
                uow, programme_id=self.programme_id, member=member.id, purchase=request
            )
        )
        total = (other_cents or 1) + coffees * coffee_cents
        # then 1 point per full euro, a stamp per coffee, and cashback for plus members
        assert result.points == total // 100
        member.points += total // 100
        member.stamps += coffees
        member.cards += member.stamps // CARD_SIZE
        member.stamps %= CARD_SIZE
        if member.plus:
            member.wallet += total * 10 // 100
        return Purchase(member, request, result.points)

    @rule(purchase=purchases)
    def buy_again(self, purchase: Purchase) -> None:
        # a till that retries: the first answer, nothing new
        again = self.unchanged(
            lambda uow: record_purchase(
                uow,
                programme_id=self.programme_id,
                member=purchase.member.id,
                purchase=purchase.request,
            )
        )
        assert again.replayed
        assert again.points == purchase.points

    # --- donations -------------------------------------------------------------------------

    @rule(who=st.integers(0, 1), steps=st.integers(1, 4), retry=st.booleans())
    def donate(self, who: int, steps: int, retry: bool) -> None:
        member = self.members[who]
        key = self.next_id("spende")

        def give(uow: UnitOfWork) -> object:
            return donate_points(
                uow,
                tenant_id=self.tenant_id,
                member_id=member.id,
                charity="tafel",
                points=steps * STEP_POINTS,
                idempotency_key=key,
            )

        if member.points < steps * STEP_POINTS:
            self.refused(ErrorCode.INSUFFICIENT_POINTS, give)
            return
        self.run(give)
        member.points -= steps * STEP_POINTS
        if retry:
            self.unchanged(give)

    @rule(who=st.integers(0, 1), points=st.integers(1, 99).filter(lambda p: p % STEP_POINTS))
    def donate_not_in_steps(self, who: int, points: int) -> None:
        member = self.members[who]
        self.refused(
            ErrorCode.INVALID_AMOUNT,
            lambda uow: donate_points(
                uow,
                tenant_id=self.tenant_id,
                member_id=member.id,
                charity="tafel",
                points=points,
                idempotency_key=self.next_id("spende"),
            ),
        )

    # --- the wallet ------------------------------------------------------------------------

    @rule(who=st.integers(0, 1), cents=st.integers(1, 3_000), retry=st.booleans())
    def credit(self, who: int, cents: int, retry: bool) -> None:
        member = self.members[who]
        key = self.next_id("gutschrift")

        def give(uow: UnitOfWork) -> object:
            return credit_wallet(
                uow,
                tenant_id=self.tenant_id,
                member_id=member.id,
                amount=Decimal(cents).scaleb(-2),
                kind="store_credit",
                reason="Gutschrift",
                idempotency_key=key,
            )

        self.run(give)
        member.wallet += cents
        if retry:
            self.unchanged(give)

    @rule(target=holds, who=st.integers(0, 1), cents=st.integers(1, 2_000), hold=st.booleans())
    def pay(self, who: int, cents: int, hold: bool) -> WalletHold:
        member = self.members[who]
        key = self.next_id("zahlung")

        def pay(uow: UnitOfWork) -> Any:
            return pay_with_wallet(
                uow,
                tenant_id=self.tenant_id,
                member_id=member.id,
                amount=Decimal(cents).scaleb(-2),
                currency="EUR",
                idempotency_key=key,
                hold=hold,
            )

        if member.wallet < cents:
            self.refused(ErrorCode.INSUFFICIENT_FUNDS, pay)
            return WalletHold(member, "", 0, closed="refused")
        payment = self.run(pay)
        member.wallet -= cents
        if not hold:
            self.unchanged(pay)  # a retried payment pays once
            return WalletHold(member, "", cents, closed="captured")
        member.held += cents
        return WalletHold(member, payment.id, cents)

    @rule(hold=holds, capture=st.booleans())
    def close_hold(self, hold: WalletHold, capture: bool) -> None:
        if hold.closed is not None:
            return
        self.run(
            lambda uow: close_wallet_hold(
                uow, tenant_id=self.tenant_id, hold_id=hold.hold_id, capture=capture
            )
        )
        hold.closed = "captured" if capture else "voided"
        hold.member.held -= hold.amount
        if not capture:
            hold.member.wallet += hold.amount

    @rule(who=st.integers(0, 1))
    def pay_in_another_currency(self, who: int) -> None:
        member = self.members[who]
        self.refused(
            ErrorCode.CURRENCY_MISMATCH,
            lambda uow: pay_with_wallet(
                uow,
                tenant_id=self.tenant_id,
                member_id=member.id,
                amount=Decimal("1.00"),
                currency="USD",
                idempotency_key=self.next_id("zahlung"),
            ),
        )

    # --- memberships -----------------------------------------------------------------------

    @rule(who=st.integers(0, 1), currency=st.sampled_from(["EUR", "EUR", "CHF"]))
    def join_plus(self, who: int, currency: str) -> None:
        member = self.members[who]
        payment_id = f"psp-{member.id}"  # one lifetime fee per member: later ones are retries

        def pay_fee(uow: UnitOfWork) -> object:
            return report_payment(
                uow,
                tenant_id=self.tenant_id,
                member_id=member.id,
                plan_key="plus",
                amount=Decimal("5.00"),
                currency=currency,
                external_id=payment_id,
            )

        if currency != "EUR":
            self.refused(ErrorCode.CURRENCY_MISMATCH, pay_fee)
            return
        # the fee is revenue of the programme, not points and not wallet money
        self.unchanged(pay_fee)
        member.plus = True

    # --- after every step ------------------------------------------------------------------

    @invariant()
    def ledger_is_consistent(self) -> None:
        if not self.members:
            return
        with self.uow() as uow:
            report = verify_ledger(uow, tenant_id=self.tenant_id)
        assert report.ok, report.problems

    @invariant()
    def every_unit_is_what_the_model_says(self) -> None:
        for member in self.members:
            with self.uow() as uow:
                balances = get_balances(uow, tenant_id=self.tenant_id, member_id=member.id)
                wallet = get_wallet(uow, tenant_id=self.tenant_id, member_id=member.id)
                cards = member_stamp_cards(uow, tenant_id=self.tenant_id, member_id=member.id)
                vouchers = list_vouchers(uow, tenant_id=self.tenant_id, member_id=member.id)
            assert balances.available == member.points
            assert wallet.available == Decimal(member.wallet).scaleb(-2)
            assert wallet.held == Decimal(member.held).scaleb(-2)
            [open_card] = [c for c in cards if c.status == "open"]
            assert open_card.stamps == member.stamps
            assert len([c for c in cards if c.status == "completed"]) == member.cards
            assert len([v for v in vouchers if v.reward_key == "gratis"]) == member.cards


def test_points_stamps_and_wallet_money_never_mix(engine: Engine) -> None:
    UnitsMachine.engine = engine
    run_state_machine_as_test(
        UnitsMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
