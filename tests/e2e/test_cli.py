"""The ``treu`` command line, end to end, on SQLite and PostgreSQL.

Each test runs the real commands (Typer's runner, in process) against the migrated test database
of the ``engine`` fixture, with its own tenant key so tests never see each other's data.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from treu.cli.main import app

EXAMPLES = Path(__file__).parents[2] / "examples"
runner = CliRunner()


@pytest.fixture
def treu(engine: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TREU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    tenant = f"cli-{uuid.uuid4().hex[:8]}"

    def invoke(*args: str, ok: bool = True) -> str:
        result = runner.invoke(app, [*args, "--tenant", tenant] if args[0] != "db" else list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    return invoke


def test_a_cafe_owner_sets_up_the_programme_and_serves_a_member(treu, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # given the Kiezcafé programme applied from its document
    assert "created (revision 1)" in treu("programme", "apply", str(EXAMPLES / "kiezcafe.yaml"))
    assert "unchanged" in treu("programme", "apply", str(EXAMPLES / "kiezcafe.yaml"))
    assert "Kiezcafé Treue" in treu("programme", "show", "kiezcafe")
    # and Mia enrolled with her e-mail, written the way people write it
    assert "enrolled mbr_" in treu(
        "members",
        "add",
        "-p",
        "kiezcafe",
        "--email",
        " Mia@Example.ORG",
        "--name",
        "Mia",
        "--consent",
        "email",
    )
    # when she buys two cappuccinos, and the till sends the purchase twice
    purchase = tmp_path / "bon.json"
    purchase.write_text(
        json.dumps(
            {
                "external_id": "bon-1",
                "currency": "EUR",
                "store": "kastanienallee",
                "lines": [
                    {"sku": "CAPPU", "category": "Kaffee", "quantity": 2, "unit_price": "3.40"}
                ],
                "occurred_at": "2026-01-01T14:00:00+01:00",
            }
        )
    )
    first = treu(
        "activity",
        "record",
        "-p",
        "kiezcafe",
        "--member",
        "email:mia@example.org",
        "--file",
        str(purchase),
    )
    again = treu(
        "activity",
        "record",
        "-p",
        "kiezcafe",
        "--member",
        "email:mia@example.org",
        "--file",
        str(purchase),
    )
    # then she earns 6 points once, with the reason
    assert "+6 points" in first
    assert "1 Punkt je Euro" in first
    assert "already recorded: nothing changed" in again
    shown = treu("members", "show", "email:MIA@example.org", "-p", "kiezcafe")
    assert "available 6" in shown
    assert "1 Punkt je Euro" in shown
    # and the ledger verifies
    assert "broken" not in treu("ledger", "verify")


def test_bad_input_is_one_clear_line_and_changes_nothing(treu, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    treu("programme", "apply", str(EXAMPLES / "kiezcafe.yaml"))
    treu("members", "add", "-p", "kiezcafe", "--email", "ben@example.org")
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: x\nname: X\ncurrency: EUR\ntimezone: Mars/Olympus\n")
    out = treu("programme", "apply", str(broken), ok=False)
    assert "invalid_programme" in out
    assert "timezone" in out
    assert "member_not_found" in treu(
        "activity",
        "record",
        "-p",
        "kiezcafe",
        "--member",
        "email:nobody@example.org",
        "--external-id",
        "b-1",
        "--total",
        "5.00",
        ok=False,
    )
    assert "currency_mismatch" in treu(
        "activity",
        "record",
        "-p",
        "kiezcafe",
        "--member",
        "email:ben@example.org",
        "--external-id",
        "b-2",
        "--total",
        "5.00",
        "--currency",
        "USD",
        ok=False,
    )
    assert "invalid_amount" in treu(
        "activity",
        "record",
        "-p",
        "kiezcafe",
        "--member",
        "email:ben@example.org",
        "--external-id",
        "b-3",
        "--total",
        "5.001",
        ok=False,
    )
    assert "insufficient_points" in treu(
        "rewards",
        "redeem",
        "-p",
        "kiezcafe",
        "--member",
        "email:ben@example.org",
        "--reward",
        "kuchen",
        "--key",
        "r-1",
        ok=False,
    )
    assert "duplicate_identifier" in treu(
        "members", "add", "-p", "kiezcafe", "--email", "BEN@example.org", ok=False
    )
    assert "available 0" in treu("members", "show", "email:ben@example.org", "-p", "kiezcafe")
    assert "programme_not_found" in treu("rewards", "list", "-p", "nope", ok=False)


def test_the_nightly_run_is_idempotent_per_date(treu) -> None:  # type: ignore[no-untyped-def]
    treu("programme", "apply", str(EXAMPLES / "mercado-smart.yaml"))
    first = treu("jobs", "run", "--date", "2026-02-01", "-p", "mercado-smart")
    second = treu("jobs", "run", "--date", "2026-02-01", "-p", "mercado-smart")
    assert "expire_points" in first
    assert "skipped (already ran)" not in first
    assert second.count("skipped (already ran)") == first.count("items")


def test_demo_seeds_a_verified_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREU_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    result = runner.invoke(app, ["demo", "--no-serve", "--members", "6"])
    assert result.exit_code == 0, result.output
    assert "ledger verify: ok" in result.output
    again = runner.invoke(app, ["demo", "--no-serve"])
    assert "already seeded" in again.output


def test_a_database_without_schema_says_how_to_create_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREU_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["programme", "apply", str(EXAMPLES / "kiezcafe.yaml")])
    assert result.exit_code == 1
    assert "treu db upgrade" in result.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["programme", "apply", str(EXAMPLES / "kiezcafe.yaml")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "url",
    ["postgresql://nobody:secret@127.0.0.1:9/treu", "sqlite:////nonexistent/directory/treu.db"],
    ids=["postgresql-down", "sqlite-unwritable"],
)
@pytest.mark.parametrize(
    "command",
    [["db", "upgrade"], ["members", "show", "mia@example.org", "-p", "kiezcafe"]],
    ids=["db-upgrade", "members-show"],
)
def test_an_unreachable_database_is_one_line_not_a_traceback(
    url: str, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREU_DATABASE_URL", url)
    result = runner.invoke(app, command)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: database_unavailable: cannot use ")
    assert "secret" not in result.output  # the password stays out of the message
