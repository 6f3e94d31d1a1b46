"""The ``treu`` command line: thin — parse, call one service, print.

Every error a user can cause prints one line (``error: insufficient_points: ...``) and exits
with status 1; a missing database schema says which command creates it.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from treu.activities.model import ActionIn, PurchaseIn, ReturnIn
from treu.activities.service import ActivityResult, record_action, record_purchase, record_return
from treu.auth.model import ApiKey, Scope, StaffRole
from treu.auth.service import create_api_key, list_api_keys, revoke_api_key, rotate_api_key
from treu.auth.staff import add_staff_user
from treu.clock import SystemClock
from treu.config import get_settings
from treu.errors import ErrorCode, TreuError
from treu.exports.model import ExportFormat, ExportKind, encode
from treu.exports.service import export_rows
from treu.imports.model import ImportKind, JobStatus, RowError
from treu.imports.reader import inspect_file
from treu.imports.service import (
    dry_run_import,
    fail_import,
    list_import_errors,
    open_import,
    run_import,
    transactions,
)
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances, list_lots, member_history
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind, Member
from treu.members.service import find_member
from treu.programmes.service import (
    apply_programme,
    create_tenant,
    find_programme_id,
    get_tenant,
    load_programme,
)
from treu.rewards.service import consume_voucher, list_rewards, redeem_reward
from treu.storage.citus import citus_statements
from treu.storage.engine import make_engine
from treu.storage.migrate import current, upgrade
from treu.storage.schema import metadata
from treu.storage.uow import UnitOfWork
from treu.webhooks.dispatcher import PassResult, dispatch
from treu.worker import WorkerPass, run_worker

app = typer.Typer(help="Treu — the open-source loyalty platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
programme_app = typer.Typer(help="Programmes as documents.", no_args_is_help=True)
members_app = typer.Typer(help="Members.", no_args_is_help=True)
activity_app = typer.Typer(help="Purchases, returns and actions.", no_args_is_help=True)
rewards_app = typer.Typer(help="Rewards and vouchers.", no_args_is_help=True)
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
jobs_app = typer.Typer(help="The nightly run.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook delivery.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff users of a tenant (the web console).", no_args_is_help=True)
messages_app = typer.Typer(help="E-mail, SMS and push messages.", no_args_is_help=True)
consume_app = typer.Typer(help="Activities from a message broker.", no_args_is_help=True)
import_app = typer.Typer(
    help="Bulk import from CSV: resumable, with an error report (docs/import-export.md).",
    no_args_is_help=True,
)
for sub, name in (
    (db_app, "db"),
    (programme_app, "programme"),
    (members_app, "members"),
    (activity_app, "activity"),
    (rewards_app, "rewards"),
    (ledger_app, "ledger"),
    (jobs_app, "jobs"),
    (keys_app, "keys"),
    (webhooks_app, "webhooks"),
    (staff_app, "staff"),
    (messages_app, "messages"),
    (consume_app, "consume"),
    (import_app, "import"),
):
    app.add_typer(sub, name=name)

console = Console(soft_wrap=True)
TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant key.")]
ProgrammeOpt = Annotated[str, typer.Option("--programme", "-p", help="Programme key.")]


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


@contextmanager
def errors_as_one_line() -> Iterator[None]:
    try:
        yield
    except TreuError as exc:
        fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"]) or "(input)"
        fail(f"validation_error: {path}: {first['msg']}")
    except (OperationalError, ProgrammingError) as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            fail("the database has no Treu schema yet: run `treu db upgrade`")
        if (isinstance(exc, OperationalError) and exc.connection_invalidated) or _unreachable(exc):
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            fail(f"database_unavailable: cannot use {_database()}: {reason}")
        raise


def _unreachable(exc: OperationalError | ProgrammingError) -> bool:
    text = str(exc.orig).lower()
    return any(
        hint in text
        for hint in ("connection", "could not connect", "unable to open", "password", "role")
    )


def _database() -> str:
    """TREU_DATABASE_URL without its password, for messages."""
    return make_url(get_settings().database_url).render_as_string(hide_password=True)


class Ctx:
    """The engine and a unit-of-work factory, made once per command."""

    def __init__(self) -> None:
        self.engine: Engine = make_engine()
        self.clock = SystemClock()

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, self.clock, readonly=readonly)

    def programme_id(self, tenant: str, key: str) -> tuple[str, str]:
        with self.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
            return tenant_id, find_programme_id(uow, tenant_id=tenant_id, key=key)


def run(fn: Callable[[Ctx], None]) -> None:
    with errors_as_one_line():
        ctx = Ctx()
        try:
            fn(ctx)
        finally:
            ctx.engine.dispose()


# --- db ----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema of TREU_DATABASE_URL (default: SQLite file treu.db)."""
    with errors_as_one_line():
        engine = make_engine()
        try:
            upgrade(engine)
            console.print(f"database at revision {current(engine)}")
        finally:
            engine.dispose()


