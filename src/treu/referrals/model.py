"""Referrals: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ReferralSettings(BaseModel):
    """The referral programme."""

    model_config = ConfigDict(extra="forbid", frozen=True)
