"""``treu messages dispatch``: one pass from the command line, to a real SMTP server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from messaging_support import SmtpServer
from treu.cli.main import app
from treu.programmes.service import create_tenant
from treu.storage.uow import UnitOfWork

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_a_dispatch_pass_sends_the_double_opt_in_email_of_a_new_member(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    monkeypatch.setenv("TREU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    with UnitOfWork(engine) as uow:
        create_tenant(uow, key=tenant)
    runner = CliRunner()
    for args in (
        ["programme", "apply", str(EXAMPLES / "kiezcafe.yaml")],
        ["members", "add", "-p", "kiezcafe", "--email", "mia@example.org", "--consent", "email"],
    ):
        assert runner.invoke(app, [*args, "--tenant", tenant]).exit_code == 0

    result = runner.invoke(app, ["messages", "dispatch", "--tenant", tenant])

    assert result.exit_code == 0, result.output
    assert "1 due: 1 sent, 0 to try again, 0 failed, 0 suppressed" in result.output
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["mia@example.org"]
    assert mail.subject == "Bitte bestätige deine Anmeldung bei Kiezcafé Treue"
    again = runner.invoke(app, ["messages", "dispatch", "--tenant", tenant])
    assert "0 due" in again.output
