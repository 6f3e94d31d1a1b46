"""Segments: definitions (built-in and the programme's) with sizes, masked member samples,
on-demand recomputes, static uploads (text/csv) and ad-hoc previews."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from treu.api.deps import Rt, Who, needs, programme_id_for
from treu.api.pagination import Limit, StartingAfter, page
from treu.api.schemas import Page
from treu.api.schemas_segments import (
    RecomputeRead,
    SegmentMemberRead,
    SegmentPreviewRead,
    SegmentRead,
    UploadRead,
)
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.errors import ErrorCode, InvalidInput
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.segments import service as segments
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/programmes/{programme}/segments", tags=["segments"])

MAX_UPLOAD = 5_000_000  # bytes: a few hundred thousand references


def _programme(uow: UnitOfWork, who: Principal, key: str) -> Programme:
    return load_programme(uow, programme_id_for(uow, who, key))


@router.get("", dependencies=[needs(P.PROGRAMMES_READ)])
def list_segments(rt: Rt, who: Who, programme: str) -> list[SegmentRead]:
    """Every segment: the built-ins (``new``, ``active``, ``inactive``, ``premium``, or the
    programme's definitions of those keys), then the programme's own, with their sizes as of
    the last recompute."""

    def go(uow: UnitOfWork) -> list[SegmentRead]:
        found = segments.list_segments(uow, _programme(uow, who, programme))
        return [SegmentRead.of(v) for v in found]

    return rt.read(go)


@router.post("/preview", dependencies=[needs(P.MEMBERS_LIST)])
def preview(
    rt: Rt,
    who: Who,
    programme: str,
    definition: Annotated[
        dict[str, Any],
        Body(
            description="a segment definition as in the programme document; key and name may "
            "be left out",
            examples=[{"all": [{"purchases": {"min": 4, "within_days": 30}}]}],
        ),
    ],
) -> SegmentPreviewRead:
    """Evaluate a definition that is not stored, as of now: how many members it matches and
    the first ten (masked). Stores nothing, publishes nothing (422 ``invalid_segment``)."""

    def go(uow: UnitOfWork) -> SegmentPreviewRead:
        found = segments.preview_definition(uow, _programme(uow, who, programme), definition)
        return SegmentPreviewRead.of(found)

    return rt.read(go)


@router.get("/{segment}", dependencies=[needs(P.PROGRAMMES_READ)])
def get_segment(rt: Rt, who: Who, programme: str, segment: str) -> SegmentRead:
    """One segment's definition and size (404 ``unknown_segment``)."""

    def go(uow: UnitOfWork) -> SegmentRead:
        return SegmentRead.of(segments.get_segment(uow, _programme(uow, who, programme), segment))

    return rt.read(go)


@router.get("/{segment}/members", dependencies=[needs(P.MEMBERS_LIST)])
def list_segment_members(
    rt: Rt,
    who: Who,
    programme: str,
    segment: str,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[SegmentMemberRead]:
    """The segment's members as of the last recompute, in id order, names and e-mail
    addresses masked."""

    def go(uow: UnitOfWork) -> list[SegmentMemberRead]:
        found = segments.preview_members(
            uow,
            _programme(uow, who, programme),
            segment,
            limit=limit + 1,
            starting_after=starting_after,
        )
        return [SegmentMemberRead.of(m) for m in found]

    return page(rt.read(go), limit=limit, id_of=lambda m: m.id)


@router.post("/{segment}/recompute", dependencies=[needs(P.JOBS_RUN)])
def recompute(rt: Rt, who: Who, programme: str, segment: str) -> RecomputeRead:
    """Recompute one segment now (the nightly run does every segment): members who entered or
    left are stored and announced as ``segment.entered`` / ``segment.left``; a second call
    changes nothing."""

    def go(uow: UnitOfWork) -> RecomputeRead:
        programme_id = programme_id_for(uow, who, programme)
        done = segments.recompute_segment(uow, programme_id=programme_id, segment=segment)
        return RecomputeRead.of(segment, done)

    return rt.write(go)


@dataclass(frozen=True)
class RawBody:
    media: str
    data: bytes

    def csv_text(self) -> str:
        """The body as text: ``text/csv`` (or ``text/plain``) in UTF-8."""
        if self.media not in ("text/csv", "text/plain"):
            raise _bad_body(f"content type {self.media or 'none'}, not text/csv")
        if len(self.data) > MAX_UPLOAD:
            raise _bad_body(f"larger than {MAX_UPLOAD} bytes")
        try:
            return self.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _bad_body("not UTF-8 text") from None


def _bad_body(message: str) -> InvalidInput:
    return InvalidInput(
        ErrorCode.INVALID_SEGMENT,
        f"send the list as UTF-8 text/csv: {message}",
        errors=[{"path": "(body)", "message": message}],
    )


async def raw_body(request: Request) -> RawBody:
    # Read here (the body is async), judged in the route: after the programme is found, so
    # another tenant's programme is "not found" whatever the body.
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return RawBody(media, await request.body())


_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "email\nmia@example.org\nben@example.org\n",
            }
        },
    }
}


@router.put(
    "/{segment}/members",
    dependencies=[needs(P.PROGRAMMES_WRITE)],
    openapi_extra=_CSV_BODY,
)
def upload(
    rt: Rt,
    who: Who,
    programme: str,
    segment: str,
    body: Annotated[RawBody, Depends(raw_body)],
) -> UploadRead:
    """Replace the list of a static segment (``static: true``) with a CSV of member references
    (a header ``email``, ``phone``, ``card``, ``external`` or ``reference``; or bare ``mbr_…`` /
    ``kind:value`` lines), then recompute it. Rows naming no member are reported under
    ``rejected`` and not stored (409 ``segment_not_static`` for a segment defined by rules)."""

    def go(uow: UnitOfWork) -> UploadRead:
        found = _programme(uow, who, programme)
        return UploadRead.of(segments.upload_static_csv(uow, found, segment, body.csv_text()))

    return rt.write(go)
