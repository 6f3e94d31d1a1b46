"""The wallet: the pure part (programme document section, decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WalletSettings(BaseModel):
    """Cashback rules, gift cards and store credit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
