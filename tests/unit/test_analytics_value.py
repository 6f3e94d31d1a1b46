"""Customer value (BG/NBD, Gamma-Gamma, CLV), RFM, cohorts and uplift — no database.

Parameter recovery: customers are drawn from a model with known parameters (the values Fader,
Hardie & Lee published for the CDNOW sample, seeded draws) and the fit must find them again
within a tolerance. With 10,000 customers the sampling error of the estimates is a few percent
(the fits of seeds 1–3 land within 10 % of r and α and 12 % of a and b); the tolerances, 15 %
and 20 %, leave room without letting a wrong likelihood pass — a sign error or a dropped term
moves the estimates by far more.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from treu.analytics import clv, cohorts, rfm, uplift

BERLIN = ZoneInfo("Europe/Berlin")
CDNOW = clv.BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_SPEND = clv.GammaGamma(p=6.25, q=3.74, v=15.44)


def test_the_published_cdnow_predictions_are_reproduced() -> None:
    # FHL 2005, section 5: x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 purchases in the
    # next 39 weeks; Fader & Hardie's Gamma-Gamma note: E(M) = pγ/(q − 1) = 35.22
    assert float(CDNOW.expected_purchases(39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=5e-4)
    assert CDNOW_SPEND.mean_spend == pytest.approx(35.22, abs=5e-3)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bgnbd_recovers_the_parameters_it_was_drawn_from(seed: int) -> None:
    x, t_x, big_t = clv.simulate_bgnbd(CDNOW, customers=10_000, T=39.0, seed=seed)
    fitted = clv.fit_bgnbd(x, t_x, big_t)
    assert fitted.r == pytest.approx(CDNOW.r, rel=0.15)
    assert fitted.alpha == pytest.approx(CDNOW.alpha, rel=0.15)
    assert fitted.a == pytest.approx(CDNOW.a, rel=0.20)
    assert fitted.b == pytest.approx(CDNOW.b, rel=0.20)
    # and the fitted model is at least as likely as the true one on its own data
    assert fitted.log_likelihood(x, t_x, big_t).sum() >= CDNOW.log_likelihood(x, t_x, big_t).sum()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gamma_gamma_recovers_the_parameters_it_was_drawn_from(seed: int) -> None:
    x = np.random.default_rng(seed).integers(1, 10, 5000).astype(float)
    m = clv.simulate_gamma_gamma(CDNOW_SPEND, x, seed=seed)
    fitted = clv.fit_gamma_gamma(x, m * 100)  # in cents: v scales, p and q do not
    assert fitted.p == pytest.approx(CDNOW_SPEND.p, rel=0.20)
    assert fitted.q == pytest.approx(CDNOW_SPEND.q, rel=0.20)
    assert fitted.v == pytest.approx(CDNOW_SPEND.v * 100, rel=0.25)


def test_p_alive_rises_with_recency_and_falls_with_age() -> None:
    t_x = np.linspace(0.5, 38.5, 40)
    alive = CDNOW.p_alive(np.full(40, 3.0), t_x, np.full(40, 39.0))
    assert np.all(np.diff(alive) > 0)
    ages = CDNOW.p_alive(np.full(5, 3.0), np.full(5, 10.0), np.array([20.0, 30, 40, 50, 60]))
    assert np.all(np.diff(ages) < 0)
    # without a repeat purchase a customer cannot have dropped out (the model's assumption)
    assert CDNOW.p_alive([0], [0], [39])[0] == 1.0


def test_expected_spend_shrinks_a_customers_mean_towards_the_population() -> None:
    few, many = CDNOW_SPEND.expected_spend([1, 50], [100.0, 100.0])
    assert CDNOW_SPEND.mean_spend < few < many < 100.0
    assert CDNOW_SPEND.expected_spend([0], [0.0])[0] == CDNOW_SPEND.mean_spend


def test_clv_is_the_discounted_sum_of_expected_purchases_times_spend() -> None:
    args = ([2.0], [30.0], [39.0])
    undiscounted = clv.clv(CDNOW, np.array([10.0]), *args, months=12, annual_discount=0.0)
    total = CDNOW.expected_purchases(12 * 52 / 12, *args) * 10.0
    assert undiscounted[0] == pytest.approx(total[0])
    discounted = clv.clv(CDNOW, np.array([10.0]), *args, months=12, annual_discount=0.1)
    assert total[0] / 1.1 < discounted[0] < total[0]
    halved = clv.clv(CDNOW, np.array([10.0]), *args, months=12, annual_discount=0.0, margin=0.5)
    assert halved[0] == pytest.approx(total[0] / 2)


def test_a_fit_without_repeat_purchases_is_refused() -> None:
    with pytest.raises(clv.FitError):
        clv.fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 10.0))
    with pytest.raises(clv.FitError):
        clv.fit_gamma_gamma(np.zeros(5), np.zeros(5))


# --- RFM -----------------------------------------------------------------------------------


def purchases(rows: list[tuple[str, datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "member_id": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "paid_minor": pl.Int64,
        },
        orient="row",
    )


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def test_the_summary_counts_purchase_days_in_programme_time() -> None:
    # Ana buys on 1 March twice (one transaction day), on 8 March and at 00:30 on 15 March
    summary = rfm.summarise(
        purchases(
            [
                ("ana", at(2026, 3, 1, 9), 1000),
                ("ana", at(2026, 3, 1, 18), 500),
                ("ana", at(2026, 3, 8, 9), 2000),
                ("ana", at(2026, 3, 15, 0, 30), 4000),
                ("ana", at(2026, 3, 30, 9), 9999),  # after the reference instant
            ]
        ),
        BERLIN,
        at(2026, 3, 29, 12),
    )
    row = summary.row(0, named=True)
    assert (row["frequency"], row["monetary_minor"], row["recency_days"]) == (4, 7500, 14)
    assert (row["x"], row["t_x"], row["T"]) == (2, 2.0, 4.0)
    assert row["repeat_mean_minor"] == 3000.0  # (2000 + 4000) / 2, the first day left out


def test_rfm_scores_are_quintiles_and_segments_follow_the_grid() -> None:
    # ten members: member i last bought 30·i days ago, 10 − i times, 100 × (10 − i) each
    now = at(2026, 6, 1, 12)
    rows = []
    for i in range(10):
        for k in range(10 - i):
            rows.append((f"m{i}", now - timedelta(days=i * 30 + k), (10 - i) * 100))
    scored = rfm.score(rfm.summarise(purchases(rows), BERLIN, now)).sort("member_id")
    assert scored["r"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scored["f"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scored["segment"].to_list()[:2] == ["champions", "champions"]
    assert scored["segment"].to_list()[-1] == "lost"
    assert set(scored["segment"]) <= set(rfm.SEGMENTS)


def test_equal_values_share_a_score() -> None:
    now = at(2026, 6, 1, 12)
    rows = [(f"m{i}", now - timedelta(days=3), 500) for i in range(7)]
    scored = rfm.score(rfm.summarise(purchases(rows), BERLIN, now))
    assert set(scored["r"]) == {1}
    assert set(scored["f"]) == {1}
    assert set(scored["m"]) == {1}


def test_the_grid_names_every_classic_segment() -> None:
    named = {rfm.segment_of(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert named == set(rfm.SEGMENTS)
    assert rfm.segment_of(5, 5, 5) == "champions"
    assert rfm.segment_of(5, 1, 1) == "new"
    assert rfm.segment_of(1, 5, 5) == "cant_lose_them"
    assert rfm.segment_of(2, 1, 1) == "hibernating"


# --- cohorts -------------------------------------------------------------------------------


def test_cohort_retention_by_enrolment_month() -> None:
    members = pl.DataFrame(
        [
            ("a", at(2026, 1, 5), None),
            ("b", at(2026, 1, 31, 23, 30), None),  # 22:30 UTC: still January locally
            ("c", at(2026, 2, 2), None),
        ],
        schema={
            "id": pl.String,
            "enrolled_at": pl.Datetime("us", "UTC"),
            "first_purchase_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    bought = purchases(
        [
            ("a", at(2026, 1, 6), 100),
            ("a", at(2026, 2, 6), 100),
            ("a", at(2026, 2, 7), 100),
            ("b", at(2026, 3, 1, 0, 10), 100),  # March locally
            ("c", at(2026, 2, 3), 100),
        ]
    )
    table = cohorts.retention(members, bought, BERLIN, first=date(2026, 1, 1), end=date(2026, 4, 1))
    january, february, march = table.cohorts
    assert (january.month, january.size, january.active) == ("2026-01", 2, [1, 1, 1])
    assert (february.size, february.active) == (1, [1, 0])
    assert (march.size, march.active) == (0, [0])
    assert january.rates[0] == 0.5
    assert march.rates == [None]
    assert table.series()[0] == {
        "cohort": "2026-01",
        "offset": 0,
        "members": 2,
        "active": 1,
        "rate": "0.5000",
    }


# --- uplift --------------------------------------------------------------------------------


def test_newcombe_and_welch_on_textbook_numbers() -> None:
    # Newcombe (1998), example (a): 56/70 against 48/80 → 0.2000 (0.0524, 0.3339)
    d = uplift.newcombe(56, 70, 48, 80)
    assert (round(d.estimate, 4), round(d.low, 4), round(d.high, 4)) == (0.2, 0.0524, 0.3339)
    same = uplift.welch(np.array([1.0, 2, 3]), np.array([1.0, 2, 3]))
    assert same is not None
    assert same.estimate == 0
    assert same.covers(0)
    assert uplift.welch(np.array([1.0]), np.array([1.0, 2])) is None


def measured(effect_rate: float, effect_spend: float, seed: int, n: int = 4000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for outcome, rate, spend in (
        ("done", 0.20 + effect_rate, 2000 + effect_spend),
        ("held_out", 0.20, 2000),
    ):
        for i in range(n):
            bought = int(rng.random() < rate)
            revenue = int(rng.gamma(4, spend / 4)) if bought else 0
            rows.append(("win_back", f"{outcome}{i}", outcome, None, bought, revenue, 10 * bought))
    return pl.DataFrame(
        rows,
        schema={
            "automation": pl.String,
            "member_id": pl.String,
            "outcome": pl.String,
            "at": pl.Datetime("us", "UTC"),
            "bought": pl.Int64,
            "revenue_minor": pl.Int64,
            "points": pl.Int64,
        },
        orient="row",
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_injected_uplift_is_detected(seed: int) -> None:
    result = uplift.uplift(measured(0.05, 500, seed), "win_back")
    assert result.purchase_rate is not None
    assert result.purchase_rate.low > 0
    assert result.revenue is not None
    assert result.revenue.low > 0
    assert result.purchase_rate.covers(0.05)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_an_effect_the_interval_covers_zero(seed: int) -> None:
    result = uplift.uplift(measured(0.0, 0, seed), "win_back")
    assert result.purchase_rate is not None
    assert result.purchase_rate.covers(0)
    assert result.revenue is not None
    assert result.revenue.covers(0)
    assert result.points is not None
    assert result.points.covers(0)


def test_outcomes_count_what_follows_each_run_within_the_window() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    runs = pl.DataFrame(
        [("w", "a", "done", t0), ("w", "b", "held_out", t0)],
        schema={**uplift.RUNS, "at": pl.Datetime("us", "UTC")},
        orient="row",
    )
    bought = purchases(
        [
            ("a", t0 - timedelta(days=1), 999),  # before the run
            ("a", t0 + timedelta(days=2), 1000),
            ("a", t0 + timedelta(days=31), 999),  # after the window
            ("b", t0 + timedelta(days=29), 500),
        ]
    )
    points = pl.DataFrame(
        [("a", t0 + timedelta(days=2), 10), ("a", t0 + timedelta(days=3), -4)],
        schema={"member_id": pl.String, "posted_at": pl.Datetime("us", "UTC"), "points": pl.Int64},
        orient="row",
    )
    out = uplift.outcomes(runs, bought, points, timedelta(days=30)).sort("member_id")
    assert out.select("bought", "revenue_minor", "points").rows() == [(1, 1000, 6), (1, 500, 0)]
