"""Jinja2 templates, one environment per language (the catalogue is installed into it)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from treu.web.i18n import translations
from treu.web.security import SECURITY_HEADERS


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=PackageLoader("treu.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def render(template: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = environment(lang).get_template(template).render(lang=lang, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
