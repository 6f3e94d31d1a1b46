"""Stamps never exceed the card size without completing it — whatever members buy, on whichever
days, and whatever they bring back.

Pure: :func:`fill` over random card sizes and stamp counts. Through the services: random
purchases (coffees and croissants) on random days and random returns, on both databases; after
every step the member's open card holds fewer stamps than the card size, there is one open card,
the stamps balance equals it, the daily cap holds, and ``treu ledger verify`` passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from treu.activities.model import LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import record_purchase, record_return
from treu.activities.tables import activity_effects
from treu.clock import FixedClock
from treu.ledger.model import MemberAccount, Unit
from treu.ledger.postings import balance
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import apply_programme, create_tenant
from treu.stamps.model import StampCardDef, fill
from treu.stamps.tables import stamp_awards, stamp_cards
from treu.storage.uow import UnitOfWork

BERLIN = ZoneInfo("Europe/Berlin")


@given(
    needed=st.integers(1, 20),
    current=st.integers(0, 19),
    earned=st.integers(0, 100),
    carry_over=st.booleans(),
)
def test_a_card_is_never_left_fuller_than_its_size(
    needed: int, current: int, earned: int, carry_over: bool
) -> None:
    card = StampCardDef.model_validate(
        {
            "key": "k",
            "name": "K",
            "stamps_needed": needed,
            "earn": {"type": "per_visit"},
            "reward": "r",
            "carry_over": carry_over,
        }
    )
    current = current % needed
    result = fill(card, current, earned)
    assert 0 <= result.left < needed
    assert result.completed * needed + result.left + result.forfeited == current + earned
    assert carry_over or result.completed <= 1


Step = tuple[str, int, int, int]  # ("buy", days later, coffees, croissants) / ("return", n, q, 0)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(0, 2), st.integers(0, 6), st.integers(0, 2)),
        st.tuples(st.just("return"), st.integers(0, 20), st.integers(1, 3), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


def test_stamps_never_exceed_the_card_size_without_completing_it(engine: Engine) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(walk=steps, carry_over=st.booleans())
    def run(walk: list[Step], carry_over: bool) -> None:
        Walk(engine, carry_over).run(walk)

    run()


class Walk:
    NEEDED = 4
    PER_DAY = 3

    def __init__(self, engine: Engine, carry_over: bool) -> None:
        self.clock = FixedClock(datetime(2026, 3, 2, 8, tzinfo=BERLIN))
        self.new_uow: Callable[[], UnitOfWork] = lambda: UnitOfWork(engine, self.clock)
        with self.new_uow() as uow:
            self.tenant = create_tenant(uow, key=f"p-{uuid.uuid4().hex[:12]}")
        with self.new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=self.tenant.id, document=self.document(carry_over)
            ).programme_id
        with self.new_uow() as uow:
            self.member = enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: "walk@example.de"},
                source="till",
            ).id
        self.purchases: list[tuple[str, int]] = []  # external id, coffees not returned yet
        self.returns = 0

    def document(self, carry_over: bool) -> dict[str, Any]:
        return {
            "key": "walk",
            "name": "Walk",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "rewards": [{"key": "r", "name": "R", "kind": "free_product", "sku": "R"}],
            "stamp_cards": [
                {
                    "key": "k",
                    "name": "K",
                    "stamps_needed": self.NEEDED,
                    "earn": {"type": "per_unit", "items": {"categories": ["Kaffee"]}},
                    "caps": {"max_per_day": self.PER_DAY},
                    "reward": "r",
                    "carry_over": carry_over,
                }
            ],
        }

    def run(self, walk: list[Step]) -> None:
        for op, a, b, c in walk:
            if op == "buy":
                self.buy(a, b, c)
            elif self.purchases:
                self.give_back(a % len(self.purchases), b)
            self.check()

    def buy(self, days: int, coffees: int, croissants: int) -> None:
        self.clock.set(self.clock.now() + timedelta(days=days, minutes=7))
        lines = []
        if coffees:
            lines.append(LineIn(sku="C", category="Kaffee", quantity=coffees, unit_price="3.00"))
        lines.append(LineIn(sku="X", category="Gebäck", quantity=croissants + 1, unit_price="2"))
        external_id = f"bon-{len(self.purchases)}"
        purchase = PurchaseIn(external_id=external_id, currency="EUR", lines=lines)
        with self.new_uow() as uow:
            record_purchase(
                uow, programme_id=self.programme_id, member=self.member, purchase=purchase
            )
        self.purchases.append((external_id, coffees))

    def give_back(self, index: int, quantity: int) -> None:
        external_id, left = self.purchases[index]
        if left == 0:
            return
        back = min(quantity, left)
        self.purchases[index] = (external_id, left - back)
        self.returns += 1
        ret = ReturnIn(
            external_id=f"ret-{self.returns}",
            purchase_external_id=external_id,
            lines=[ReturnLineIn(line=0, quantity=back)],
        )
        with self.new_uow() as uow:
            record_return(uow, programme_id=self.programme_id, ret=ret)

    def check(self) -> None:
        with self.new_uow() as uow:
            cards = uow.conn.execute(
                select(stamp_cards.c.stamps, stamp_cards.c.status).where(
                    stamp_cards.c.member_id == self.member
                )
            ).all()
            open_cards = [s for s, status in cards if status == "open"]
            assert len(open_cards) <= 1
            assert all(0 <= s < self.NEEDED for s in open_cards)
            assert all(s == self.NEEDED for s, status in cards if status == "completed")
            stamps = balance(uow, self.member, MemberAccount.AVAILABLE, Unit.STAMPS)
            assert stamps == sum(open_cards)
            per_day = uow.conn.execute(
                select(func.sum(stamp_awards.c.stamps))
                .where(stamp_awards.c.member_id == self.member, stamp_awards.c.stamps > 0)
                .group_by(stamp_awards.c.local_day)
            ).scalars()
            assert all(n <= self.PER_DAY for n in per_day)
            assert verify_ledger(uow, tenant_id=self.tenant.id).ok
            # what the till and the history were told adds up to the balance
            told = uow.conn.execute(
                select(func.coalesce(func.sum(activity_effects.c.amount), 0)).where(
                    activity_effects.c.member_id == self.member,
                    activity_effects.c.unit == "stamps",
                )
            ).scalar_one()
            assert told == stamps
