"""Campaign mechanics beyond the rules: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CampaignSettings(BaseModel):
    """Welcome gift, launch bonus, anniversary and surprise-and-delight awards."""

    model_config = ConfigDict(extra="forbid", frozen=True)
