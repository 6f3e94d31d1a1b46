"""Receiving a shop's webhook: :func:`receive_webhook` turns a delivery into purchases and
returns through the activities service.

A delivery is carried out step by step (:class:`~treu.shops.model.Plan`); each step is one
activity use case with its own commit, idempotent by its external id. The receipt of the
delivery (its webhook id, unique per connection) is inserted into the transaction of the last
step, before the activity use case commits it: once the receipt exists, everything the delivery
recorded exists too, and a redelivery is answered from the receipt. A crash between two steps
leaves no receipt, and the redelivery skips the steps already recorded (their external ids).

A rule that says no (a blocked member, another currency, a malformed order) is answered with a
receipt ``rejected`` and its error code, not with an HTTP error: the platforms retry errors
and then switch the webhook off (WooCommerce after 5 failures in a row, Shopify after 8 retries),
which would stop every other order too. Only a wrong signature is refused (401), with nothing
written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update

from treu.activities.model import EarningBase, PurchaseIn, ReturnIn, build_basket
from treu.activities.service import ActivityResult, record_purchase, record_return
from treu.activities.tables import activities
from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound, TreuError, Unauthenticated
from treu.ids import new_id
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind, normalise_identifier
from treu.members.service import find_member
from treu.money import from_minor, to_minor
from treu.programmes.service import load_programme
from treu.shops import shopify, woocommerce
from treu.shops.model import (
    CancelOrder,
    Connection,
    Customer,
    Delivery,
    LineLeft,
    MappingMode,
    Outcome,
    Plan,
    Platform,
    Receipt,
    RecordPurchase,
    RecordRefund,
    Step,
    left_on_products,
    purchase_external_id,
    purchase_of,
    returnable_lines,
    step_external_id,
    verify,
)
from treu.shops.payload import is_ping
from treu.shops.service import connection_of, mappings_of, receipt_of
from treu.shops.tables import shop_connections, shop_orders
from treu.shops.tables import shop_webhook_receipts as receipts
from treu.storage.locks import lock_members
from treu.storage.sql import insert_or_skip
from treu.storage.uow import UnitOfWork

A = activities.c
C = shop_connections.c
SO = shop_orders.c
R = receipts.c
PLANNERS: dict[Platform, Callable[[str, Any], Plan]] = {
    Platform.SHOPIFY: shopify.plan,
    Platform.WOOCOMMERCE: woocommerce.plan,
}


def receive_webhook(uow: UnitOfWork, *, connection_id: str, delivery: Delivery) -> Receipt:
    """Verify a delivery's signature (401 ``invalid_signature``, nothing written, if it does not
    match), then record what it says — once, however often it is delivered."""
    if _is_ping(uow, connection_id, delivery):
        return Receipt(
            id=None,
            connection_id=connection_id,
            webhook_id="ping",
            topic="ping",
            order_id=None,
            outcome=Outcome.IGNORED,
            code=None,
            detail="WooCommerce's ping: the delivery URL works",
            activity_ids=(),
            received_at=uow.now(),
        )
    connection = _authentic(uow, connection_id, delivery)
    webhook_id = delivery.webhook_id or "sha256:" + hashlib.sha256(delivery.body).hexdigest()
    topic = (delivery.topic or "").strip()[:64]
    known = _find_receipt(uow, connection.id, webhook_id)
    if known is not None:
        return replace(known, replayed=True)
    draft = Receipt(
        id=new_id("shop_receipt"),
        connection_id=connection.id,
        webhook_id=webhook_id,
        topic=topic,
        order_id=None,
        outcome=Outcome.IGNORED,
        code=None,
        detail=None,
        activity_ids=(),
        received_at=uow.now(),
    )
    if not connection.enabled:  # acknowledged, not kept: enabling again takes redeliveries
        return replace(draft, id=None, detail="the connection is disabled")
    try:
        plan = PLANNERS[connection.platform](topic, _json(delivery.body))
    except TreuError as exc:
        return _finish(uow, connection, draft, Outcome.REJECTED, exc.code.value, exc.message)
    return _carry_out(uow, connection, replace(draft, order_id=plan.order_id), plan)


def _is_ping(uow: UnitOfWork, connection_id: str, delivery: Delivery) -> bool:
    """WooCommerce's unsigned ping, to a WooCommerce connection that exists."""
    if delivery.signature is not None or delivery.platform is not Platform.WOOCOMMERCE:
        return False
    if not is_ping(delivery.body):
        return False
    found = uow.conn.execute(
        select(C.id).where(
            C.id == connection_id, C.platform == delivery.platform.value, C.deleted_at.is_(None)
        )
    ).first()
    return found is not None


