"""Segments over HTTP: definitions with sizes, masked member samples, uploads, recomputes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from treu.segments.service import (
    AdHocResult,
    MemberPreview,
    Recomputed,
    SegmentView,
    UploadReport,
)


class SegmentRead(BaseModel):
    object: Literal["segment"] = "segment"
    key: str
    name: str
    description: str | None
    built_in: bool = Field(description="new, active, inactive or premium (perhaps overridden)")
    static: bool = Field(description="members come from an uploaded list")
    definition: dict[str, Any] = Field(description="as in the programme document")
    size: int = Field(description="members as of the last recompute")

    @classmethod
    def of(cls, view: SegmentView) -> SegmentRead:
        d = view.definition
        return cls(
            key=d.key,
            name=d.name,
            description=d.description,
            built_in=view.built_in,
            static=d.static,
            definition=d.model_dump(mode="json", by_alias=True, exclude_none=True),
            size=view.size,
        )


class SegmentMemberRead(BaseModel):
    object: Literal["segment_member"] = "segment_member"
    id: str = Field(description="the member's id")
    name: str | None = Field(description="masked: M** S*****")
    email: str | None = Field(description="masked: m**@example.org")
    entered_at: datetime | None = Field(description="when the member entered (none: a preview)")

    @classmethod
    def of(cls, m: MemberPreview) -> SegmentMemberRead:
        return cls(id=m.id, name=m.name, email=m.email, entered_at=m.entered_at)


class SegmentPreviewRead(BaseModel):
    object: Literal["segment_preview"] = "segment_preview"
    size: int = Field(description="members the definition matches now")
    sample: list[SegmentMemberRead] = Field(description="the first members, in id order")

    @classmethod
    def of(cls, result: AdHocResult) -> SegmentPreviewRead:
        return cls(size=result.size, sample=[SegmentMemberRead.of(m) for m in result.sample])


class RecomputeRead(BaseModel):
    object: Literal["segment_recompute"] = "segment_recompute"
    segment: str
    entered: int = Field(description="members who entered (one segment.entered event each)")
    left: int = Field(description="members who left (one segment.left event each)")
    size: int

    @classmethod
    def of(cls, segment: str, done: Recomputed) -> RecomputeRead:
        return cls(segment=segment, entered=done.entered, left=done.left, size=done.sizes[segment])


class RejectedRowRead(BaseModel):
    line: int = Field(description="line of the CSV (1 is the first)")
    reference: str
    code: str = Field(description="member_not_found or invalid_identifier")
    message: str


class UploadRead(BaseModel):
    object: Literal["segment_upload"] = "segment_upload"
    segment: str
    rows: int = Field(description="member references read")
    members: int = Field(description="distinct members now on the list")
    rejected: list[RejectedRowRead] = Field(description="rows naming no member: not stored")
    entered: int
    left: int

    @classmethod
    def of(cls, report: UploadReport) -> UploadRead:
        return cls(
            segment=report.segment,
            rows=report.rows,
            members=report.members,
            rejected=[RejectedRowRead(**r.__dict__) for r in report.rejected],
            entered=report.entered,
            left=report.left,
        )
