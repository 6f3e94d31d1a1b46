"""Languages of the portal and console: German and English, from Babel message catalogues.

The catalogue is ``locale/de/LC_MESSAGES/messages.po`` (English msgids, German msgstrs), read
with Babel when first needed; no compiled ``.mo`` file is kept in the repository, so there is
no build step and no binary to go stale. English needs no catalogue: the msgids are English.

The language of a page is, in this order: the one the visitor switched to (a cookie), the
member's own locale, the programme's locale; anything but German is shown in English.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import cache
from importlib import resources
from io import BytesIO

from babel.dates import format_date, format_datetime, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

from treu.money import from_minor

LANGUAGES = ("de", "en")
DEFAULT = "en"
# What a point is called when the programme keeps the default name: the UI's own word, with
# its singular (a programme's ``point_name`` is one word for every count).
_GENERIC_POINT_NAMES = {"points", "point", "punkte", "punkt"}


def language_of(*candidates: str | None) -> str:
    """The first candidate that names a language we have (``de-AT`` is German)."""
    for candidate in candidates:
        if candidate:
            lang = candidate.replace("_", "-").split("-")[0].lower()
            if lang in LANGUAGES:
                return lang
    return DEFAULT


@cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == DEFAULT:
        return gettext.NullTranslations()
    po = resources.files("treu.web").joinpath("locale", lang, "LC_MESSAGES", "messages.po")
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True)
class Formats:
    """Numbers, money, points and dates in one language and the programme's timezone."""

    lang: str
    tz: tzinfo
    currency: str
    point_name: str = "points"

    @property
    def _t(self) -> gettext.NullTranslations:
        return translations(self.lang)

    def number(self, value: int | Decimal) -> str:
        return str(format_decimal(value, locale=self.lang))

    def money(self, amount: Decimal, currency: str | None = None) -> str:
        return str(format_currency(amount, currency or self.currency, locale=self.lang))

    def minor(self, minor: int, currency: str | None = None) -> str:
        currency = currency or self.currency
        return self.money(from_minor(minor, currency), currency)

    def points(self, n: int) -> str:
        """``12 Punkte``, ``1 Punkt``; a programme's own word (``Bohnen``) as it is."""
        if self.point_name.lower() in _GENERIC_POINT_NAMES:
            return self._t.ngettext("%(n)s point", "%(n)s points", abs(n)) % {"n": self.number(n)}
        return f"{self.number(n)} {self.point_name}"

    def day(self, value: datetime | date, *, today: date | None = None) -> str:
        """``3. März`` (this year) or ``3. März 2025``."""
        local = value.astimezone(self.tz).date() if isinstance(value, datetime) else value
        if today is not None and local.year == today.year:
            return str(format_skeleton("MMMMd", local, locale=self.lang))
        return str(format_date(local, "long", locale=self.lang))

    def moment(self, value: datetime) -> str:
        return str(format_datetime(value, "medium", tzinfo=self.tz, locale=self.lang))

    def gettext(self, message: str) -> str:
        return self._t.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)
