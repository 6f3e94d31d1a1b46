"""Webhook endpoints of the tenant, their delivery log and manual redelivery.

Sending is not the API's business: ``treu worker`` (or ``treu webhooks dispatch``) reads the
outbox and delivers. A redelivery here only schedules the delivery for the next pass.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from treu.api.deps import Rt, Who, needs
from treu.api.pagination import Limit, StartingAfter, WindowIn, page
from treu.api.schemas import (
    Page,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
)
from treu.auth.model import Permission as P
from treu.webhooks.model import DeliveryStatus
from treu.webhooks.service import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    get_delivery,
    get_webhook_endpoint,
    list_deliveries,
    list_webhook_endpoints,
    redeliver,
    update_webhook_endpoint,
)

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
MANAGE = [needs(P.WEBHOOKS_MANAGE)]


@router.post("", status_code=201, dependencies=MANAGE)
def create(rt: Rt, who: Who, body: WebhookEndpointCreate) -> WebhookEndpointRead:
    """Register a URL for events; the signing ``secret`` is in this response and never again."""
    created = rt.write(
        lambda uow: create_webhook_endpoint(
            uow,
            tenant_id=who.tenant_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
        )
    )
    return WebhookEndpointRead.of(created.endpoint, created.secret)


@router.get("", dependencies=MANAGE)
def list_all(rt: Rt, who: Who, window: WindowIn) -> Page[WebhookEndpointRead]:
    found = rt.read(lambda uow: list_webhook_endpoints(uow, tenant_id=who.tenant_id))
    data = [WebhookEndpointRead.of(e) for e in found]
    return window.of(data)


@router.get("/{endpoint_id}", dependencies=MANAGE)
def get_one(rt: Rt, who: Who, endpoint_id: str) -> WebhookEndpointRead:
    return WebhookEndpointRead.of(
        rt.read(
            lambda uow: get_webhook_endpoint(uow, tenant_id=who.tenant_id, endpoint_id=endpoint_id)
        )
    )


@router.patch("/{endpoint_id}", dependencies=MANAGE)
def update(rt: Rt, who: Who, endpoint_id: str, body: WebhookEndpointUpdate) -> WebhookEndpointRead:
    """Change the URL, the events, the description, or switch the endpoint off and on."""
    updated = rt.write(
        lambda uow: update_webhook_endpoint(
            uow,
            tenant_id=who.tenant_id,
            endpoint_id=endpoint_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
        )
    )
    return WebhookEndpointRead.of(updated)


@router.delete("/{endpoint_id}", dependencies=MANAGE)
def delete(rt: Rt, who: Who, endpoint_id: str) -> WebhookEndpointDeleted:
    """The endpoint gets nothing more (deliveries still due are dropped)."""
    rt.write(
        lambda uow: delete_webhook_endpoint(uow, tenant_id=who.tenant_id, endpoint_id=endpoint_id)
    )
    return WebhookEndpointDeleted(id=endpoint_id)


@router.get("/{endpoint_id}/deliveries", dependencies=MANAGE)
def deliveries(
    rt: Rt,
    who: Who,
    endpoint_id: str,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    status: Annotated[DeliveryStatus | None, Query(description="Only this status")] = None,
) -> Page[WebhookDeliveryRead]:
    """The delivery log of the endpoint, oldest first."""
    found = rt.read(
        lambda uow: list_deliveries(
            uow,
            tenant_id=who.tenant_id,
            endpoint_id=endpoint_id,
            status=status,
            starting_after=starting_after,
            limit=limit + 1,
        )
    )
    return page([WebhookDeliveryRead.of(d) for d in found], limit=limit, id_of=lambda d: d.id)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", dependencies=MANAGE)
def delivery(rt: Rt, who: Who, endpoint_id: str, delivery_id: str) -> WebhookDeliveryRead:
    """A delivery with every attempt (time, status code or error, duration)."""
    found = rt.read(
        lambda uow: get_delivery(
            uow, tenant_id=who.tenant_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
    )
    return WebhookDeliveryRead.of(found, with_log=True)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", dependencies=MANAGE)
def redeliver_one(rt: Rt, who: Who, endpoint_id: str, delivery_id: str) -> WebhookDeliveryRead:
    """Send the delivery again at the next dispatcher pass, with a fresh round of retries."""
    again = rt.write(
        lambda uow: redeliver(
            uow, tenant_id=who.tenant_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
    )
    return WebhookDeliveryRead.of(again, with_log=True)
