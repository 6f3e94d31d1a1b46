"""Tiers: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TierSettings(BaseModel):
    """The programme's tiers and how members qualify for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
