"""Per-member purchase summaries and RFM scores and segments (pure, on Polars frames).

:func:`summarise` turns members' purchases into one row per member as of an instant: the
RFM inputs (days since the last purchase, number of purchases, money spent) and the BG/NBD
inputs (repeat purchase days ``x``, ``t_x`` and ``T`` in weeks; several purchases on one day
are one transaction, as the model's authors count them).

:func:`score` gives each member R, F and M scores from 1 to 5 by quintile (5 is best: most
recent, most frequent, most spent; equal values always share a score) and the classic segment
from :data:`SEGMENTS`, a grid over R and the mean of F and M.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

Segment = str

# The segment of each (R, FM) pair; FM = (F + M) / 2 rounded half up. Rows R = 5 … 1,
# columns FM = 1 … 5.
_GRID: dict[int, tuple[Segment, ...]] = {
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "loyal", "loyal", "champions"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "at_risk"),
    1: ("lost", "lost", "at_risk", "cant_lose_them", "cant_lose_them"),
}
SEGMENTS: tuple[Segment, ...] = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
)


def segment_of(r: int, f: int, m: int) -> Segment:
    return _GRID[r][(f + m + 1) // 2 - 1]


SUMMARY = {
    "member_id": pl.String,
    "recency_days": pl.Int64,
    "frequency": pl.Int64,
    "monetary_minor": pl.Int64,
    "x": pl.Int64,
    "t_x": pl.Float64,
    "T": pl.Float64,
    "repeat_mean_minor": pl.Float64,
}


def summarise(purchases: pl.DataFrame, tz: ZoneInfo, at: datetime) -> pl.DataFrame:
    """One row per member who bought before ``at`` (``purchases``: ``member_id``,
    ``occurred_at``, ``paid_minor``); days and weeks counted on programme-time dates."""
    today = at.astimezone(tz).date()
    bought = purchases.filter(
        pl.col("member_id").is_not_null() & (pl.col("occurred_at") < at)
    ).with_columns(pl.col("occurred_at").dt.convert_time_zone(tz.key).dt.date().alias("day"))
    if bought.is_empty():
        return pl.DataFrame(schema=SUMMARY)
    days = bought.group_by("member_id", "day").agg(pl.col("paid_minor").sum().alias("spent"))
    first_last = days.group_by("member_id").agg(
        pl.col("day").min().alias("first"),
        pl.col("day").max().alias("last"),
        (pl.len() - 1).alias("x"),
        pl.col("spent").sort_by("day").first().alias("first_spent"),
    )
    totals = bought.group_by("member_id").agg(
        pl.len().alias("frequency"), pl.col("paid_minor").sum().alias("monetary_minor")
    )
    week = 7.0
    return (
        first_last.join(totals, on="member_id")
        .with_columns(
            (pl.lit(today) - pl.col("last")).dt.total_days().alias("recency_days"),
            ((pl.col("last") - pl.col("first")).dt.total_days() / week).alias("t_x"),
            ((pl.lit(today) - pl.col("first")).dt.total_days() / week).alias("T"),
            pl.when(pl.col("x") > 0)
            .then((pl.col("monetary_minor") - pl.col("first_spent")) / pl.col("x"))
            .otherwise(0.0)
            .alias("repeat_mean_minor"),
        )
        .select([pl.col(c).cast(t) for c, t in SUMMARY.items()])
        .sort("member_id")
    )


def quintile(column: str, *, descending: bool = False) -> pl.Expr:
    """1 … 5 by rank; equal values share the lower rank's score (``descending``: small is
    good, as for recency)."""
    value = -pl.col(column) if descending else pl.col(column)
    rank = value.rank("min").cast(pl.Int64)
    n = pl.len().cast(pl.Int64)
    return (1 + (rank - 1) * 5 // n).cast(pl.Int64)


def score(summary: pl.DataFrame) -> pl.DataFrame:
    """``summary`` with the scores ``r``, ``f``, ``m`` and the ``segment``."""
    if summary.is_empty():
        return summary.with_columns(
            pl.lit(None, pl.Int64).alias("r"),
            pl.lit(None, pl.Int64).alias("f"),
            pl.lit(None, pl.Int64).alias("m"),
            pl.lit(None, pl.String).alias("segment"),
        )
    scored = summary.with_columns(
        quintile("recency_days", descending=True).alias("r"),
        quintile("frequency").alias("f"),
        quintile("monetary_minor").alias("m"),
    )
    grid = pl.DataFrame(
        [(r, fm, _GRID[r][fm - 1]) for r in _GRID for fm in range(1, 6)],
        schema={"r": pl.Int64, "fm": pl.Int64, "segment": pl.String},
        orient="row",
    )
    return (
        scored.with_columns(((pl.col("f") + pl.col("m") + 1) // 2).alias("fm"))
        .join(grid, on=["r", "fm"], how="left")
        .drop("fm")
    )