@db_app.command("citus-script")
def db_citus_script() -> None:
    """Print the Citus calls that distribute every table by tenant (docs/deployment.md)."""
    for statement in citus_statements(metadata):
        typer.echo(statement)


# --- programme ---------------------------------------------------------------------------


@programme_app.command("apply")
def programme_apply(file: Path, tenant: TenantOpt = "default") -> None:
    """Create or update a programme from a YAML or JSON document."""

    def go(ctx: Ctx) -> None:
        data = _load_file(file, code="invalid_programme")
        with ctx.uow() as uow:
            tenant_id = create_tenant(uow, key=tenant).id
        with ctx.uow() as uow:
            result = apply_programme(uow, tenant_id=tenant_id, document=data)
        verb = "created" if result.created else ("updated" if result.changed else "unchanged")
        console.print(f"programme {data.get('key')} {verb} (revision {result.revision})")

    run(go)


@programme_app.command("show")
def programme_show(key: str, tenant: TenantOpt = "default") -> None:
    """Print the programme document in force, as YAML."""

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, key)
        with ctx.uow() as uow:
            doc = load_programme(uow, programme_id).document
        console.print(
            yaml.safe_dump(
                doc.export(),
                sort_keys=False,
                allow_unicode=True,
            ),
            highlight=False,
        )

    run(go)


# --- members -----------------------------------------------------------------------------


