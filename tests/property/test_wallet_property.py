"""Wallet money and points never mix, whatever the order of what happens.

Hypothesis interleaves purchases (points and cashback), staff point adjustments, store credit,
wallet payments at once and held ones that are captured or voided, for two members. Next to the
database it keeps two separate models — one of points, one of wallet money — each written as
if the other did not exist. After every sequence each member's points equal the points model,
the wallet equals the wallet model, and ``verify_ledger`` finds nothing wrong. A payment the
wallet cannot cover is refused with ``insufficient_funds`` and changes neither model.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase
from treu.errors import ErrorCode, TreuError
from treu.ledger.model import MemberAccount, Unit
from treu.ledger.postings import balance
from treu.ledger.service import adjust_points, get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork
from treu.wallet.service import close_wallet_hold, credit_wallet, pay_with_wallet

NewUow = Callable[[], UnitOfWork]

DOCUMENT: dict[str, Any] = {
    "key": "mix",
    "name": "Mix",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [
        {
            "key": "base",
            "name": "1 Punkt je Euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "wallet": {"cashback": [{"key": "back", "percent": "2"}]},
}

cents = st.integers(min_value=1, max_value=5_000)
step = st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 1), cents),
    st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(1, 200)),
    st.tuples(st.just("credit"), st.integers(0, 1), cents),
    st.tuples(st.just("pay"), st.integers(0, 1), cents),
    st.tuples(st.just("hold"), st.integers(0, 1), cents),
    st.tuples(st.just("close"), st.integers(0, 1), st.booleans()),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_points_and_wallet_money_never_mix(
    new_uow: NewUow, tenant: Tenant, steps: list[tuple[str, int, Any]]
) -> None:
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    members = []
    for _ in range(2):
        with new_uow() as uow:
            email = f"{uuid.uuid4().hex[:12]}@example.org"
            members.append(
                enrol_member(
                    uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: email}
                ).id
            )
    points = [0, 0]
    wallet = [0, 0]  # available, in cents
    held = [0, 0]
    open_holds: list[list[tuple[str, int]]] = [[], []]
    for kind, who, value in steps:
        member = members[who]
        key = uuid.uuid4().hex
        with new_uow() as uow:
            if kind == "buy":
                price = Decimal(value).scaleb(-2)
                record_purchase(
                    uow,
                    programme_id=programme_id,
                    member=member,
                    purchase=PurchaseIn(
                        external_id=key, currency="EUR", lines=[LineIn(unit_price=price)]
                    ),
                )
                points[who] += value // 100
                wallet[who] += value * 2 // 100
            elif kind == "adjust":
                adjust_points(
                    uow,
                    tenant_id=tenant.id,
                    member_id=member,
                    points=value,
                    reason="property",
                    actor="test",
                    idempotency_key=key,
                )
                points[who] += value
            elif kind == "credit":
                credit_wallet(
                    uow,
                    tenant_id=tenant.id,
                    member_id=member,
                    amount=Decimal(value).scaleb(-2),
                    kind="store_credit",
                    reason="property",
                    idempotency_key=key,
                )
                wallet[who] += value
            elif kind in ("pay", "hold"):
                pay = functools.partial(
                    pay_with_wallet,
                    uow,
                    tenant_id=tenant.id,
                    member_id=member,
                    amount=Decimal(value).scaleb(-2),
                    currency="EUR",
                    idempotency_key=key,
                    hold=kind == "hold",
                )
                if value > wallet[who]:
                    with pytest.raises(TreuError) as refused:
                        pay()
                    assert refused.value.code is ErrorCode.INSUFFICIENT_FUNDS
                else:
                    paid = pay()
                    wallet[who] -= value
                    if kind == "hold":
                        held[who] += value
                        open_holds[who].append((paid.id, value))
            elif open_holds[who]:
                hold_id, amount = open_holds[who].pop()
                close_wallet_hold(uow, tenant_id=tenant.id, hold_id=hold_id, capture=value)
                held[who] -= amount
                if not value:
                    wallet[who] += amount
    with new_uow() as uow:
        for i, member in enumerate(members):
            assert get_balances(uow, tenant_id=tenant.id, member_id=member).available == points[i]
            assert balance(uow, member, MemberAccount.AVAILABLE, Unit.WALLET) == wallet[i]
            assert balance(uow, member, MemberAccount.HELD, Unit.WALLET) == held[i]
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.ok, report.problems
