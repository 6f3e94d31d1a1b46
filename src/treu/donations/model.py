"""Donations: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CharityDef(BaseModel):
    """A charity members can donate to."""

    model_config = ConfigDict(extra="forbid", frozen=True)
