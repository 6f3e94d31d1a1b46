"""Programmes (apply a document, show, list), their stores and their reward catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from treu.api.deps import Rt, Who, needs, programme_id_for
from treu.api.pagination import Limit, StartingAfter, WindowIn, page
from treu.api.queries import programmes_of
from treu.api.schemas import Page, ProgrammeApplied, ProgrammeRead, RewardRead, StoreRead
from treu.auth.model import Permission as P
from treu.errors import ErrorCode, NotFound
from treu.programmes.service import apply_programme, load_programme, store_ids
from treu.rewards.service import list_rewards
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/programmes", tags=["programmes"])


@router.get("", dependencies=[needs(P.PROGRAMMES_READ)])
def list_programmes(
    rt: Rt, who: Who, limit: Limit = 20, starting_after: StartingAfter = None
) -> Page[ProgrammeRead]:
    rows = rt.read(
        lambda uow: programmes_of(
            uow,
            tenant_id=who.tenant_id,
            only=who.programme_id,
            starting_after=starting_after,
            limit=limit + 1,
        )
    )
    data = [
        ProgrammeRead(
            id=r.id,
            key=r.key,
            name=r.name,
            currency=r.currency,
            timezone=r.timezone,
            locale=r.locale,
            revision_id=r.revision_id,
        )
        for r in rows
    ]
    return page(data, limit=limit, id_of=lambda p: p.id)


@router.post("", status_code=201, dependencies=[needs(P.PROGRAMMES_WRITE)])
def apply_document(
    rt: Rt,
    who: Who,
    response: Response,
    document: Annotated[
        dict[str, Any], Body(description="A programme document (docs/programme-document.md)")
    ],
) -> ProgrammeApplied:
    """Create or update a programme from its document; unchanged documents change nothing."""
    result = rt.write(lambda uow: apply_programme(uow, tenant_id=who.tenant_id, document=document))
    if not result.created:
        response.status_code = 200
    return ProgrammeApplied(
        programme_id=result.programme_id,
        key=str(document.get("key")),
        revision=result.revision,
        created=result.created,
        changed=result.changed,
    )


@router.get("/{programme}", dependencies=[needs(P.PROGRAMMES_READ)])
def get_programme(rt: Rt, who: Who, programme: str) -> ProgrammeRead:
    def go(uow: UnitOfWork) -> ProgrammeRead:
        pid = programme_id_for(uow, who, programme)
        found = programmes_of(uow, tenant_id=who.tenant_id, only=pid)
        if not found:  # pragma: no cover - programme_id_for found it in this transaction
            raise NotFound(ErrorCode.PROGRAMME_NOT_FOUND, f"no programme {programme!r}")
        row = found[0]
        doc = load_programme(uow, pid).document
        return ProgrammeRead(
            id=row.id,
            key=row.key,
            name=row.name,
            currency=row.currency,
            timezone=row.timezone,
            locale=row.locale,
            revision_id=row.revision_id,
            document=doc.export(),
        )

    return rt.read(go)


@router.get("/{programme}/stores", dependencies=[needs(P.PROGRAMMES_READ)])
def list_stores(rt: Rt, who: Who, programme: str, window: WindowIn) -> Page[StoreRead]:
    def go(uow: UnitOfWork) -> list[StoreRead]:
        pid = programme_id_for(uow, who, programme)
        ids = store_ids(uow, pid)
        return [
            StoreRead(id=ids[s.key], key=s.key, name=s.name, channel=s.channel)
            for s in load_programme(uow, pid).document.stores
            if s.key in ids
        ]

    return window.of(rt.read(go))


@router.get("/{programme}/rewards", dependencies=[needs(P.REWARDS_READ)], tags=["rewards"])
def list_catalogue(rt: Rt, who: Who, programme: str, window: WindowIn) -> Page[RewardRead]:
    """The rewards on offer now (paged in id order; sort by ``cost`` on your side)."""

    def go(uow: UnitOfWork) -> list[RewardRead]:
        pid = programme_id_for(uow, who, programme)
        currency = load_programme(uow, pid).currency
        return [RewardRead.of(r, currency) for r in list_rewards(uow, programme_id=pid)]

    return window.of(rt.read(go))