@members_app.command("add")
def members_add(
    programme: ProgrammeOpt,
    email: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    card: Annotated[str | None, typer.Option()] = None,
    external: Annotated[str | None, typer.Option(help="External customer id.")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    birthday: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    consent: Annotated[
        list[Channel] | None, typer.Option(help="Channel the member agreed to.")
    ] = None,
    tenant: TenantOpt = "default",
) -> None:
    """Enrol a member with one or more identifiers."""

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        given = {
            IdentifierKind.EMAIL: email,
            IdentifierKind.PHONE: phone,
            IdentifierKind.CARD: card,
            IdentifierKind.EXTERNAL: external,
        }
        with ctx.uow() as uow:
            member = enrol_member(
                uow,
                programme_id=programme_id,
                identifiers_={k: v for k, v in given.items() if v},
                name=name,
                birthday=_date(birthday) if birthday else None,
                consents_={c: True for c in consent or []},
                source="cli",
            )
        console.print(f"enrolled {member.id}")

    run(go)


@members_app.command("find")
def members_find(reference: str, programme: ProgrammeOpt, tenant: TenantOpt = "default") -> None:
    """Find a member by id or kind:value (email:, phone:, card:, external:, payment:)."""

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        with ctx.uow() as uow:
            member = find_member(uow, programme_id=programme_id, reference=reference)
        _print_member(member)

    run(go)


@members_app.command("show")
def members_show(reference: str, programme: ProgrammeOpt, tenant: TenantOpt = "default") -> None:
    """A member's profile, balances by bucket, open lots and history with explanations."""

    def go(ctx: Ctx) -> None:
        tenant_id, programme_id = ctx.programme_id(tenant, programme)
        with ctx.uow() as uow:
            member = find_member(uow, programme_id=programme_id, reference=reference)
            balances = get_balances(uow, tenant_id=tenant_id, member_id=member.id)
            lots = list_lots(uow, tenant_id=tenant_id, member_id=member.id, open_only=True)
            history = member_history(uow, tenant_id=tenant_id, member_id=member.id)
        _print_member(member)
        console.print(
            f"available {balances.available}  pending {balances.pending}  held {balances.held}  "
            f"negative {balances.negative}  earned {balances.lifetime_earned}  "
            f"spent {balances.spent}  expired {balances.expired}",
            highlight=False,
        )
        if lots:
            table = Table("lot", "amount", "remaining", "status", "expires on")
            for lot in lots:
                table.add_row(
                    lot.id,
                    str(lot.amount),
                    str(lot.remaining),
                    lot.status,
                    str(lot.expires_on or "never"),
                )
            console.print(table)
        table = Table("when", "what", "points", "why")
        for entry in history:
            why = "; ".join(entry.explanations) or entry.reason or ""
            table.add_row(
                entry.posted_at.strftime("%Y-%m-%d %H:%M"),
                entry.kind
                + (f" {entry.activity_external_id}" if entry.activity_external_id else ""),
                f"{entry.points:+d}",
                why,
            )
        console.print(table)

    run(go)


# --- activity ----------------------------------------------------------------------------


@activity_app.command("record")
def activity_record(
    programme: ProgrammeOpt,
    file: Annotated[Path | None, typer.Option(help="JSON/YAML body of the activity.")] = None,
    kind: Annotated[str, typer.Option("--type", help="purchase, return or action")] = "purchase",
    member: Annotated[str | None, typer.Option(help="Member id or kind:value.")] = None,
    external_id: Annotated[str | None, typer.Option()] = None,
    total: Annotated[str | None, typer.Option(help="Purchase total, e.g. 12.50")] = None,
    currency: Annotated[str | None, typer.Option()] = None,
    store: Annotated[str | None, typer.Option()] = None,
    tenant: TenantOpt = "default",
) -> None:
    """Record a purchase, a return or a custom action (from --file, or quick flags)."""

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        body: dict[str, Any] = _load_file(file) if file else {}
        if external_id:
            body["external_id"] = external_id
        if kind == "purchase":
            with ctx.uow() as uow:
                body.setdefault("currency", currency or load_programme(uow, programme_id).currency)
            if total:
                body["total"] = total
            if store:
                body["store"] = store
            purchase = PurchaseIn.model_validate(body)
            with ctx.uow() as uow:
                result = record_purchase(
                    uow, programme_id=programme_id, purchase=purchase, member=member
                )
        elif kind == "return":
            ret = ReturnIn.model_validate(body)
            with ctx.uow() as uow:
                result = record_return(uow, programme_id=programme_id, ret=ret)
        elif kind == "action":
            if member is None:
                fail("an action needs --member")
            action = ActionIn.model_validate(body)
            with ctx.uow() as uow:
                result = record_action(uow, programme_id=programme_id, member=member, action=action)
        else:
            fail(f"unknown activity type {kind!r}: purchase, return or action")
        _print_result(result)

    run(go)


def _print_result(result: ActivityResult) -> None:
    note = " (already recorded: nothing changed)" if result.replayed else ""
    console.print(
        f"{result.type} {result.external_id} → {result.activity_id}: "
        f"{result.points:+d} points{note}",
        highlight=False,
    )
    for award in result.awards:
        console.print(f"  {award.explanation}", highlight=False)


# --- rewards -----------------------------------------------------------------------------


@rewards_app.command("list")
def rewards_list(programme: ProgrammeOpt, tenant: TenantOpt = "default") -> None:
    """The reward catalogue."""

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        with ctx.uow() as uow:
            rewards = list_rewards(uow, programme_id=programme_id)
        table = Table("key", "name", "kind", "cost", "stock")
        for r in rewards:
            table.add_row(
                r.key, r.name, r.kind, str(r.cost), "∞" if r.stock is None else str(r.stock)
            )
        console.print(table)

    run(go)


@rewards_app.command("redeem")
def rewards_redeem(
    programme: ProgrammeOpt,
    member: Annotated[str, typer.Option(help="Member id or kind:value.")],
    reward: Annotated[str, typer.Option(help="Reward key.")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key never redeems twice.")],
    tenant: TenantOpt = "default",
) -> None:
    """Redeem a reward for a member: points out, voucher in."""

    def go(ctx: Ctx) -> None:
        tenant_id, programme_id = ctx.programme_id(tenant, programme)
        with ctx.uow() as uow:
            member_id = find_member(uow, programme_id=programme_id, reference=member).id
        with ctx.uow() as uow:
            result = redeem_reward(
                uow,
                tenant_id=tenant_id,
                member_id=member_id,
                reward_key=reward,
                idempotency_key=key,
            )
        note = " (replayed)" if result.replayed else ""
        console.print(
            f"voucher {result.voucher.code} for {result.voucher.reward_name}: "
            f"-{result.points} points{note}",
            highlight=False,
        )

    run(go)


@rewards_app.command("consume")
def rewards_consume(code: str, tenant: TenantOpt = "default") -> None:
    """Use a voucher at the till (once)."""

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
        with ctx.uow() as uow:
            voucher = consume_voucher(uow, tenant_id=tenant_id, code=code)
        console.print(f"voucher {voucher.code} used: {voucher.reward_name}")

    run(go)


# --- ledger and jobs ---------------------------------------------------------------------


@ledger_app.command("verify")
def ledger_verify(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
) -> None:
    """Replay every transfer and check every ledger invariant; exit 1 on any problem."""

    def go(ctx: Ctx) -> None:
        # read-only: on SQLite a long verify must not hold the write lock
        with ctx.uow(readonly=True) as uow:
            tenant_id = get_tenant(uow, tenant).id if tenant else None
            report = verify_ledger(uow, tenant_id=tenant_id)
        for name, broken in report.checked.items():
            mark = "[green]ok[/green]" if not broken else f"[red]{broken} broken[/red]"
            console.print(f"{name:36} {mark}")
        console.print(f"{report.transfers} transfers, {report.lots} lots checked")
        if not report.ok:
            for name, ids in report.problems.items():
                console.print(f"[red]{name}[/red]: {', '.join(ids)}")
            raise typer.Exit(1)

    run(go)


@jobs_app.command("run")
def jobs_run(
    day: Annotated[str, typer.Option("--date", help="YYYY-MM-DD (programme time).")],
    programme: Annotated[str | None, typer.Option("--programme", "-p")] = None,
    tenant: TenantOpt = "default",
) -> None:
    """Run the nightly steps for a date, in their fixed order (idempotent per date)."""

    def go(ctx: Ctx) -> None:
        programme_id = ctx.programme_id(tenant, programme)[1] if programme else None
        results = run_nightly(ctx.uow, day=_date(day), programme_id=programme_id)
        for r in results:
            state = "skipped (already ran)" if r.skipped else f"{r.processed} items"
            console.print(f"{r.programme_id} {r.step:20} {state}")

    run(go)


# --- staff users ---------------------------------------------------------------------------


@staff_app.command("add")
def staff_add(
    email: Annotated[str, typer.Option(help="Their e-mail address: the log-in.")],
    role: Annotated[StaffRole, typer.Option(help="owner, manager or cashier")],
    name: Annotated[str | None, typer.Option(help="Their name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
    tenant: TenantOpt = "default",
) -> None:
    """Add a staff user; the password (10 characters or more) is asked for twice, or read from
    stdin. Only its argon2 hash is kept."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
        with ctx.uow() as uow:
            user = add_staff_user(
                uow, tenant_id=tenant_id, email=email, role=role, password=password, name=name
            )
        console.print(f"added {user.id} {user.email} ({user.role})", highlight=False)

    run(go)


# --- API keys and the server -------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="admin, integration, pos or read")],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    store: Annotated[str | None, typer.Option(help="Bind a pos key to this store key.")] = None,
    programme: Annotated[
        str | None, typer.Option("--programme", "-p", help="The store's programme.")
    ] = None,
    tenant: TenantOpt = "default",
) -> None:
    """Create an API key; its token is printed once and never again."""

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
        with ctx.uow() as uow:
            created = create_api_key(
                uow,
                tenant_id=tenant_id,
                scope=scope,
                name=name or (f"{scope} key" + (f" for {store}" if store else "")),
                store=store,
                programme=programme,
            )
        console.print(f"created {created.key.id} ({created.key.scope})", highlight=False)
        console.print("token (shown once, keep it safe):", highlight=False)
        print(created.token)

    run(go)


@keys_app.command("list")
def keys_list(
    tenant: TenantOpt = "default",
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """The tenant's API keys (never their tokens)."""

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
            keys = list_api_keys(uow, tenant_id=tenant_id, include_revoked=all_)
        for key in keys:  # one line each: ids must stay whole for copy and paste
            console.print(
                f"{key.id}  {key.scope:<11}  …{key.last4}  {_key_state(key):<24}  "
                f"{key.store_id or '-':<30}  {key.name}",
                highlight=False,
            )

    run(go)


def _key_state(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return f"expires {key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "active"


@keys_app.command("revoke")
def keys_revoke(key_id: str, tenant: TenantOpt = "default") -> None:
    """Revoke a key at once."""

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
        with ctx.uow() as uow:
            revoke_api_key(uow, tenant_id=tenant_id, key_id=key_id)
        console.print(f"revoked {key_id}")

    run(go)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace: Annotated[int, typer.Option(help="Seconds the old key keeps working.")] = 0,
    tenant: TenantOpt = "default",
) -> None:
    """Replace a key by a new one with the same scope and store."""

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id
        with ctx.uow() as uow:
            created = rotate_api_key(
                uow, tenant_id=tenant_id, key_id=key_id, grace=timedelta(seconds=grace)
            )
        console.print(f"created {created.key.id}, replacing {key_id}", highlight=False)
        console.print("token (shown once, keep it safe):", highlight=False)
        print(created.token)

    run(go)


@webhooks_app.command("dispatch")
def webhooks_dispatch(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
) -> None:
    """One pass: turn new events into deliveries and send those that are due."""

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id if tenant else None
        _print_pass(dispatch(ctx.uow, tenant_id=tenant_id), quiet=False)

    run(go)


@messages_app.command("dispatch")
def messages_dispatch(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
) -> None:
    """One pass: send the messages that are due (SMTP, SMS and push providers from TREU_*)."""
    from treu.messaging.dispatcher import dispatch as dispatch_messages

    def go(ctx: Ctx) -> None:
        with ctx.uow() as uow:
            tenant_id = get_tenant(uow, tenant).id if tenant else None
        result = dispatch_messages(ctx.uow, tenant_id=tenant_id)
        console.print(
            f"{result.claimed} due: {result.sent} sent, {result.retried} to try again, "
            f"{result.failed} failed, {result.suppressed} suppressed",
            highlight=False,
        )

    run(go)


@app.command("worker")
def worker(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 5.0,
) -> None:
    """Run until interrupted: automations, delayed runs, messages and webhooks, one pass
    after the other with a pause between (docs/automations.md)."""

    def go(ctx: Ctx) -> None:
        try:
            run_worker(ctx.uow, interval=interval, on_pass=_print_worker_pass)
        except KeyboardInterrupt:
            console.print("stopped")

    run(go)


def _print_worker_pass(result: WorkerPass) -> None:
    m, w = result.messages, result.webhooks
    if result.events or result.delayed or m.claimed or w.events or w.sent:
        console.print(
            f"{result.events} events automated, {result.delayed} delayed runs, "
            f"{m.sent} messages sent ({m.retried} to retry, {m.failed} failed, "
            f"{m.suppressed} suppressed), {w.sent} webhooks sent ({w.succeeded} succeeded)",
            highlight=False,
        )


def _print_pass(result: PassResult, *, quiet: bool = True) -> None:
    if result.events or result.sent or not quiet:
        console.print(
            f"{result.events} events, {result.created} deliveries created, {result.sent} sent "
            f"({result.succeeded} succeeded, {result.failed} given up)",
            highlight=False,
        )


@consume_app.command("nats")
def consume_nats(
    subject: Annotated[str, typer.Option(help="Subject the purchases are published on.")],
    programme: ProgrammeOpt,
    stream: Annotated[str, typer.Option(help="JetStream stream holding the subject.")],
    tenant: TenantOpt = "default",
    durable: Annotated[str, typer.Option(help="Durable consumer name (its position).")] = "treu",
    url: Annotated[str, typer.Option(help="NATS server.")] = "nats://127.0.0.1:4222",
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Messages per transaction.")] = 100,
    ack_wait: Annotated[
        float, typer.Option(min=0.5, help="Seconds before an unacknowledged message comes again.")
    ] = 30.0,
    until_idle: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without a message.")
    ] = None,
    create_stream: Annotated[
        bool, typer.Option(help="Create the stream (for the subject) if it does not exist.")
    ] = False,
    reconnect_attempts: Annotated[
        int, typer.Option(min=1, help="Connection attempts, 2 s apart, before giving up.")
    ] = 60,
) -> None:
    """Record purchases and returns from a NATS JetStream stream; each message is acknowledged
    after its transaction committed (docs/ingest.md)."""
    import asyncio

    from treu.ingest.nats import ConsumerOptions, IngestStats, consume

    options = ConsumerOptions(
        subject=subject,
        stream=stream,
        durable=durable,
        url=url,
        batch=batch,
        ack_wait=ack_wait,
        until_idle=until_idle,
        create_stream=create_stream,
        reconnect_attempts=reconnect_attempts,
    )

    def report(stats: IngestStats) -> None:
        console.print(
            f"{stats.received} received: {stats.recorded} recorded, {stats.replayed} replays, "
            f"{stats.rejected} dropped, {stats.retried} retried",
            highlight=False,
        )

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        try:
            report(asyncio.run(consume(ctx.uow, programme_id, options, on_batch=report)))
        except KeyboardInterrupt:
            console.print("stopped")
        except ConnectionError as exc:  # no NATS server there
            fail(str(exc))

    run(go)


# --- import and export -----------------------------------------------------------------------

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Validate every row; write nothing but the report.")
]
BatchOpt = Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")]
FINISHED_WITH_ERRORS = 3  # exit status: the file went through, some rows are in the report


@import_app.command("members")
def import_members(
    file: Path,
    programme: ProgrammeOpt,
    dry_run: DryRunOpt = False,
    batch_size: BatchOpt = 1_000,
    tenant: TenantOpt = "default",
) -> None:
    """Create or update members (upsert by identifier), with opening balances as lots."""
    _import(ImportKind.MEMBERS, file, programme, tenant, dry_run=dry_run, batch_size=batch_size)


@import_app.command("activities")
def import_activities(
    file: Path,
    programme: ProgrammeOpt,
    dry_run: DryRunOpt = False,
    batch_size: BatchOpt = 1_000,
    tenant: TenantOpt = "default",
) -> None:
    """Record purchases, returns and actions; each earns under the rules of its date."""
    _import(ImportKind.ACTIVITIES, file, programme, tenant, dry_run=dry_run, batch_size=batch_size)


def _import(
    kind: ImportKind, file: Path, programme: str, tenant: str, *, dry_run: bool, batch_size: int
) -> None:
    """Run (or resume) the import of ``file``; bad rows go to FILE.errors.csv next to it."""
    from treu.cli.progress import import_progress

    report = file.with_name(f"{file.stem}.errors.csv")
    failed = 0

    def go(ctx: Ctx) -> None:
        nonlocal failed
        tenant_id, programme_id = ctx.programme_id(tenant, programme)
        info = inspect_file(file, kind)
        if dry_run:
            with (
                _report_writer(report) as write,
                import_progress(
                    console,
                    f"checking {file.name}",
                    total_bytes=info.size,
                    done_bytes=0,
                    done_rows=0,
                ) as progress,
            ):
                result = dry_run_import(
                    ctx.uow,
                    programme_id=programme_id,
                    kind=kind,
                    path=file,
                    on_error=write,
                    batch_size=batch_size,
                    on_progress=progress,
                )
            failed = result.rows_failed
            console.print(
                f"dry run: {result.rows_done:,} rows, {result.rows_ok:,} would be imported, "
                f"{result.rows_failed:,} would fail; nothing was written",
                highlight=False,
            )
            return
        with ctx.uow() as uow:
            job = open_import(uow, programme_id=programme_id, kind=kind, file=info, source="cli")
        if job.status is JobStatus.DONE:
            failed = _write_report(ctx, tenant_id, job.id, report)
            console.print(
                f"{file.name} was imported before ({job.id}, {job.rows_done:,} rows): "
                "nothing to do",
                highlight=False,
            )
            return
        if job.next_offset > info.body_offset:
            console.print(f"resuming {job.id} at line {job.next_line:,} ({job.rows_done:,} done)")
        try:
            with import_progress(
                console,
                f"importing {file.name}",
                total_bytes=info.size,
                done_bytes=job.next_offset,
                done_rows=job.rows_done,
            ) as progress:
                job = run_import(
                    transactions(ctx.uow),
                    job_id=job.id,
                    path=file,
                    batch_size=batch_size,
                    on_progress=progress,
                )
        except KeyboardInterrupt:
            _write_report(ctx, tenant_id, job.id, report)
            console.print("interrupted: run the same command again to resume where it stopped")
            raise typer.Exit(130) from None
        except TreuError as exc:
            if exc.code is not ErrorCode.IMPORT_IN_PROGRESS:
                with ctx.uow() as uow:
                    fail_import(uow, job_id=job.id, error=str(exc))
            raise
        except Exception as exc:
            with ctx.uow() as uow:
                fail_import(uow, job_id=job.id, error=f"{type(exc).__name__}: {exc}")
            raise
        failed = _write_report(ctx, tenant_id, job.id, report)
        console.print(
            f"{job.id}: {job.rows_done:,} rows, {job.rows_ok:,} imported, "
            f"{job.rows_failed:,} failed",
            highlight=False,
        )

    run(go)
    if failed:
        console.print(f"the rows that failed, and why: {report}", highlight=False)
        raise typer.Exit(FINISHED_WITH_ERRORS)


@contextmanager
def _report_writer(path: Path) -> Iterator[Callable[[RowError], None]]:
    """Write an error report (line, column, reason) as errors come; no errors, no file."""
    handle: Any = None

    def write(error: RowError) -> None:
        nonlocal handle
        if handle is None:
            handle = path.open("w", encoding="utf-8", newline="")
            handle.write("line,column,reason\r\n")
        csv.writer(handle, lineterminator="\r\n").writerow([error.line, error.column, error.reason])

    try:
        yield write
    finally:
        if handle is not None:
            handle.close()
        else:
            path.unlink(missing_ok=True)  # a report of an earlier run no longer applies


def _write_report(ctx: Ctx, tenant_id: str, job_id: str, path: Path) -> int:
    written = 0
    with ctx.uow(readonly=True) as uow, _report_writer(path) as write:
        for error in list_import_errors(uow, tenant_id=tenant_id, job_id=job_id):
            write(error)
            written += 1
    return written


@app.command("export")
def export(
    kind: Annotated[ExportKind, typer.Argument(help="What to export.")],
    programme: ProgrammeOpt,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or jsonl")] = ExportFormat.CSV,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    tenant: TenantOpt = "default",
) -> None:
    """Export members, balances, lots, vouchers or activities of a programme, streamed."""

    def go(ctx: Ctx) -> None:
        _, programme_id = ctx.programme_id(tenant, programme)
        with ctx.uow(readonly=True) as uow:
            rows = export_rows(uow, programme_id=programme_id, kind=kind)
            with (
                output.open("w", encoding="utf-8", newline="")
                if output
                else nullcontext(sys.stdout)
            ) as target:
                for line in encode(rows, fmt):
                    target.write(line)

    run(go)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API of TREU_DATABASE_URL (docs at /docs, schema at /openapi.json)."""
    from treu.api.serve import serve as serve_api
    from treu.observability import configure_logging

    serve_api(
        "treu.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=configure_logging(),  # every worker process logs the same way
        access_log=False,  # the request log of treu.observability has the request id
    )


@app.command("demo")
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API afterwards.")
    ] = True,
    members: Annotated[int, typer.Option(help="How many demo members.")] = 40,
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
) -> None:
    """Create a SQLite demo (Kiezcafé programme, members, three months of activity) and serve
    the API on it."""
    from treu.demo import run_demo

    with errors_as_one_line():
        run_demo(console, members=members, serve=serve, port=port)


def _load_file(path: Path, code: str = "validation_error") -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{code}: cannot read {path}: {exc.strerror}")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        fail(f"{code}: {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}")
    if not isinstance(data, dict):
        fail(f"{code}: {path}: expected a mapping (key: value) at the top level")
    return data


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"validation_error: {value!r} is not a date (YYYY-MM-DD)")


def _print_member(member: Member) -> None:
    ids = ", ".join(f"{k}:{v}" for k, v in member.identifiers.items())
    console.print(f"{member.id}  {member.name or '-'}  [{member.status}]  {ids}", highlight=False)


# `treu kpi` and `treu simulate` live in cli/analytics.py; importing it registers them (here, at
# the end, because it uses the helpers above).
from treu.cli import analytics as _analytics  # noqa: E402, F401


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
