"""Uplift of an automation or campaign against its control group (pure).

Each run of an automation is one unit: a member it acted on (``done``, treated) or held out on
purpose (``held_out``, control). What follows a run is measured over the ``window`` after it:
did the member buy (purchase rate), how much did they pay (revenue per member), how many points
did they get (points cost per member). The uplift is treated minus control, each with an
interval:

* a difference of proportions: Newcombe's hybrid score interval (his method 10, from Wilson
  intervals of each group) — it keeps its coverage for small groups and rates near 0 or 1,
  where the Wald interval does not;
* a difference of means: Welch's t interval (unequal variances, Welch–Satterthwaite degrees of
  freedom), with ``scipy.stats.t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _z(confidence: float) -> float:
    from scipy import stats  # scipy.stats takes seconds to import: only when asked

    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of a proportion."""
    if n == 0:
        raise ValueError("a proportion of nothing")
    z, p = _z(confidence), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> Interval:
    """p1 − p2 with Newcombe's hybrid score interval."""
    a, b = wilson(x1, n1, confidence), wilson(x2, n2, confidence)
    d = a.estimate - b.estimate
    low = d - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    high = d + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Interval(d, low, high)


def welch(treated: np.ndarray, control: np.ndarray, confidence: float = 0.95) -> Interval | None:
    """mean(treated) − mean(control) with Welch's t interval; None with fewer than two in a
    group (no variance to go by)."""
    n1, n2 = len(treated), len(control)
    if n1 < 2 or n2 < 2:
        return None
    d = float(np.mean(treated) - np.mean(control))
    v1, v2 = float(np.var(treated, ddof=1)) / n1, float(np.var(control, ddof=1)) / n2
    se = math.sqrt(v1 + v2)
    if se == 0:
        return Interval(d, d, d)
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    from scipy import stats

    t = float(stats.t.ppf(0.5 + confidence / 2, df))
    return Interval(d, d - t * se, d + t * se)


@dataclass(frozen=True)
class Uplift:
    automation: str
    treated: int
    control: int
    purchase_rate_treated: float | None
    purchase_rate_control: float | None
    purchase_rate: Interval | None  # treated − control
    revenue_treated_minor: float | None  # per member
    revenue_control_minor: float | None
    revenue: Interval | None
    points_treated: float | None  # per member
    points_control: float | None
    points: Interval | None


RUNS = {"automation": pl.String, "member_id": pl.String, "outcome": pl.String, "at": pl.Datetime}


def outcomes(
    runs: pl.DataFrame,
    purchases: pl.DataFrame,
    points: pl.DataFrame,
    window: timedelta,
) -> pl.DataFrame:
    """Per run (``automation``, ``member_id``, ``outcome``, ``at``): ``bought`` (0/1),
    ``revenue_minor`` and ``points`` over ``[at, at + window)``. ``purchases``: ``member_id``,
    ``occurred_at``, ``paid_minor``; ``points``: ``member_id``, ``posted_at``, ``points``
    (signed: earned positive, taken back negative)."""
    numbered = runs.with_row_index("run")

    def within(events: pl.DataFrame, when: str, value: str, name: str) -> pl.DataFrame:
        return (
            numbered.select("run", "member_id", "at")
            .join(events, on="member_id", how="inner")
            .filter((pl.col(when) >= pl.col("at")) & (pl.col(when) < pl.col("at") + window))
            .group_by("run")
            .agg(pl.len().alias(f"{name}_n"), pl.col(value).sum().alias(name))
        )

    bought = within(purchases, "occurred_at", "paid_minor", "revenue_minor")
    given = within(points, "posted_at", "points", "points")
    return (
        numbered.join(bought, on="run", how="left")
        .join(given, on="run", how="left")
        .with_columns(
            (pl.col("revenue_minor_n").fill_null(0) > 0).cast(pl.Int64).alias("bought"),
            pl.col("revenue_minor").fill_null(0),
            pl.col("points").fill_null(0),
        )
        .select("automation", "member_id", "outcome", "at", "bought", "revenue_minor", "points")
    )


def uplift(measured: pl.DataFrame, automation: str, confidence: float = 0.95) -> Uplift:
    """Treated (``done``) against held out (``held_out``) for one automation's runs."""
    mine = measured.filter(pl.col("automation") == automation)
    treated = mine.filter(pl.col("outcome") == "done")
    control = mine.filter(pl.col("outcome") == "held_out")
    n1, n2 = treated.height, control.height

    def mean(frame: pl.DataFrame, column: str) -> float | None:
        return float(frame[column].mean()) if frame.height else None  # type: ignore[arg-type]

    def arr(frame: pl.DataFrame, column: str) -> np.ndarray:
        return frame[column].to_numpy().astype(np.float64)

    rate = None
    if n1 and n2:
        rate = newcombe(
            int(treated["bought"].sum()), n1, int(control["bought"].sum()), n2, confidence
        )
    return Uplift(
        automation,
        n1,
        n2,
        mean(treated, "bought"),
        mean(control, "bought"),
        rate,
        mean(treated, "revenue_minor"),
        mean(control, "revenue_minor"),
        welch(arr(treated, "revenue_minor"), arr(control, "revenue_minor"), confidence),
        mean(treated, "points"),
        mean(control, "points"),
        welch(arr(treated, "points"), arr(control, "points"), confidence),
    )
