"""The console's dashboard and audit log: ``/console/<tenant>/<programme>/dashboard``, ``…/audit``.

The dashboard shows the programme's KPIs (``treu.analytics``, docs/kpis.md) for a run of
calendar periods in programme time — month, quarter or year — with tiles for the latest period
and charts over all of them. The charts are SVG drawn on the server by pygal and embedded as
images (``data:`` URIs, so the pages' Content-Security-Policy stays as strict as it is): no
JavaScript at all, nothing to build. Every chart is a figure with a caption and the same numbers
as a table, which is what a screen reader reads (docs/web.md).

Owners and managers see both pages (``reports:read``); a cashier gets a 403.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

import pygal
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pygal.style import Style

from treu.analytics.model import KpiSet, to_decimal
from treu.analytics.periods import PeriodUnit, default_range
from treu.analytics.service import KpiReport, programme_kpis, store_keys
from treu.audit.model import AuditEntry
from treu.audit.service import actor_names, list_actions
from treu.auth.model import Permission
from treu.ledger.model import start_of_day
from treu.storage.uow import UnitOfWork
from treu.web.console import InProgramme
from treu.web.i18n import Formats

router = APIRouter(prefix="/console/{tenant}", include_in_schema=False)

UNITS = (PeriodUnit.MONTH, PeriodUnit.QUARTER, PeriodUnit.YEAR)
DEFAULT_COUNT = {PeriodUnit.MONTH: 12, PeriodUnit.QUARTER: 8, PeriodUnit.YEAR: 5}
MAX_COUNT = 36
AUDIT_PAGE = 50


# --- what a tile and a chart show ---------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One KPI of the dashboard: its name in ``KpiSet``, how it reads, how it is charted."""

    key: str
    label: str  # English msgid, translated when shown
    kind: str  # count, points, money, rate

    def raw(self, kpi: KpiSet) -> Any:
        return kpi.value(self.key)

    def number(self, kpi: KpiSet) -> float | None:
        """The value as a chart plots it (percent for rates)."""
        value = self.raw(kpi)
        if value is None:
            return None
        if self.kind == "rate":
            return float(value * 100)
        return float(value)

    def text(self, kpi: KpiSet, fmt: Formats) -> str:
        return show(self.kind, self.raw(kpi), fmt)


def show(kind: str, value: Any, fmt: Formats) -> str:
    """A value as the page's language writes it; ``–`` where it cannot be computed."""
    if value is None:
        return "–"
    if kind == "rate":
        return percent(to_decimal(Fraction(value) * 100, 1), fmt)
    if kind == "money":
        return fmt.money(Decimal(value).quantize(Decimal("0.01")))
    if kind == "points":
        return fmt.points(int(value))
    return fmt.number(int(value))


def percent(value: Decimal, fmt: Formats) -> str:
    """``12,5 %`` with one decimal always (Babel's own percent pattern rounds to whole ones)."""
    return f"{format_decimal(value, format='#,##0.0', locale=fmt.lang)}\xa0%"


def _(message: str) -> str:
    """Marks a msgid for extraction; translated when shown (``fmt.gettext``)."""
    return message


MEMBERS = Measure("members", _("Members"), "count")
ACTIVE = Measure("active_members", _("Active members"), "count")
ISSUED = Measure("points_issued", _("Points issued"), "points")
REDEEMED = Measure("points_redeemed", _("Points redeemed"), "points")
EXPIRED = Measure("points_expired", _("Points expired"), "points")
LIABILITY = Measure("liability", _("Liability"), "money")
REDEMPTION = Measure("redemption_rate", _("Redemption rate"), "rate")
REPEAT = Measure("repeat_purchase_rate", _("Repeat purchase rate"), "rate")
AOV_MEMBERS = Measure("aov_members", _("Average order, members"), "money")
AOV_GUESTS = Measure("aov_guests", _("Average order, non-members"), "money")

TILES = (
    MEMBERS,
    ACTIVE,
    ISSUED,
    REDEEMED,
    EXPIRED,
    LIABILITY,
    REDEMPTION,
    REPEAT,
    AOV_MEMBERS,
    AOV_GUESTS,
)


@dataclass(frozen=True)
class ChartDef:
    key: str
    title: str  # msgid
    kind: str  # line | bar
    measures: tuple[Measure, ...]


