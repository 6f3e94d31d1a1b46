"""Stamp cards: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StampCardDef(BaseModel):
    """One stamp card type."""

    model_config = ConfigDict(extra="forbid", frozen=True)
