"""Automations: the programme's automations with their run counts, the run log (done, held
out, skipped, pending), and the events a shop sends about a member for automations to act on.

The automations themselves are part of the programme document (``automations:``); acting on
events is ``treu worker``'s business (or the nightly run's), never a request's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from treu.api.deps import Rt, Who, member_for, needs, programme_id_for
from treu.api.pagination import Limit, StartingAfter, page
from treu.api.queries import programmes_of
from treu.api.schemas import Page
from treu.api.schemas_automations import (
    AutomationRead,
    AutomationRunRead,
    MemberEventCreate,
    MemberEventRead,
)
from treu.auth.model import Permission as P
from treu.automations.model import Outcome, TriggerEvent
from treu.automations.service import (
    automation_summaries,
    get_automation,
    list_runs,
    record_shop_event,
)
from treu.errors import ErrorCode, InvalidInput
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/automations", tags=["automations"])
member_router = APIRouter(prefix="/v1/members/{member_id}", tags=["automations"])

ProgrammeQuery = Annotated[
    str | None,
    Query(max_length=64, description="programme key (may be left out if the tenant has one)"),
]


def _programme(uow: UnitOfWork, who: Who, key: str | None) -> Programme:
    if key is not None:
        return load_programme(uow, programme_id_for(uow, who, key))
    if who.programme_id is not None:
        return load_programme(uow, who.programme_id)
    found = programmes_of(uow, tenant_id=who.tenant_id, limit=2)
    if len(found) != 1:
        message = "name the programme: the tenant has several" if found else "no programme yet"
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR, message, errors=[{"path": "programme", "message": message}]
        )
    return load_programme(uow, found[0].id)


@router.get("", dependencies=[needs(P.PROGRAMMES_READ)])
def list_automations(rt: Rt, who: Who, programme: ProgrammeQuery = None) -> Page[AutomationRead]:
    """The programme's automations as its document defines them, each with its runs so far
    by outcome (``held_out``: the control group)."""

    def go(uow: UnitOfWork) -> list[AutomationRead]:
        found = automation_summaries(uow, _programme(uow, who, programme))
        return [AutomationRead.of(s) for s in found]

    data = rt.read(go)
    return Page[AutomationRead](data=data, has_more=False, next_starting_after=None)


@router.get("/{automation}/runs", dependencies=[needs(P.REPORTS_READ)])
def runs(
    rt: Rt,
    who: Who,
    automation: str,
    programme: ProgrammeQuery = None,
    outcome: Annotated[Outcome | None, Query(description="only runs with this outcome")] = None,
    member_id: Annotated[str | None, Query(max_length=64, description="only this member")] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[AutomationRunRead]:
    """The runs of one automation, oldest first: one per member and occasion, with what came
    of it (``done``, ``held_out``, ``skipped`` and why, ``pending`` until its delay is over)."""

    def go(uow: UnitOfWork) -> list[AutomationRunRead]:
        found = _programme(uow, who, programme)
        get_automation(found, automation)
        listed = list_runs(
            uow,
            found,
            automation=automation,
            outcome=outcome,
            member_id=member_id,
            starting_after=starting_after,
            limit=limit + 1,
        )
        return [AutomationRunRead.of(r) for r in listed]

    return page(rt.read(go), limit=limit, id_of=lambda r: r.id)


@member_router.post("/events", status_code=202, dependencies=[needs(P.ACTIVITIES_WRITE)])
def member_event(rt: Rt, who: Who, member_id: str, body: MemberEventCreate) -> MemberEventRead:
    """The shop tells Treu about the member: ``cart.abandoned``, ``need.recurring`` (time to
    buy again), ``product.new`` (of a brand or category they like). Automations with that
    trigger act on it (in the worker); the same ``id`` again changes nothing."""

    def go(uow: UnitOfWork) -> MemberEventRead:
        member = member_for(uow, who, member_id)
        recorded = record_shop_event(
            uow,
            tenant_id=who.tenant_id,
            programme_id=member.programme_id,
            member_id=member.id,
            type=TriggerEvent(body.type),
            id=body.id,
            data=body.data,
        )
        return MemberEventRead.of(recorded)

    return rt.write(go)
