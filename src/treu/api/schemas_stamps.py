"""Stamp cards over HTTP: a member's cards, as the till, the portal and the back office show
them ("Kaffeekarte 3 of 10")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from treu.stamps.service import StampCardView


class StampCardRead(BaseModel):
    object: Literal["stamp_card"] = "stamp_card"
    card: str = Field(description="card type key from the programme document")
    name: str
    number: int = Field(description="1 for the member's first card of this type, then 2, ...")
    stamps: int
    stamps_needed: int
    status: str = Field(description="open (the current card), completed, expired or cancelled")
    display: str = Field(description="e.g. '3/10'")
    reward: str = Field(description="reward key of the voucher a full card gives")
    voucher_code: str | None = Field(default=None, description="completed cards: the voucher")
    voucher_status: str | None = None
    first_stamp_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def of(cls, v: StampCardView) -> StampCardRead:
        return cls(
            card=v.card_key,
            name=v.name,
            number=v.number,
            stamps=v.stamps,
            stamps_needed=v.stamps_needed,
            status=v.status,
            display=f"{v.stamps}/{v.stamps_needed}",
            reward=v.reward,
            voucher_code=v.voucher_code,
            voucher_status=v.voucher_status,
            first_stamp_at=v.first_stamp_at,
            completed_at=v.completed_at,
        )


class StampCardsRead(BaseModel):
    """The member's current card of every type, and the cards they have completed."""

    object: Literal["stamp_cards"] = "stamp_cards"
    member_id: str
    current: list[StampCardRead]
    completed: list[StampCardRead]

    @classmethod
    def of(cls, member_id: str, cards: list[StampCardView]) -> StampCardsRead:
        return cls(
            member_id=member_id,
            current=[StampCardRead.of(c) for c in cards if c.status == "open"],
            completed=[StampCardRead.of(c) for c in cards if c.status == "completed"],
        )
