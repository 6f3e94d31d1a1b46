"""``treu staff add``: a staff user with a password typed twice or piped in."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from treu.auth.staff import log_in_staff
from treu.cli.main import app
from treu.programmes.service import create_tenant
from treu.storage.uow import UnitOfWork


@pytest.fixture
def tenant(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TREU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    key = f"cli-staff-{uuid.uuid4().hex[:8]}"
    with UnitOfWork(engine) as uow:
        create_tenant(uow, key=key)
    return key


def test_an_owner_is_added_with_a_password_from_stdin_and_can_log_in(
    tenant: str, engine: Engine
) -> None:
    args = ["staff", "add", "--tenant", tenant, "--email", "Ada@Example.org", "--role", "owner"]
    result = CliRunner().invoke(app, [*args, "--password-stdin"], input="a long passphrase\n")

    assert result.exit_code == 0, result.output
    assert "ada@example.org (owner)" in result.output
    with UnitOfWork(engine) as uow:
        session = log_in_staff(
            uow, tenant_key=tenant, email="ada@example.org", password="a long passphrase"
        )
    assert session.user.role == "owner"


def test_the_password_is_asked_for_twice_and_must_be_long_enough(tenant: str) -> None:
    args = ["staff", "add", "--tenant", tenant, "--email", "bo@example.org", "--role", "cashier"]
    short = CliRunner().invoke(app, args, input="short\nshort\n")
    assert short.exit_code == 1
    assert "validation_error: password: 10 to 1024 characters" in short.output

    added = CliRunner().invoke(app, args, input="ten chars!\nten chars!\n")
    assert added.exit_code == 0, added.output
    again = CliRunner().invoke(app, args, input="ten chars!\nten chars!\n")
    assert again.exit_code == 1
    assert "duplicate_staff_user" in again.output
