"""Use cases for tenants, programmes and stores."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound
from treu.ids import new_id
from treu.ledger.model import SystemAccount, Unit, system_account_id
from treu.ledger.tables import accounts
from treu.programmes.model import Programme, ProgrammeDocument, parse_document
from treu.programmes.tables import programme_revisions, programmes, rule_budgets, stores, tenants
from treu.rewards.model import RewardDef
from treu.rewards.tables import rewards
from treu.storage.uow import UnitOfWork


@dataclass(frozen=True)
class Tenant:
    id: str
    key: str
    name: str
    secret: str


@dataclass(frozen=True)
class ApplyResult:
    programme_id: str
    revision: int
    created: bool
    changed: bool


def create_tenant(uow: UnitOfWork, *, key: str, name: str | None = None) -> Tenant:
    """Create the tenant ``key``, or return it if it exists (safe to repeat)."""
    existing = find_tenant(uow, key)
    if existing:
        return existing
    tenant = Tenant(new_id("tenant"), key, name or key, secrets.token_hex(32))
    uow.conn.execute(
        insert(tenants).values(
            id=tenant.id, key=key, name=tenant.name, secret=tenant.secret, created_at=uow.now()
        )
    )
    uow.commit()
    return tenant


def find_tenant(uow: UnitOfWork, key: str) -> Tenant | None:
    row = uow.conn.execute(select(tenants).where(tenants.c.key == key)).first()
    return Tenant(row.id, row.key, row.name, row.secret) if row else None


def get_tenant(uow: UnitOfWork, key: str) -> Tenant:
    tenant = find_tenant(uow, key)
    if tenant is None:
        raise NotFound(ErrorCode.TENANT_NOT_FOUND, f"no tenant {key!r}")
    return tenant


# A tenant's secret is written once, when the tenant is created, and never changed.
_secrets: dict[str, str] = {}
_SECRET = select(tenants.c.secret).where(tenants.c.id == bindparam("tenant_id"))


def tenant_secret(uow: UnitOfWork, tenant_id: str) -> str:
    secret = _secrets.get(tenant_id)
    if secret is None:
        secret = str(uow.conn.execute(_SECRET, {"tenant_id": tenant_id}).scalar_one())
        _secrets[tenant_id] = secret
    return secret


def apply_programme(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    document: ProgrammeDocument | dict[str, Any],
    based_on: str | None = None,
) -> ApplyResult:
    """Create or update the programme ``document.key`` of a tenant from its document.

    Applying the same document twice changes nothing. A changed document becomes a new revision
    in force from now on; activities keep being explained by the revision they were earned
    under. Stores and rewards are matched by key; a reward's ``stock`` in the document is its
    initial stock, and a change of that number restocks by the difference (stock already
    redeemed stays redeemed).

    ``based_on``: the revision id the document was edited from (the console's forms). If
    another revision has been applied since, nothing is saved (``programme_changed``) rather
    than undo that change silently.
    """
    doc = document if isinstance(document, ProgrammeDocument) else parse_document(document)
    now = uow.now()
    # The programme row is locked (PostgreSQL) so that two applies of one programme take turns:
    # the second sees the first's revision, for its number and for ``based_on``.
    row = uow.conn.execute(
        select(programmes)
        .where(programmes.c.tenant_id == tenant_id, programmes.c.key == doc.key)
        .with_for_update()
    ).first()
    previous: ProgrammeDocument | None = None
    created = row is None
    if row is None:
        programme_id = new_id("programme")
        uow.conn.execute(
            insert(programmes).values(
                id=programme_id,
                tenant_id=tenant_id,
                key=doc.key,
                name=doc.name,
                currency=doc.currency,
                timezone=doc.timezone,
                locale=doc.locale,
                created_at=now,
                updated_at=now,
            )
        )
        _create_system_accounts(uow, tenant_id, programme_id)
        number = 1
    else:
        programme_id = row.id
        current = _revisions(uow, programme_id)[-1]
        if based_on is not None and current.id != based_on:
            raise Conflict(
                ErrorCode.PROGRAMME_CHANGED,
                f"the programme is at revision {current.number} now, not the one edited",
            )
        previous = current.parsed
        if previous == doc:
            return ApplyResult(programme_id, current.number, created=False, changed=False)
        if previous is not None and previous.currency != doc.currency:
            # Every amount recorded so far is in minor units of the old currency.
            raise InvalidInput(
                ErrorCode.INVALID_PROGRAMME,
                f"currency: the programme counts in {previous.currency} and cannot change to"
                f" {doc.currency}; start a new programme instead",
                errors=[{"path": "currency", "message": "cannot change once applied"}],
            )
        number = current.number + 1
    revision_id = new_id("revision")
    uow.cache.pop(("revisions", programme_id), None)
    uow.conn.execute(
        insert(programme_revisions).values(
            id=revision_id,
            tenant_id=tenant_id,
            programme_id=programme_id,
            number=number,
            document=doc.model_dump(mode="json", by_alias=True),
            effective_from=now,
            created_at=now,
        )
    )
    uow.conn.execute(
        update(programmes)
        .where(programmes.c.id == programme_id)
        .values(
            name=doc.name,
            currency=doc.currency,
            timezone=doc.timezone,
            locale=doc.locale,
            current_revision_id=revision_id,
            updated_at=now,
        )
    )
    _sync_stores(uow, tenant_id, programme_id, doc)
    _sync_rewards(uow, tenant_id, programme_id, doc, previous)
    _sync_budgets(uow, tenant_id, programme_id, doc)
    uow.commit()
    return ApplyResult(programme_id, number, created=created, changed=True)


def find_programme_id(uow: UnitOfWork, *, tenant_id: str, key: str) -> str:
    programme_id = uow.conn.execute(
        select(programmes.c.id).where(programmes.c.tenant_id == tenant_id, programmes.c.key == key)
    ).scalar()
    if programme_id is None:
        raise NotFound(ErrorCode.PROGRAMME_NOT_FOUND, f"no programme {key!r}")
    return str(programme_id)


def load_programme(uow: UnitOfWork, programme_id: str, *, at: datetime | None = None) -> Programme:
    """The programme as in force at ``at`` (default: its current revision)."""
    revisions = _revisions(uow, programme_id)
    if not revisions:
        raise NotFound(ErrorCode.PROGRAMME_NOT_FOUND, f"no programme {programme_id!r}")
    chosen = revisions[-1]
    if at is not None:
        # Activities older than the first revision (imports, offline tills) use the first one.
        chosen = next((r for r in reversed(revisions) if r.effective_from <= at), revisions[0])
    return Programme(programme_id, chosen.tenant_id, chosen.id, chosen.parsed)


def load_revision(uow: UnitOfWork, revision_id: str) -> Programme:
    row = uow.conn.execute(
        select(programme_revisions).where(programme_revisions.c.id == revision_id)
    ).one()
    return Programme(row.programme_id, row.tenant_id, row.id, _document(row.id, row.document))


def store_ids(uow: UnitOfWork, programme_id: str) -> dict[str, str]:
    """Store key → id, inactive stores included (don't change the dict you get)."""
    # Stores change only when a programme document is applied, and applying a changed document
    # always adds a revision: the stores as of the newest revision never change again.
    newest = _revisions(uow, programme_id)
    key = (programme_id, newest[-1].id if newest else None)
    found = _stores.get(key)
    if found is None:
        found = _read_store_ids(uow, programme_id)
        if newest:
            _stores[key] = found
    return found


_STORES = select(stores.c.key, stores.c.id).where(
    stores.c.programme_id == bindparam("programme_id")
)


def _read_store_ids(uow: UnitOfWork, programme_id: str) -> dict[str, str]:
    rows = uow.conn.execute(_STORES, {"programme_id": programme_id})
    return {r.key: r.id for r in rows}


# Revisions are immutable, so their parsed documents can be cached for the life of the process,
# and so can the stores as of a revision (see store_ids).
_documents: dict[str, ProgrammeDocument] = {}
_stores: dict[tuple[str, str | None], dict[str, str]] = {}


def _document(revision_id: str, data: dict[str, Any]) -> ProgrammeDocument:
    doc = _documents.get(revision_id)
    if doc is None:
        doc = _documents[revision_id] = ProgrammeDocument.model_validate(data)
    return doc


_REVISIONS = (
    select(
        programme_revisions.c.id,
        programme_revisions.c.tenant_id,
        programme_revisions.c.number,
        programme_revisions.c.effective_from,
    )
    .where(programme_revisions.c.programme_id == bindparam("programme_id"))
    .order_by(programme_revisions.c.number)
)


def _revisions(uow: UnitOfWork, programme_id: str) -> list[_Rev]:
    """The programme's revisions, oldest first; read once per transaction."""
    cached: list[_Rev] | None = uow.cache.get(("revisions", programme_id))
    if cached is not None:
        return cached
    rows = list(uow.conn.execute(_REVISIONS, {"programme_id": programme_id}))
    missing = [r.id for r in rows if r.id not in _documents]
    if missing:
        docs = uow.conn.execute(
            select(programme_revisions.c.id, programme_revisions.c.document).where(
                programme_revisions.c.id.in_(missing)
            )
        )
        for rid, data in docs:
            _document(rid, data)
    revisions = [
        _Rev(r.id, r.tenant_id, r.number, r.effective_from, _documents[r.id]) for r in rows
    ]
    uow.cache[("revisions", programme_id)] = revisions
    return revisions


@dataclass(frozen=True)
class _Rev:
    id: str
    tenant_id: str
    number: int
    effective_from: datetime
    parsed: ProgrammeDocument


def _create_system_accounts(uow: UnitOfWork, tenant_id: str, programme_id: str) -> None:
    uow.conn.execute(
        insert(accounts),
        [
            {
                "id": system_account_id(programme_id, kind, unit),
                "tenant_id": tenant_id,
                "programme_id": programme_id,
                "member_id": None,
                "kind": kind.value,
                "unit": unit.value,
                "balance": None,
            }
            for unit in Unit
            for kind in SystemAccount
        ],
    )


def _sync_stores(
    uow: UnitOfWork, tenant_id: str, programme_id: str, doc: ProgrammeDocument
) -> None:
    existing = _read_store_ids(uow, programme_id)
    for store in doc.stores:
        values = {"name": store.name, "channel": store.channel, "active": True}
        if store.key in existing:
            uow.conn.execute(
                update(stores).where(stores.c.id == existing[store.key]).values(**values)
            )
        else:
            uow.conn.execute(
                insert(stores).values(
                    id=new_id("store"),
                    tenant_id=tenant_id,
                    programme_id=programme_id,
                    key=store.key,
                    **values,
                )
            )
    gone = set(existing) - {s.key for s in doc.stores}
    if gone:
        uow.conn.execute(
            update(stores)
            .where(stores.c.programme_id == programme_id, stores.c.key.in_(gone))
            .values(active=False)
        )


def _sync_rewards(
    uow: UnitOfWork,
    tenant_id: str,
    programme_id: str,
    doc: ProgrammeDocument,
    previous: ProgrammeDocument | None,
) -> None:
    before = {r.key: r for r in previous.rewards} if previous else {}
    existing = {
        r.key: r
        for r in uow.conn.execute(select(rewards).where(rewards.c.programme_id == programme_id))
    }
    for reward in doc.rewards:
        values = _reward_values(reward)
        row = existing.get(reward.key)
        if row is None:
            uow.conn.execute(
                insert(rewards).values(
                    id=new_id("reward"),
                    tenant_id=tenant_id,
                    programme_id=programme_id,
                    key=reward.key,
                    stock=reward.stock,
                    **values,
                )
            )
            continue
        old = before.get(reward.key)
        stock = row.stock
        if reward.stock is None:
            stock = None
        elif old is None or old.stock is None or row.stock is None:
            stock = reward.stock
        elif reward.stock != old.stock:
            stock = max(0, row.stock + reward.stock - old.stock)
        uow.conn.execute(
            update(rewards).where(rewards.c.id == row.id).values(stock=stock, **values)
        )
    gone = set(existing) - {r.key for r in doc.rewards}
    if gone:
        uow.conn.execute(
            update(rewards)
            .where(rewards.c.programme_id == programme_id, rewards.c.key.in_(gone))
            .values(active=False)
        )


def _reward_values(reward: RewardDef) -> dict[str, Any]:
    return {
        "name": reward.name,
        "kind": reward.kind.value,
        "cost": reward.cost,
        "per_member_limit": reward.per_member_limit,
        "available_from": reward.available_from,
        "available_until": reward.available_until,
        "active": reward.active,
        "definition": reward.model_dump(mode="json"),
    }


def _sync_budgets(
    uow: UnitOfWork, tenant_id: str, programme_id: str, doc: ProgrammeDocument
) -> None:
    existing = {
        r.rule_key: r
        for r in uow.conn.execute(
            select(rule_budgets).where(rule_budgets.c.programme_id == programme_id)
        )
    }
    for rule in doc.rules:
        budget = rule.caps.budget
        if budget is None:
            continue
        row = existing.get(rule.key)
        if row is None:
            uow.conn.execute(
                insert(rule_budgets).values(
                    programme_id=programme_id,
                    rule_key=rule.key,
                    tenant_id=tenant_id,
                    budget=budget,
                    used=0,
                )
            )
        elif row.budget != budget:
            uow.conn.execute(
                update(rule_budgets)
                .where(
                    rule_budgets.c.programme_id == programme_id, rule_budgets.c.rule_key == rule.key
                )
                .values(budget=max(budget, row.used))
            )
