"""The message dispatcher: due messages → SMTP / SMS / push / tenant webhooks, one pass at a
time (``treu messages dispatch``; ``treu worker`` and the nightly run call :func:`dispatch`).

Each message is: claimed and checked again (a transaction), sent with no transaction open (a
slow mail server never holds a database lock), and its outcome recorded (a transaction) right
after the server accepted it. A dispatcher killed anywhere leaves at most one message claimed
and unfinished; once its lease is over the next pass sends it. Messages are sent exactly once
for practical purposes: the row is the dedupe (unique ``dedupe_key``), and the only window for
a second copy is between the server's "250 OK" and the next statement.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from treu.messaging.channels import SendResult, Transport, default_transports, unconfigured
from treu.messaging.delivery import claim_due_message, record_send
from treu.messaging.model import MessageChannel, MessageStatus
from treu.storage.uow import UowFactory

log = logging.getLogger("treu.messaging")

# Longer than any one send can take (the SMTP time-out is 30 s), so a live sender is never
# overtaken by a second one.
LEASE = timedelta(seconds=120)
MAX_SENDS = 100


@dataclass(frozen=True)
class PassResult:
    claimed: int = 0  # messages taken in this pass
    sent: int = 0  # accepted by the server / provider (or handed to webhooks)
    retried: int = 0  # failed for now, scheduled again
    failed: int = 0  # given up (permanent error, bounce, too many attempts)
    suppressed: int = 0  # the check before sending stopped them (consent withdrawn, cap, …)


def dispatch(
    new_uow: UowFactory,
    *,
    transports: Mapping[MessageChannel, Transport] | None = None,
    max_sends: int = MAX_SENDS,
    tenant_id: str | None = None,
) -> PassResult:
    """One pass: send up to ``max_sends`` due messages with ``transports`` (by default those
    the settings configure: TREU_SMTP_*, TREU_SMS_*, TREU_PUSH_*)."""
    chosen = transports if transports is not None else default_transports()
    counts = {status: 0 for status in MessageStatus}
    claimed_count = retried = 0
    for _ in range(max_sends):
        with new_uow() as uow:
            claimed = claim_due_message(uow, lease=LEASE, tenant_id=tenant_id)
        if claimed is None:
            break
        claimed_count += 1
        if claimed.outgoing is None:
            counts[claimed.status] += 1
            continue
        send = chosen.get(claimed.channel) or unconfigured(claimed.channel)
        try:
            result = send(claimed.outgoing)
        except Exception as exc:  # a transport's bug must not stop the other messages
            log.exception("sending message %s failed", claimed.message_id)
            result = SendResult.retry(f"{type(exc).__name__}: {exc}")
        with new_uow() as uow:
            status = record_send(uow, claimed=claimed, result=result)
        if status is MessageStatus.QUEUED:
            retried += 1
            log.info("message %s attempt %d: %s", claimed.message_id, claimed.attempt, result.error)
        else:
            counts[status] += 1
    return PassResult(
        claimed=claimed_count,
        sent=counts[MessageStatus.SENT],
        retried=retried,
        failed=counts[MessageStatus.FAILED],
        suppressed=counts[MessageStatus.SUPPRESSED],
    )
