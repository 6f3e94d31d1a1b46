"""The templates a programme can send: the built-in ones (package data, German and English) and
the programme document's ``templates:``, which override built-ins of the same key."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from treu.errors import ErrorCode, InvalidInput
from treu.messaging.model import TemplateDef

BUILT_IN_KEYS = (
    "welcome",
    "login_code",
    "optin_confirm",
    "so_close_stamps",
    "so_close_points",
    "points_expiring",
    "birthday",
    "tier_upgraded",
    "tier_will_downgrade",
    "win_back",
    "statement",
    "voucher_issued",
    "anniversary",
)


@cache
def built_in_templates() -> dict[str, TemplateDef]:
    folder = resources.files("treu.messaging").joinpath("templates")
    found = {}
    for key in BUILT_IN_KEYS:
        data = yaml.safe_load(folder.joinpath(f"{key}.yaml").read_text("utf-8"))
        found[key] = TemplateDef.model_validate(data)
    return found


def templates_of(programme_templates: list[TemplateDef]) -> dict[str, TemplateDef]:
    """Every template the programme can send, by key (its own win over built-ins)."""
    return {**built_in_templates(), **{t.key: t for t in programme_templates}}


def find_template(programme_templates: list[TemplateDef], key: str) -> TemplateDef:
    found = templates_of(programme_templates).get(key)
    if found is None:
        raise InvalidInput(ErrorCode.UNKNOWN_TEMPLATE, f"no template {key!r}")
    return found
