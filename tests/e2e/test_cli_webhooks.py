"""``treu webhooks dispatch``: one pass from the command line, for one tenant."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from treu.cli.main import app
from treu.programmes.service import create_tenant
from treu.storage.uow import UnitOfWork
from treu.webhooks.service import create_webhook_endpoint, list_webhook_endpoints

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_a_dispatch_pass_delivers_the_tenants_new_events(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    with UnitOfWork(engine) as uow:
        tenant_id = create_tenant(uow, key=tenant).id
    with UnitOfWork(engine) as uow:
        # nothing listens on the discard port: the attempt fails and is logged
        create_webhook_endpoint(
            uow, tenant_id=tenant_id, url="http://127.0.0.1:9/treu", event_types=["*"]
        )
    runner = CliRunner()
    for args in (
        ["programme", "apply", str(EXAMPLES / "kiezcafe.yaml")],
        ["members", "add", "-p", "kiezcafe", "--email", "mia@example.org"],
    ):
        assert runner.invoke(app, [*args, "--tenant", tenant]).exit_code == 0

    result = runner.invoke(app, ["webhooks", "dispatch", "--tenant", tenant])

    assert result.exit_code == 0, result.output
    # member.enrolled, and voucher.issued and campaign.awarded (Kiezcafé's welcome croissant)
    assert "3 deliveries created, 3 sent (0 succeeded, 0 given up)" in result.output
    with UnitOfWork(engine) as uow:
        assert len(list_webhook_endpoints(uow, tenant_id=tenant_id)) == 1
