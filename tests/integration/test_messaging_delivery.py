"""A dispatcher killed mid-batch (SIGKILL, in a subprocess) and restarted sends every message
exactly once: none lost, none twice — counted by the real SMTP server that received them.

The subprocess runs the real dispatcher with the real SMTP transport, wrapped so that it kills
itself at a chosen point: before its fifth send (the message claimed, not sent), or in the middle
of the fifth SMTP conversation (recipient given, DATA half written). Both leave one message
claimed and unfinished; the restart sends the rest, and the claimed one once its lease is over.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from messaging_support import SmtpServer
from treu.clock import FixedClock
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.messaging.dispatcher import LEASE, dispatch
from treu.messaging.model import MessageKind, MessageStatus
from treu.messaging.service import enqueue_message, list_messages
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")
BATCH = 10

CHILD = """
import os, signal, smtplib, sys
from datetime import datetime
from treu.clock import FixedClock
from treu.config import get_settings
from treu.messaging.channels import smtp_transport
from treu.messaging.dispatcher import dispatch
from treu.messaging.model import MessageChannel
from treu.storage.engine import make_engine
from treu.storage.uow import UnitOfWork

url, at, tenant_id, die_at, how = sys.argv[1:6]
engine = make_engine(url)
clock = FixedClock(datetime.fromisoformat(at))
email = smtp_transport()
sends = 0

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def dying(out):
    global sends
    sends += 1
    if sends == int(die_at):
        if how == "mid_smtp":  # the server has the envelope and half the data, then nothing
            settings = get_settings()
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10)
            smtp.ehlo()
            smtp.mail(out.from_email)
            smtp.rcpt(out.to)
            smtp.putcmd("data")
            smtp.getreply()
            smtp.send(b"Subject: half a message\\r\\n\\r\\nand then the process is gone")
        die()
    return email(out)

result = dispatch(
    lambda: UnitOfWork(engine, clock),
    transports={MessageChannel.EMAIL: dying},
    tenant_id=tenant_id,
)
print(result.sent)
"""


def run_child(engine: Engine, clock: FixedClock, tenant_id: str, die_at: int, how: str) -> Any:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-c", CHILD, url, clock.now().isoformat(), tenant_id, str(die_at), how],
        capture_output=True,
        timeout=120,
        check=False,  # the exit status is the point
    )


@pytest.mark.parametrize("how", ["before_send", "mid_smtp"])
def test_a_dispatcher_killed_mid_batch_and_restarted_sends_every_message_exactly_once(
    how: str,
    engine: Engine,
    new_uow: NewUow,
    tenant: Tenant,
    clock: FixedClock,
    smtp_server: SmtpServer,
) -> None:
    clock.set(datetime(2026, 3, 2, 10, tzinfo=BERLIN))
    document = {"key": "kiez", "name": "Kiezcafé", "currency": "EUR", "timezone": "Europe/Berlin"}
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    addresses = [f"gast{i}@example.de" for i in range(BATCH)]
    members = []
    for address in addresses:
        with new_uow() as uow:
            members.append(
                enrol_member(
                    uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: address}
                ).id
            )
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        for member_id in members:
            enqueue_message(
                uow,
                programme,
                member_id=member_id,
                template="voucher_issued",
                channel="email",
                kind=MessageKind.TRANSACTIONAL,
                dedupe_key=f"voucher:{member_id}",
            )
        uow.commit()

    killed = run_child(engine, clock, tenant.id, die_at=5, how=how)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert len(smtp_server.received) == 4

    restarted = run_child(engine, clock, tenant.id, die_at=0, how=how)  # never dies
    assert restarted.returncode == 0, restarted.stderr.decode()
    assert len(smtp_server.received) == BATCH - 1  # the claimed one waits for its lease

    clock.advance(LEASE)
    assert dispatch(new_uow, tenant_id=tenant.id).sent == 1

    received = Counter(r for mail in smtp_server.received for r in mail.rcpt_tos)
    assert received == Counter(addresses)  # every one, each exactly once
    assert all(mail.subject == "Your voucher" for mail in smtp_server.received)
    with new_uow() as uow:
        statuses = {
            m.status
            for member_id in members
            for m in list_messages(uow, tenant_id=tenant.id, member_id=member_id)
        }
    assert statuses == {MessageStatus.SENT}