CHARTS = (
    ChartDef("members", _("Members and active members"), "line", (MEMBERS, ACTIVE)),
    ChartDef(
        "points", _("Points issued, redeemed and expired"), "bar", (ISSUED, REDEEMED, EXPIRED)
    ),
    ChartDef("liability", _("Liability at the end of each period"), "line", (LIABILITY,)),
    ChartDef("rates", _("Redemption rate and repeat purchase rate"), "line", (REDEMPTION, REPEAT)),
    ChartDef(
        "aov", _("Average order value, members and non-members"), "bar", (AOV_MEMBERS, AOV_GUESTS)
    ),
)


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: str
    previous: str | None  # the period before, for comparison


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    image: str  # a data: URI of the SVG
    alt: str
    columns: list[str]  # the measures' labels
    rows: list[tuple[str, list[str]]]  # period label, values


# --- the dashboard ---------------------------------------------------------------------------


@router.get("/{programme}/dashboard")
def dashboard(
    c: InProgramme,
    unit: Annotated[str, Query(max_length=10)] = "month",
    count: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    store: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    c.need(Permission.REPORTS_READ)
    programme = c.programme
    assert programme is not None
    chosen = PeriodUnit(unit) if unit in {u.value for u in UNITS} else PeriodUnit.MONTH
    periods = min(int(count), MAX_COUNT) if count.isdigit() and int(count) > 0 else 0
    periods = periods or DEFAULT_COUNT[chosen]
    today = c.rt.clock.now().astimezone(programme.tz).date()
    day = _day(until)
    last = day or today
    first, end = default_range(chosen, last, periods)

    def go(uow: UnitOfWork) -> tuple[list[str], KpiReport]:
        stores = store_keys(uow, programme.id)
        scoped = store if store in stores else None
        report = programme_kpis(
            uow, programme_id=programme.id, unit=chosen, first=first, end=end, store=scoped
        )
        return stores, report

    stores, report = c.rt.read(go)
    sets = report.splits.get(f"store:{store}", report.programme_sets)
    fmt = c.fmt
    latest = sets[-1]
    before = sets[-2] if len(sets) > 1 else None
    tiles = [
        Tile(
            m.key,
            fmt.gettext(m.label),
            m.text(latest, fmt),
            m.text(before, fmt) if before else None,
        )
        for m in TILES
    ]
    labels = [period_label(chosen, s.first, fmt.lang) for s in sets]
    charts = [chart(d, sets, labels, fmt) for d in CHARTS]
    return c.render(
        "console/dashboard.html",
        section="dashboard",
        unit=chosen.value,
        units=[u.value for u in UNITS],
        count=periods,
        max_count=MAX_COUNT,
        until=day.isoformat() if day else "",
        store=store if store in stores else "",
        stores=stores,
        latest_label=labels[-1],
        previous_label=labels[-2] if len(labels) > 1 else None,
        tiles=tiles,
        charts=charts,
        span=(first, end),
    )


def _day(text: str) -> date | None:
    """A day typed into a form (``2025-05-31``); empty or nonsense is no day."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if date(1900, 1, 1) < day < date(9000, 1, 1) else None


def period_label(unit: PeriodUnit, first: date, lang: str) -> str:
    """``Nov. 2026``, ``Q4 2026``, ``2026`` in the page's language."""
    if unit is PeriodUnit.MONTH:
        return str(format_date(first, "MMM y", locale=lang))
    if unit is PeriodUnit.QUARTER:
        return str(format_date(first, "QQQ y", locale=lang))
    return str(first.year)


STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b1f23",
    foreground_strong="#1b1f23",
    foreground_subtle="#d5d0c5",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=15,
    major_label_font_size=15,
    legend_font_size=16,
    value_font_size=14,
    tooltip_font_size=14,
    colors=("#0b5d4b", "#c77d1a", "#a4161a"),
)


