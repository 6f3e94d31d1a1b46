"""Paid memberships: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PlanDef(BaseModel):
    """One membership plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)
