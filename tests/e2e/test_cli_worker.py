"""``treu worker`` as an operator runs it: a process of its own that fires the automations and
sends their e-mails until it is interrupted (Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from messaging_support import SmtpServer, smtp_server  # noqa: F401 - a fixture
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiezcafe.yaml"


def test_the_worker_sends_the_welcome_email_and_stops_on_interrupt(
    tmp_path: Path,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
) -> None:
    # a database of its own: the worker takes every tenant's work
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        tenant = create_tenant(uow, key="kiez")
    with UnitOfWork(engine) as uow:
        document = yaml.safe_load(EXAMPLE.read_text())
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    with UnitOfWork(engine) as uow:
        enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: "mia@example.de"},
            name="Mia",
            consents_={Channel.EMAIL: True},
        )
    engine.dispose()

    worker = subprocess.Popen(
        [sys.executable, "-m", "treu.cli.main", "worker", "--interval", "0.2"],
        env={**os.environ, "TREU_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(m.subject.startswith("Willkommen") for m in smtp_server.received):
            if time.monotonic() > deadline or worker.poll() is not None:
                pytest.fail("no welcome e-mail from the worker")
            time.sleep(0.1)
        worker.send_signal(signal.SIGINT)
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, output
    # (the pass's summary line may not be printed: the interrupt can come in the middle of the
    # pass that sent the e-mail, and the worker stops there)
    assert output.rstrip().endswith("stopped")
    welcome = [m for m in smtp_server.received if m.subject.startswith("Willkommen")]
    assert [m.subject for m in welcome] == ["Willkommen bei Kiezcafé Treue!"]