def chart(d: ChartDef, sets: Sequence[KpiSet], labels: list[str], fmt: Formats) -> Chart:
    """The chart as an SVG image, and the same numbers as table rows."""
    kind = d.measures[0].kind
    config: dict[str, Any] = {
        "style": STYLE,
        "js": [],  # no script: the chart is an image
        "disable_xml_declaration": True,
        "width": 600,
        "height": 340,
        "legend_at_bottom": True,
        "show_legend": len(d.measures) > 1,
        "x_label_rotation": 0 if len(labels) <= 6 else 35,
        "truncate_label": -1,
        "value_formatter": _axis_formatter(kind, fmt),
        "margin": 12,
        "include_x_axis": True,
        "print_values": False,
    }
    drawing = pygal.Bar(**config) if d.kind == "bar" else pygal.Line(**config)
    drawing.x_labels = labels
    for m in d.measures:
        drawing.add(fmt.gettext(m.label), [m.number(s) for s in sets])
    svg = drawing.render(is_unicode=True)
    image = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
    title = fmt.gettext(d.title)
    alt = fmt.gettext(
        "Chart: %(title)s, %(first)s to %(last)s. The table below has the values."
    ) % {
        "title": title,
        "first": labels[0],
        "last": labels[-1],
    }
    return Chart(
        d.key,
        title,
        image,
        alt,
        [fmt.gettext(m.label) for m in d.measures],
        [
            (label, [m.text(s, fmt) for m in d.measures])
            for label, s in zip(labels, sets, strict=True)
        ],
    )


def _axis_formatter(kind: str, fmt: Formats) -> Callable[[float | None], str]:
    def formatted(value: float | None) -> str:
        if value is None:
            return "–"
        if kind == "rate":
            return percent(Decimal(str(round(value, 1))), fmt)
        if kind == "money":
            return fmt.money(Decimal(str(round(value, 2))))
        return fmt.number(Decimal(str(round(value))))

    return formatted


# --- the audit log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLine:
    entry: AuditEntry
    when: str
    action: str
    actor: str
    details: str


ACTION_NAMES = {
    "member.adjusted": _("Points adjusted"),
    "member.blocked": _("Member blocked"),
    "member.unblocked": _("Member unblocked"),
    "programme.applied": _("Programme document applied"),
    "purchase.recorded": _("Purchase recorded"),
    "reward.redeemed": _("Reward redeemed"),
    "voucher.consumed": _("Voucher used"),
    "members.merged": _("Members merged"),
    "referral.approved": _("Referral approved"),
    "referral.rejected": _("Referral rejected"),
    "member.exported": _("Member data exported"),
    "member.erased": _("Member deleted"),
}


DETAIL_NAMES = {
    "points": _("Points"),
    "reason": _("Reason"),
    "receipt": _("Receipt number"),
    "total": _("Amount"),
    "code": _("Voucher code"),
    "reward": _("Reward"),
    "key": _("Programme"),
    "merged": _("Merged member"),
    "via": _("Via"),
}


def _details(details: dict[str, Any], fmt: Formats) -> str:
    """``Punkte: 25, Grund: Kaffee verschüttet``: known keys in the page's language."""
    return ", ".join(
        f"{fmt.gettext(DETAIL_NAMES[k]) if k in DETAIL_NAMES else k}: {v}"
        for k, v in details.items()
    )


@router.get("/{programme}/audit")
def audit(
    c: InProgramme,
    before: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str, Query(max_length=80)] = "",
    member: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    c.need(Permission.REPORTS_READ)
    programme = c.programme
    assert programme is not None
    first_day = _day(since)
    from_instant = start_of_day(first_day, programme.tz) if first_day else None

    def go(uow: UnitOfWork) -> tuple[list[AuditEntry], dict[str, str]]:
        entries = list_actions(
            uow,
            tenant_id=c.tenant_id,
            programme_id=programme.id,
            actor=actor or None,
            subject=member or None,
            since=from_instant,
            after=before,
            limit=AUDIT_PAGE + 1,
        )
        return entries, actor_names(uow, tenant_id=c.tenant_id)

    entries, names = c.rt.read(go)
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    fmt = c.fmt
    lines = [
        AuditLine(
            e,
            str(format_datetime(e.at, "medium", tzinfo=fmt.tz, locale=fmt.lang)),
            fmt.gettext(ACTION_NAMES[e.action]) if e.action in ACTION_NAMES else e.action,
            names.get(e.actor, e.actor),
            _details(e.details, fmt),
        )
        for e in entries
    ]
    return c.render(
        "console/audit.html",
        section="audit",
        lines=lines,
        next_before=entries[-1].id if more and entries else None,
        actor=actor,
        member=member,
        since=first_day.isoformat() if first_day else "",
        actors=sorted(names.items(), key=lambda item: item[1]),
    )
