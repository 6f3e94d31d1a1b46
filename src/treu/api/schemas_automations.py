"""Automations over HTTP: definitions with their run counts, the run log, shop events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from treu.automations.model import Outcome
from treu.automations.service import AutomationSummary, Run, ShopEvent

MAX_DATA = 16_000


class RunCounts(BaseModel):
    pending: int
    done: int
    held_out: int
    skipped: int


class AutomationRead(BaseModel):
    object: Literal["automation"] = "automation"
    key: str
    name: str
    enabled: bool
    trigger: dict[str, Any] = Field(description="as in the programme document")
    audience: dict[str, Any]
    action: dict[str, Any]
    delay: str | None
    control_group: int = Field(description="percent of the audience held out")
    runs: RunCounts = Field(description="runs so far, by outcome")

    @classmethod
    def of(cls, s: AutomationSummary) -> AutomationRead:
        d = s.definition
        return cls(
            key=d.key,
            name=d.name,
            enabled=d.enabled,
            trigger=d.trigger.model_dump(mode="json", exclude_defaults=True),
            audience=d.audience.model_dump(mode="json"),
            action=d.action.model_dump(mode="json"),
            delay=d.delay,
            control_group=d.control_group,
            runs=RunCounts(**{o.value: n for o, n in s.runs.items()}),
        )


class AutomationRunRead(BaseModel):
    object: Literal["automation_run"] = "automation_run"
    id: str
    automation: str
    member_id: str
    occasion: str = Field(description="at most one run per automation, member and occasion")
    trigger: str
    outcome: Outcome
    reason: str | None = Field(description="why skipped or held out; what was done")
    event_id: str | None = Field(description="the outbox event that triggered it")
    due_at: datetime = Field(description="when the action is (or was) due: after any delay")
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, r: Run) -> AutomationRunRead:
        return cls(
            id=r.id,
            automation=r.automation,
            member_id=r.member_id,
            occasion=r.occasion,
            trigger=r.trigger,
            outcome=r.outcome,
            reason=r.reason,
            event_id=r.event_id,
            due_at=r.due_at,
            created_at=r.created_at,
            completed_at=r.completed_at,
        )


class MemberEventCreate(BaseModel):
    """Something the shop noticed about the member, for automations to act on."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["cart.abandoned", "need.recurring", "product.new"]
    id: str = Field(
        min_length=1, max_length=128, description="the shop's id of the event: sent again, ignored"
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="template variables (as `data`): items, cart URL, product, brand …",
    )

    @field_validator("data")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > MAX_DATA:
            raise ValueError(f"at most {MAX_DATA} characters as JSON")
        return value


class MemberEventRead(BaseModel):
    object: Literal["member_event"] = "member_event"
    event_id: str
    type: str
    id: str
    created: bool = Field(description="false: this id was sent before, nothing new was stored")

    @classmethod
    def of(cls, e: ShopEvent) -> MemberEventRead:
        return cls(event_id=e.event_id, type=e.type, id=e.id, created=e.created)