def _authentic(uow: UnitOfWork, connection_id: str, delivery: Delivery) -> Connection:
    row = uow.conn.execute(
        select(shop_connections).where(C.id == connection_id, C.deleted_at.is_(None))
    ).first()
    candidates = [] if row is None else [row.secret]
    if row is not None and row.previous_secret and row.previous_secret_until > uow.now():
        candidates.append(row.previous_secret)
    # the same answer for an unknown connection, another platform and a wrong signature
    if (
        row is None
        or row.platform != delivery.platform.value
        or not verify(candidates, delivery.body, delivery.signature)
    ):
        raise Unauthenticated(
            ErrorCode.INVALID_SIGNATURE,
            "the signature does not match the secret of this shop connection",
        )
    if delivery.shop_domain and delivery.shop_domain.strip().lower() != row.shop:
        # Apps sign every shop's webhooks with the app's one secret: the domain tells them apart
        raise Unauthenticated(
            ErrorCode.INVALID_SIGNATURE, "the delivery is from another shop than this connection's"
        )
    return connection_of(row)


def _json(body: bytes) -> Any:
    try:
        # Decimal, never float: "19.99" stays 19.99 wherever a platform sends a JSON number
        return json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "the body is not JSON") from None


@dataclass(frozen=True)
class _Done:
    """What one step came to: an activity (new or recorded before), or a note why none."""

    activity_id: str | None = None
    new: bool = False
    note: str | None = None


def _carry_out(uow: UnitOfWork, connection: Connection, draft: Receipt, plan: Plan) -> Receipt:
    done: list[_Done] = []
    todo: list[Step] = []
    for step in plan.steps:
        existing = _existing_activity(uow, connection, step)
        if existing is not None:
            done.append(_Done(existing))
        else:
            todo.append(step)
    try:
        for index, step in enumerate(todo):
            record = _prepare(uow, connection, step)  # may commit: a member enrolled
            if index == len(todo) - 1 and not _claim(uow, draft):
                uow.rollback()  # the same delivery, carried out a moment ago
                known = _find_receipt(uow, connection.id, draft.webhook_id)
                assert known is not None
                return replace(known, replayed=True)
            done.append(record(uow) if callable(record) else _Done(note=record))
    except (TreuError, ValidationError) as exc:
        uow.rollback()
        error = _as_treu_error(exc)
        # a refund of an order Treu never recorded (from before the connection): nothing to undo
        outcome = (
            Outcome.IGNORED if error.code is ErrorCode.PURCHASE_NOT_FOUND else Outcome.REJECTED
        )
        ids = tuple(d.activity_id for d in done if d.activity_id)
        return _finish(uow, connection, draft, outcome, error.code.value, error.message, ids)
    ids = tuple(dict.fromkeys(d.activity_id for d in done if d.activity_id))
    if any(d.new for d in done):
        outcome = Outcome.RECORDED
    elif ids:
        outcome = Outcome.UNCHANGED
    else:
        outcome = Outcome.IGNORED
    notes = [d.note for d in done if d.note] or ([plan.note] if plan.note else [])
    return _finish(uow, connection, draft, outcome, None, "; ".join(notes) or None, ids)


Record = Callable[[UnitOfWork], _Done]


def _prepare(uow: UnitOfWork, connection: Connection, step: Step) -> Record | str:
    """Everything before the step's activity is written: the member (perhaps enrolled, which
    commits), the purchase or return; or a note why there is nothing to record."""
    if isinstance(step, RecordPurchase):
        return _prepare_purchase(uow, connection, step)
    return _prepare_return(uow, connection, step)


def _prepare_purchase(
    uow: UnitOfWork, connection: Connection, step: RecordPurchase
) -> Record | str:
    external_id = purchase_external_id(connection.platform, connection.shop, step.order.id)
    mappings = (
        mappings_of(uow, connection.id) if connection.mapping_mode is MappingMode.TABLE else []
    )
    purchase, keys = purchase_of(
        step.order,
        external_id=external_id,
        store=connection.store,
        mode=connection.mapping_mode,
        mappings=mappings,
    )
    if purchase is None:
        return "no line of the order earns (gift cards only)"
    member = _member_for(uow, connection, step.order.customer)

    def record(uow: UnitOfWork) -> _Done:
        _remember_order(uow, connection, external_id, keys)
        result = record_purchase(
            uow,
            programme_id=connection.programme_id,
            purchase=purchase,
            member=member,
            accept_late=True,  # the order's own time: a shop pays and resends days later
        )
        _remember_order(uow, connection, external_id, keys)  # if a replay rolled it back
        return _outcome(result)

    return record


