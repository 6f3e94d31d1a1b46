"""The wallet on both databases: store credit and goodwill, paying at the till (at once, held
then captured or voided), cashback on purchases and its take-back on returns, merges."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from treu.activities.model import LineIn, PurchaseIn, ReturnIn
from treu.activities.service import record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.merge import merge_members
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork
from treu.wallet.gift_cards import (
    expire_gift_cards,
    gift_card_balance,
    issue_gift_card,
    load_gift_card,
    redeem_gift_card,
    spend_gift_card,
)
from treu.wallet.service import (
    WalletPayment,
    close_wallet_hold,
    credit_wallet,
    get_wallet,
    pay_with_wallet,
    wallet_history,
)

NewUow = Callable[[], UnitOfWork]

DOCUMENT: dict[str, Any] = {
    "key": "outdoor",
    "name": "Outdoor",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [
        {
            "key": "base",
            "name": "1 Punkt je Euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "wallet": {
        "cashback": [
            {
                "key": "back",
                "percent": "5",
                "exclude": {"categories": ["Gutscheine"]},
                "cap": "10.00",
            }
        ]
    },
}


class Till:
    def __init__(self, new_uow: NewUow, tenant: Tenant) -> None:
        self.new_uow, self.tenant = new_uow, tenant
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=DOCUMENT
            ).programme_id

    def enrol(self, email: str) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow, programme_id=self.programme_id, identifiers_={IdentifierKind.EMAIL: email}
            ).id

    def credit(self, member: str, amount: str, key: str, kind: Any = "store_credit") -> Any:
        with self.new_uow() as uow:
            return credit_wallet(
                uow,
                tenant_id=self.tenant.id,
                member_id=member,
                amount=Decimal(amount),
                kind=kind,
                reason="test",
                idempotency_key=key,
            )

    def pay(self, member: str, amount: str, key: str, *, hold: bool = False) -> WalletPayment:
        with self.new_uow() as uow:
            return pay_with_wallet(
                uow,
                tenant_id=self.tenant.id,
                member_id=member,
                amount=Decimal(amount),
                currency="EUR",
                idempotency_key=key,
                hold=hold,
            )

    def close(self, hold_id: str, *, capture: bool) -> WalletPayment:
        with self.new_uow() as uow:
            return close_wallet_hold(
                uow, tenant_id=self.tenant.id, hold_id=hold_id, capture=capture
            )

    def wallet(self, member: str) -> tuple[Decimal, Decimal]:
        with self.new_uow() as uow:
            w = get_wallet(uow, tenant_id=self.tenant.id, member_id=member)
        return w.available, w.held

    def buy(self, member: str, external_id: str, *lines: tuple[str, str]) -> Any:
        items = [LineIn(sku=f"S{i}", category=c, unit_price=p) for i, (c, p) in enumerate(lines)]
        with self.new_uow() as uow:
            return record_purchase(
                uow,
                programme_id=self.programme_id,
                member=member,
                purchase=PurchaseIn(external_id=external_id, currency="EUR", lines=items),
            )

    def give_back(self, external_id: str, purchase: str, amount: str) -> Any:
        with self.new_uow() as uow:
            return record_return(
                uow,
                programme_id=self.programme_id,
                ret=ReturnIn(
                    external_id=external_id,
                    purchase_external_id=purchase,
                    amount=Decimal(amount),
                ),
            )

    def verify(self) -> None:
        with self.new_uow() as uow:
            report = verify_ledger(uow, tenant_id=self.tenant.id)
        assert report.ok, report.problems


def code_of(call: Callable[[], object]) -> ErrorCode:
    with pytest.raises(TreuError) as caught:
        call()
    return caught.value.code


def test_store_credit_pays_at_the_till_and_a_short_wallet_changes_nothing(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    lee = till.enrol("lee@example.org")
    # given 32.00 store credit (a retried credit counts once)
    till.credit(lee, "32.00", "credit-1")
    assert till.credit(lee, "32.00", "credit-1")[1] is True
    # when Lee pays 12.00, then 25.00
    paid = till.pay(lee, "12.00", "pay-1")
    assert (paid.status, paid.amount) == ("captured", Decimal("12.00"))
    assert code_of(lambda: till.pay(lee, "25.00", "pay-2")) == ErrorCode.INSUFFICIENT_FUNDS
    # then 20.00 is left; the refused payment left no trace, a retried one pays nothing
    assert till.wallet(lee) == (Decimal("20.00"), Decimal("0.00"))
    assert till.pay(lee, "12.00", "pay-1").replayed
    assert till.wallet(lee)[0] == Decimal("20.00")
    assert code_of(lambda: till.pay(lee, "0.001", "pay-3")) == ErrorCode.INVALID_AMOUNT
    with new_uow() as uow:
        kinds = [e.kind for e in wallet_history(uow, tenant_id=tenant.id, member_id=lee)]
    assert kinds == ["pay", "credit"]
    # and the points never saw any of it
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=lee).available == 0
    till.verify()


def test_a_held_payment_is_captured_or_voided_exactly_once(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    kim = till.enrol("kim@example.org")
    till.credit(kim, "10.00", "goodwill-1", kind="goodwill")
    first = till.pay(kim, "4.00", "hold-1", hold=True)
    assert first.status == "held"
    assert first.id.startswith("hld_")
    assert till.wallet(kim) == (Decimal("6.00"), Decimal("4.00"))
    assert till.close(first.id, capture=True).status == "captured"
    assert till.close(first.id, capture=True).replayed
    assert code_of(lambda: till.close(first.id, capture=False)) == ErrorCode.HOLD_NOT_OPEN
    second = till.pay(kim, "6.00", "hold-2", hold=True)
    assert till.wallet(kim) == (Decimal("0.00"), Decimal("6.00"))
    till.close(second.id, capture=False)
    assert till.wallet(kim) == (Decimal("6.00"), Decimal("0.00"))
    till.verify()


def test_cashback_comes_with_the_purchase_and_a_return_takes_back_only_what_is_left(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    ivo = till.enrol("ivo@example.org")
    # given Ivo buys 100.00 of gear and a 50.00 voucher: 5 % of 100.00 back
    bought = till.buy(ivo, "o-1", ("Zelte", "100.00"), ("Gutscheine", "50.00"))
    assert [(e.kind, e.amount) for e in bought.effects] == [("cashback.credited", 500)]
    assert till.wallet(ivo)[0] == Decimal("5.00")
    # and spends 4.00 of it
    till.pay(ivo, "4.00", "pay-1")
    # when 60.00 of the purchase comes back (spread over both lines)
    back = till.give_back("r-1", "o-1", "60.00")
    # then 1.00 is taken back (all there is) and the rest of what it no longer earns forgiven
    kinds = {e.kind: e for e in back.effects}
    assert kinds["cashback.reversed"].amount == -100
    assert kinds["cashback.forgiven"].data == {"amount_minor": 100}
    assert till.wallet(ivo)[0] == Decimal("0.00")
    # and a later full return owes only the remainder, forgiven as well: never below zero
    rest = till.give_back("r-2", "o-1", "90.00")
    assert [e.kind for e in rest.effects] == ["cashback.forgiven"]
    assert till.wallet(ivo)[0] == Decimal("0.00")
    till.verify()


def test_a_big_purchase_earns_no_more_than_the_cap(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    uma = till.enrol("uma@example.org")
    till.buy(uma, "o-1", ("Zelte", "1000.00"))
    assert till.wallet(uma)[0] == Decimal("10.00")


def test_merging_two_sign_ups_moves_the_wallet_money(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    card, online = till.enrol("card@example.org"), till.enrol("online@example.org")
    till.credit(card, "3.00", "c-1")
    till.credit(online, "4.50", "c-2")
    with new_uow() as uow:
        merge_members(uow, tenant_id=tenant.id, keep_id=online, merge_id=card, actor="test")
    assert till.wallet(online)[0] == Decimal("7.50")
    assert till.wallet(card)[0] == Decimal("0.00")
    till.verify()


def test_a_gift_card_is_sold_topped_up_spent_in_parts_and_moved_into_a_wallet(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    with new_uow() as uow:
        card = issue_gift_card(
            uow,
            tenant_id=tenant.id,
            programme_id=till.programme_id,
            amount=Decimal("50.00"),
            currency="EUR",
            idempotency_key="sold-1",
        )
    assert card.code is not None
    code = card.code
    typed = "-".join(code[i : i + 4] for i in range(0, len(code), 4)).lower()
    with new_uow() as uow:
        pay = spend_gift_card(
            uow,
            tenant_id=tenant.id,
            code=typed,
            amount=Decimal("20.00"),
            currency="EUR",
            idempotency_key="pay-1",
        )
    assert pay.balance == Decimal("30.00")
    with new_uow() as uow:
        short = code_of(
            lambda: spend_gift_card(
                uow,
                tenant_id=tenant.id,
                code=code,
                amount=Decimal("30.01"),
                currency="EUR",
                idempotency_key="pay-2",
            )
        )
    assert short == ErrorCode.INSUFFICIENT_FUNDS
    with new_uow() as uow:
        topped = load_gift_card(
            uow, tenant_id=tenant.id, code=code, amount=Decimal("5.00"), idempotency_key="load-1"
        )
    assert topped.balance == Decimal("35.00")
    with new_uow() as uow:
        over = code_of(
            lambda: load_gift_card(
                uow, tenant_id=tenant.id, code=code, amount=Decimal("500"), idempotency_key="x"
            )
        )
    assert over == ErrorCode.INVALID_AMOUNT  # the default max_load is 500.00
    with new_uow() as uow:
        assert code_of(lambda: gift_card_balance(uow, tenant_id=tenant.id, code="WRONG")) == (
            ErrorCode.INVALID_GIFT_CARD
        )
    # the rest goes into Nia's wallet, once
    nia = till.enrol("nia@example.org")
    with new_uow() as uow:
        used, moved = redeem_gift_card(uow, tenant_id=tenant.id, member_id=nia, code=code)
    assert (used.status, used.balance, moved) == ("redeemed", Decimal("0.00"), Decimal("35.00"))
    with new_uow() as uow:
        assert redeem_gift_card(uow, tenant_id=tenant.id, member_id=nia, code=code)[0].replayed
    assert till.wallet(nia)[0] == Decimal("35.00")
    till.verify()


def test_an_expired_gift_card_goes_to_breakage_and_refuses_payments(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    document = {**DOCUMENT, "key": "cards", "wallet": {"gift_cards": {"expiry_months": 12}}}
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
        card = issue_gift_card(
            uow,
            tenant_id=tenant.id,
            programme_id=programme_id,
            amount=Decimal("25.00"),
            currency="EUR",
            idempotency_key="sold-1",
        )
    assert card.expires_at is not None
    assert card.expires_at.astimezone(ZoneInfo("Europe/Berlin")).date() == date(2027, 1, 2)
    assert card.code is not None
    code = card.code
    with new_uow() as uow:
        assert expire_gift_cards(uow, programme_id=programme_id, at=card.expires_at) == 1
        uow.commit()
    with new_uow() as uow:
        assert expire_gift_cards(uow, programme_id=programme_id, at=card.expires_at) == 0
        gone = code_of(
            lambda: spend_gift_card(
                uow,
                tenant_id=tenant.id,
                code=code,
                amount=Decimal("1.00"),
                currency="EUR",
                idempotency_key="late",
            )
        )
        left = gift_card_balance(uow, tenant_id=tenant.id, code=code)
    assert gone == ErrorCode.GIFT_CARD_EXPIRED
    assert (left.status, left.balance) == ("expired", Decimal("0.00"))
    with new_uow() as uow:
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.ok, report.problems


def test_two_tills_paying_at_once_never_overdraw_and_a_doubled_request_pays_once(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    till = Till(new_uow, tenant)
    ola = till.enrol("ola@example.org")
    till.credit(ola, "10.00", "c-1")
    start = threading.Barrier(4)

    def pay(key: str) -> str:
        start.wait()
        try:
            return "replayed" if till.pay(ola, "6.00", key).replayed else "paid"
        except TreuError as refused:
            return refused.code.value

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(pay, ["a", "a", "b", "b"]))
    # one payment of 6.00 goes through (sent twice: paid + replayed); the other cannot
    assert outcomes.count("paid") == 1
    assert till.wallet(ola)[0] == Decimal("4.00")
    assert set(outcomes) <= {"paid", "replayed", "insufficient_funds"}
    till.verify()
