"""Admin operations: ledger verification, the nightly run, API keys."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from treu.api.deps import Rt, Who, needs, programme_id_for
from treu.api.pagination import WindowIn
from treu.api.queries import programmes_of
from treu.api.schemas import (
    ApiKeyCreate,
    ApiKeyRead,
    ApiKeyRotate,
    NightlyRunCreate,
    NightlyRunRead,
    Page,
    StepRead,
    VerificationRead,
)
from treu.auth import idempotency
from treu.auth.model import Permission as P
from treu.auth.service import create_api_key, list_api_keys, revoke_api_key, rotate_api_key
from treu.jobs.nightly import run_nightly
from treu.ledger.verify import verify_ledger
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post("/ledger/verify", dependencies=[needs(P.LEDGER_VERIFY)])
def verify(rt: Rt, who: Who) -> VerificationRead:
    """Replay the tenant's ledger and check every invariant (``ok`` false lists the problems)."""
    report = rt.read(lambda uow: verify_ledger(uow, tenant_id=who.tenant_id))
    return VerificationRead(
        ok=report.ok,
        checked=report.checked,
        problems=report.problems,
        transfers=report.transfers,
        lots=report.lots,
    )


@router.post("/jobs/nightly", dependencies=[needs(P.JOBS_RUN)])
def nightly(rt: Rt, who: Who, body: NightlyRunCreate) -> NightlyRunRead:
    """Run the nightly steps of the tenant's programmes for a date (idempotent per date)."""

    def targets(uow: UnitOfWork) -> list[str]:
        if body.programme is not None:
            return [programme_id_for(uow, who, body.programme)]
        return [p.id for p in programmes_of(uow, tenant_id=who.tenant_id)]

    steps = []
    for programme_id in rt.read(targets):
        for r in run_nightly(rt.uow, day=body.date, programme_id=programme_id):
            steps.append(
                StepRead(
                    programme_id=r.programme_id,
                    step=r.step,
                    processed=r.processed,
                    skipped=r.skipped,
                )
            )
    rt.write(lambda uow: idempotency.purge(uow, tenant_id=who.tenant_id))
    return NightlyRunRead(date=body.date, steps=steps)


@router.get("/api-keys", dependencies=[needs(P.API_KEYS_MANAGE)], tags=["api keys"])
def list_keys(rt: Rt, who: Who, window: WindowIn) -> Page[ApiKeyRead]:
    keys = rt.read(lambda uow: list_api_keys(uow, tenant_id=who.tenant_id))
    data = [ApiKeyRead.of(k) for k in keys]
    return window.of(data)


@router.post(
    "/api-keys", status_code=201, dependencies=[needs(P.API_KEYS_MANAGE)], tags=["api keys"]
)
def create_key(rt: Rt, who: Who, body: ApiKeyCreate) -> ApiKeyRead:
    """A new key; its ``token`` is in this response and never again."""
    created = rt.write(
        lambda uow: create_api_key(
            uow,
            tenant_id=who.tenant_id,
            scope=body.scope,
            name=body.name,
            store=body.store,
            programme=body.programme,
        )
    )
    return ApiKeyRead.of(created.key, created.token)


@router.post(
    "/api-keys/{key_id}/rotate",
    status_code=201,
    dependencies=[needs(P.API_KEYS_MANAGE)],
    tags=["api keys"],
)
def rotate_key(rt: Rt, who: Who, key_id: str, body: ApiKeyRotate | None = None) -> ApiKeyRead:
    """A new key like this one; this one stops working after ``grace_seconds``."""
    grace = timedelta(seconds=body.grace_seconds if body else 0)
    created = rt.write(
        lambda uow: rotate_api_key(uow, tenant_id=who.tenant_id, key_id=key_id, grace=grace)
    )
    return ApiKeyRead.of(created.key, created.token)


@router.post(
    "/api-keys/{key_id}/revoke", dependencies=[needs(P.API_KEYS_MANAGE)], tags=["api keys"]
)
def revoke_key(rt: Rt, who: Who, key_id: str) -> ApiKeyRead:
    return ApiKeyRead.of(
        rt.write(lambda uow: revoke_api_key(uow, tenant_id=who.tenant_id, key_id=key_id))
    )
