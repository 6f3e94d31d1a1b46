"""Reading form posts.

Routes take the parsed form as a dependency rather than FastAPI's ``Form()`` parameters:
the application's ``no_nul_characters`` check reads the raw body first, and ``Form()``
parameters would have consumed it before that check runs. Read here, after it, the body is
parsed from the cached bytes. A NUL character in a field is refused like everywhere else
(PostgreSQL cannot store it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData, UploadFile

from treu.errors import ErrorCode, InvalidInput

MAX_FIELD = 200_000  # characters: a programme document pasted into a text area fits


@dataclass(frozen=True)
class Fields:
    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def text(self, name: str, limit: int = 320) -> str:
        return self.get(name).strip()[:limit]


async def form_fields(request: Request) -> AsyncIterator[Fields]:
    form = await request.form()
    try:
        yield _fields(form)
    finally:
        await form.close()  # uploaded files are spooled to temporary files


def _fields(form: FormData) -> Fields:
    values: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            if "\x00" in key or "\x00" in value or len(value) > MAX_FIELD:
                raise InvalidInput(
                    ErrorCode.VALIDATION_ERROR,
                    f"{key}: NUL characters or more than {MAX_FIELD} characters",
                    errors=[{"path": key, "message": "not accepted"}],
                )
            values.setdefault(key, value)
        elif isinstance(value, UploadFile):
            files.setdefault(key, value)
    return Fields(values, files)


Form = Annotated[Fields, Depends(form_fields)]
