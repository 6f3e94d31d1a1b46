"""KPIs and member scores as flat tables for BI tools: CSV or Parquet (pure, Polars).

Every row is self-describing: a KPI row carries its scope, period and currency; money is a
decimal string in the currency's unit (never a float), rates are rounded to six decimals and the
counts they come from are columns of the same row.
"""

from __future__ import annotations

import io
from typing import Literal

import polars as pl

from treu.analytics.model import KPIS, KpiSet
from treu.money import exponent

Format = Literal["csv", "parquet", "json"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def kpi_frame(sets: list[KpiSet]) -> pl.DataFrame:
    columns = ["scope", "period", "from", "to", "currency", *KPIS]
    rows = [s.as_row() for s in sets]
    return pl.DataFrame(
        [[row[c] for c in columns] for row in rows],
        schema={c: _kpi_type(c) for c in columns},
        orient="row",
    )


def _kpi_type(column: str) -> type[pl.DataType]:
    kind = KPIS.get(column)
    return pl.Int64 if kind in ("count", "points") else pl.String


def money_text(column: str, currency: str) -> pl.Expr:
    """Minor units (float estimates) as a decimal string in the currency's unit, rounded to
    the minor unit: 1234.6 cents -> "12.35"."""
    places = exponent(currency)
    minor = pl.col(column).round(0).cast(pl.Int64)
    if places == 0:
        return minor.cast(pl.String)
    sign = pl.when(minor < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = (minor.abs() // 10**places).cast(pl.String)
    cents = (minor.abs() % 10**places).cast(pl.String).str.zfill(places)
    joined: pl.Expr = sign + whole + "." + cents
    return joined


def scores_frame(scores: pl.DataFrame, currency: str) -> pl.DataFrame:
    """Member scores with money as decimal strings (``monetary``, ``expected_spend``, ``clv``)
    and probabilities rounded to four decimals."""
    return scores.select(
        "member_id",
        "segment",
        "r",
        "f",
        "m",
        "recency_days",
        "frequency",
        money_text("monetary_minor", currency).alias("monetary"),
        pl.col("p_alive").round(4),
        pl.col("churn_risk").round(4),
        pl.col("expected_purchases").round(2),
        money_text("expected_spend_minor", currency).alias("expected_spend"),
        money_text("clv_minor", currency).alias("clv"),
    )


def encode(frame: pl.DataFrame, fmt: Literal["csv", "parquet"]) -> bytes:
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_parquet(buffer)
    return buffer.getvalue()