def _prepare_return(
    uow: UnitOfWork, connection: Connection, step: RecordRefund | CancelOrder
) -> Record | str:
    order_id = step.refund.order_id if isinstance(step, RecordRefund) else step.order_id
    bought = purchase_external_id(connection.platform, connection.shop, order_id)
    state = _purchase_state(uow, connection.programme_id, bought)
    if state is None:
        return f"Treu has recorded no purchase for order {order_id}"
    currency, lines = state
    fields: dict[str, Any] = {
        "external_id": step_external_id(connection.platform, connection.shop, step),
        "purchase_external_id": bought,
        "occurred_at": (
            step.refund.occurred_at if isinstance(step, RecordRefund) else step.occurred_at
        ),
    }
    if isinstance(step, RecordRefund) and step.refund.lines:
        index = {key: i for i, key in enumerate(_line_keys(uow, connection.programme_id, bought))}
        wanted = [(index[k], units) for k, units in step.refund.lines if k in index]
        units = returnable_lines(wanted, lines)
        if not units:
            return f"nothing of the refunded lines of order {order_id} is left to return"
        ret = ReturnIn(**fields, lines=units)
    else:
        left = left_on_products(lines)
        if isinstance(step, RecordRefund):
            assert step.refund.amount is not None
            left = min(left, to_minor(step.refund.amount, currency, field="refund amount"))
        if left <= 0:
            return f"nothing of order {order_id} is left to return"
        ret = ReturnIn(**fields, amount=from_minor(left, currency))

    def record(uow: UnitOfWork) -> _Done:
        return _outcome(record_return(uow, programme_id=connection.programme_id, ret=ret))

    return record


def _outcome(result: ActivityResult) -> _Done:
    # the activity use cases commit exactly when they wrote something new
    return _Done(result.activity_id, new=not result.replayed)


def _member_for(uow: UnitOfWork, connection: Connection, customer: Customer) -> str | None:
    """The member the shop's customer is: found by e-mail, phone or customer id; enrolled if
    the connection says so; else none (a guest purchase, which the member can claim later)."""
    references = customer.references(connection.customer_id_prefix)
    found = _find(uow, connection.programme_id, references)
    if found or not connection.auto_enrol:
        return found
    identifiers = _valid_identifiers(uow, connection, customer)
    if not identifiers:
        return None
    try:
        return enrol_member(
            uow,
            programme_id=connection.programme_id,
            identifiers_=identifiers,
            name=customer.name[:200] if customer.name else None,
            source=connection.platform.value,
        ).id
    except Conflict:  # enrolled a moment ago by a delivery about the customer's next order
        uow.rollback()
        found = _find(uow, connection.programme_id, references)
        if found is None:
            raise
        return found


def _find(uow: UnitOfWork, programme_id: str, references: list[str]) -> str | None:
    for reference in references:
        try:
            return find_member(uow, programme_id=programme_id, reference=reference).id
        except (NotFound, InvalidInput):  # no such member, or not a valid e-mail/phone
            continue
    return None


def _valid_identifiers(
    uow: UnitOfWork, connection: Connection, customer: Customer
) -> dict[IdentifierKind, str]:
    country = load_programme(uow, connection.programme_id).document.country
    given = {
        IdentifierKind.EMAIL: customer.email,
        IdentifierKind.PHONE: customer.phone,
        IdentifierKind.EXTERNAL: (
            f"{connection.customer_id_prefix}{customer.customer_id}"
            if customer.customer_id
            else None
        ),
    }
    valid = {}
    for kind, value in given.items():
        if not value:
            continue
        try:
            normalise_identifier(kind, value, country=country, secret="")
        except InvalidInput:  # a shop accepts phone numbers Treu cannot read: leave it out
            continue
        valid[kind] = value
    return valid


# --- the purchase as a return sees it ---------------------------------------------------------


def _purchase_state(
    uow: UnitOfWork, programme_id: str, external_id: str
) -> tuple[str, list[LineLeft]] | None:
    """(currency, lines with what is left of each) of a shop's purchase, its member locked (the
    lock every return takes first), or None if there is no such purchase."""
    row = uow.conn.execute(
        select(A.id, A.member_id, A.currency, A.payload).where(
            A.programme_id == programme_id, A.type == "purchase", A.external_id == external_id
        )
    ).first()
    if row is None:
        return None
    if row.member_id:
        lock_members(uow, row.member_id)
    # What was paid per line does not depend on the earning base: any base will do.
    basket = build_basket(PurchaseIn.model_validate(row.payload), row.currency, EarningBase())
    returned = [0] * len(basket.lines)
    for (payload,) in uow.conn.execute(
        select(A.payload).where(A.purchase_id == row.id, A.type == "return")
    ):
        for i, amount in enumerate(payload.get("returned_minor", [])):
            returned[i] += int(amount)
    lines = [
        LineLeft(line.paid_minor, line.quantity, line.paid_minor - back, line.is_shipping)
        for line, back in zip(basket.lines, returned, strict=True)
    ]
    return row.currency, lines


def _existing_activity(uow: UnitOfWork, connection: Connection, step: Step) -> str | None:
    kind = "purchase" if isinstance(step, RecordPurchase) else "return"
    found = uow.conn.execute(
        select(A.id).where(
            A.programme_id == connection.programme_id,
            A.type == kind,
            A.external_id == step_external_id(connection.platform, connection.shop, step),
        )
    ).scalar()
    return None if found is None else str(found)


# --- bookkeeping ------------------------------------------------------------------------------


def _remember_order(
    uow: UnitOfWork, connection: Connection, external_id: str, keys: Sequence[str]
) -> None:
    statement = insert_or_skip(
        shop_orders,
        (
            "programme_id",
            "purchase_external_id",
            "tenant_id",
            "connection_id",
            "line_keys",
            "created_at",
        ),
        conflict=("programme_id", "purchase_external_id", "tenant_id"),
        returning="purchase_external_id",
    )
    uow.conn.execute(
        statement,
        {
            "programme_id": connection.programme_id,
            "purchase_external_id": external_id,
            "tenant_id": connection.tenant_id,
            "connection_id": connection.id,
            "line_keys": list(keys),
            "created_at": uow.now(),
        },
    )


def _line_keys(uow: UnitOfWork, programme_id: str, external_id: str) -> list[str]:
    keys = uow.conn.execute(
        select(SO.line_keys).where(
            SO.programme_id == programme_id, SO.purchase_external_id == external_id
        )
    ).scalar()
    return [str(k) for k in keys or []]


_RECEIPT_COLUMNS = (
    "id",
    "tenant_id",
    "connection_id",
    "webhook_id",
    "topic",
    "order_id",
    "outcome",
    "code",
    "detail",
    "activity_ids",
    "received_at",
)


def _claim(uow: UnitOfWork, draft: Receipt) -> bool:
    """Insert the receipt (as ``recorded``) into the open transaction; False if the delivery
    already has one (committed a moment ago by a concurrent request)."""
    statement = insert_or_skip(
        receipts,
        _RECEIPT_COLUMNS,
        conflict=("connection_id", "webhook_id", "tenant_id"),
        returning="id",
    )
    values = _receipt_values(uow, replace(draft, outcome=Outcome.RECORDED))
    return uow.conn.execute(statement, values).scalar() is not None


def _finish(
    uow: UnitOfWork,
    connection: Connection,
    draft: Receipt,
    outcome: Outcome,
    code: str | None,
    detail: str | None,
    activity_ids: tuple[str, ...] = (),
) -> Receipt:
    """Write the receipt as it ended (updating the one claimed, if a step left it in place) and
    commit."""
    final = replace(
        draft,
        outcome=outcome,
        code=code,
        detail=detail[:500] if detail else None,
        activity_ids=activity_ids,
    )
    values = _receipt_values(uow, final)
    changed = uow.conn.execute(
        update(receipts)
        .where(R.connection_id == connection.id, R.webhook_id == draft.webhook_id)
        .values(
            outcome=values["outcome"],
            code=code,
            detail=values["detail"],
            activity_ids=values["activity_ids"],
        )
    )
    if changed.rowcount == 0:
        statement = insert_or_skip(
            receipts,
            _RECEIPT_COLUMNS,
            conflict=("connection_id", "webhook_id", "tenant_id"),
            returning="id",
        )
        uow.conn.execute(statement, values)
    stored = _find_receipt(uow, connection.id, draft.webhook_id)
    uow.commit()
    assert stored is not None
    return stored


def _receipt_values(uow: UnitOfWork, receipt: Receipt) -> dict[str, Any]:
    tenant_id = uow.conn.execute(
        select(C.tenant_id).where(C.id == receipt.connection_id)
    ).scalar_one()
    return {
        "id": receipt.id,
        "tenant_id": tenant_id,
        "connection_id": receipt.connection_id,
        "webhook_id": receipt.webhook_id[:128],
        "topic": receipt.topic,
        "order_id": receipt.order_id,
        "outcome": receipt.outcome.value,
        "code": receipt.code,
        "detail": receipt.detail,
        "activity_ids": list(receipt.activity_ids),
        "received_at": receipt.received_at,
    }


def _find_receipt(uow: UnitOfWork, connection_id: str, webhook_id: str) -> Receipt | None:
    row = uow.conn.execute(
        select(receipts).where(R.connection_id == connection_id, R.webhook_id == webhook_id[:128])
    ).first()
    return None if row is None else receipt_of(row)


def _as_treu_error(exc: TreuError | ValidationError) -> TreuError:
    if isinstance(exc, TreuError):
        return exc
    errors = [
        {"path": ".".join(str(p) for p in e["loc"]) or "(body)", "message": str(e["msg"])}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:3])
    return InvalidInput(ErrorCode.VALIDATION_ERROR, summary, errors=errors)
