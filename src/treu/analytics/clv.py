"""Customer value: the BG/NBD and Gamma-Gamma models, fitted by maximum likelihood (pure).

* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a
  customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each repeat purchase they
  drop out with probability p ~ Beta(a, b). A customer is summarised by ``x`` (repeat purchases),
  ``t_x`` (time of the last purchase, since the first) and ``T`` (time since the first purchase).
  The log-likelihood is their equation (6), written with ``gammaln`` and ``logaddexp`` so large
  ``x`` neither overflows nor loses precision; P(alive) follows their note "Computing P(alive)
  using the BG/NBD model", the expected purchases in the next ``t`` their eq. (10).
* **Gamma-Gamma** (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"): a
  customer's purchases are Gamma(p, ν) with ν ~ Gamma(q, v), independent of the frequency; the
  likelihood of a mean ``m`` over ``x`` purchases is their eq. (3), the expected mean spend eq. (5).

Parameters are fitted with ``scipy.optimize.minimize`` (L-BFGS-B on their logarithms, so they
stay positive). The maintained-library route was checked: ``lifetimes`` (the usual choice) has
had no release since 2020 and is in maintenance mode; its successor lives in a PyMC stack far
heavier than Treu needs. These are estimates: they work in floating point, and money leaves them
rounded to the currency's minor unit (``service``).

Time is in weeks (any unit works; weeks keep the parameters near 1 for shop data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, gammaln, hyp2f1

Array = NDArray[np.float64]


def _arr(value: Any) -> Array:
    return np.asarray(value, dtype=np.float64)


class FitError(ValueError):
    """The data cannot identify the model (too few customers or no repeat purchases)."""


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def log_likelihood(self, x: Any, t_x: Any, T: Any) -> Array:
        """Each customer's log-likelihood (FHL 2005, eq. 6)."""
        x, t_x, T = _arr(x), _arr(t_x), _arr(T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        safe = np.where(repeat, b + x - 1, 1.0)
        a4 = np.where(repeat, np.log(a) - np.log(safe) - (r + x) * np.log(alpha + t_x), -np.inf)
        return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=np.float64)

    def p_alive(self, x: Any, t_x: Any, T: Any) -> Array:
        """P(the customer is still active at T | x, t_x, T); 1 for a customer without repeat
        purchases (the model lets customers drop out only after a repeat purchase)."""
        x, t_x, T = _arr(x), _arr(t_x), _arr(T)
        repeat = x > 0
        safe = np.where(repeat, self.b + x - 1, 1.0)
        log_odds = (
            np.log(self.a)
            - np.log(safe)
            + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
        )
        return np.asarray(np.where(repeat, expit(-log_odds), 1.0), dtype=np.float64)

    def expected_purchases(self, t: Any, x: Any, t_x: Any, T: Any) -> Array:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10)."""
        t, x, t_x, T = _arr(t), _arr(x), _arr(t_x), _arr(T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return np.asarray(head * tail * self.p_alive(x, t_x, T), dtype=np.float64)

    def expected_purchases_new(self, t: Any) -> Array:
        """E[X(t)]: purchases in ``t`` of a customer just acquired (FHL 2005, eq. 9)."""
        t = _arr(t)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        head = (a + b - 1) / (a - 1)
        tail = 1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return np.asarray(head * tail, dtype=np.float64)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float

    def log_likelihood(self, x: Any, m: Any) -> Array:
        """Each customer's log-likelihood of mean spend ``m`` over ``x`` purchases (x >= 1)."""
        x, m = _arr(x), _arr(m)
        p, q, v = self.p, self.q, self.v
        px = p * x
        return np.asarray(
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(x * m + v),
            dtype=np.float64,
        )

    @property
    def mean_spend(self) -> float:
        """E[M] of a customer about whom nothing is known (needs q > 1)."""
        return self.p * self.v / (self.q - 1)

    def expected_spend(self, x: Any, m: Any) -> Array:
        """E[M | x, m]: a weighted mean of the population's and the customer's own (eq. 5);
        the population mean for a customer without purchases to go by (x = 0)."""
        x, m = _arr(x), _arr(m)
        own = self.p * (self.v + x * m) / (self.p * x + self.q - 1)
        return np.asarray(np.where(x > 0, own, self.mean_spend), dtype=np.float64)


def _fit(nll: Any, start: Array) -> Array:
    from scipy.optimize import minimize  # seconds to import: only when a model is fitted

    with np.errstate(all="ignore"):
        found = minimize(nll, start, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * len(start))
    if not np.all(np.isfinite(found.x)):
        raise FitError("the likelihood could not be maximised")
    return np.asarray(np.exp(found.x), dtype=np.float64)


def fit_bgnbd(x: Any, t_x: Any, T: Any) -> BgNbd:
    """The BG/NBD parameters that maximise the likelihood of the customers' (x, t_x, T)."""
    x, t_x, T = _arr(x), _arr(t_x), _arr(T)
    if len(x) < 10 or not np.any(x > 0):
        raise FitError("BG/NBD needs at least 10 customers and some repeat purchases")

    def nll(log_params: Array) -> float:
        model = BgNbd(*np.exp(log_params))
        value = -float(np.mean(model.log_likelihood(x, t_x, T)))
        return value if np.isfinite(value) else 1e12

    return BgNbd(*(float(v) for v in _fit(nll, np.zeros(4))))


def fit_gamma_gamma(x: Any, m: Any) -> GammaGamma:
    """The Gamma-Gamma parameters of customers with repeat purchases (x >= 1, m > 0). Spend is
    scaled by its mean while fitting (``v`` scales with the currency unit, ``p`` and ``q`` do
    not), which keeps the optimiser's start near the answer whatever the unit."""
    x, m = _arr(x), _arr(m)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if len(x) < 10:
        raise FitError("Gamma-Gamma needs at least 10 customers with repeat purchases")
    scale = float(np.mean(m))
    scaled = m / scale

    def nll(log_params: Array) -> float:
        value = -float(np.mean(GammaGamma(*np.exp(log_params)).log_likelihood(x, scaled)))
        return value if np.isfinite(value) else 1e12

    p, q, v = (float(v) for v in _fit(nll, np.zeros(3)))
    return GammaGamma(p, q, v * scale)


def clv(
    bgnbd: BgNbd,
    spend: Array,
    x: Any,
    t_x: Any,
    T: Any,
    *,
    months: int,
    annual_discount: float,
    margin: float = 1.0,
    weeks_per_month: float = 52.0 / 12.0,
) -> Array:
    """Discounted value of each customer's expected purchases over the next ``months``:
    ``Σ_k (E[Y(k months)] − E[Y(k−1 months)]) × spend × margin / (1 + d)^k`` with the monthly
    rate ``d = (1 + annual_discount)^(1/12) − 1``."""
    monthly = (1.0 + annual_discount) ** (1.0 / 12.0) - 1.0
    total = np.zeros_like(_arr(x))
    before = np.zeros_like(total)
    for k in range(1, months + 1):
        upto = bgnbd.expected_purchases(k * weeks_per_month, x, t_x, T)
        total += (upto - before) / (1.0 + monthly) ** k
        before = upto
    return np.asarray(total * _arr(spend) * margin, dtype=np.float64)


# --- simulation (validation: recover known parameters) ------------------------------------


def simulate_bgnbd(
    model: BgNbd,
    *,
    customers: int,
    T: float,
    seed: int,
) -> tuple[Array, Array, Array]:
    """(x, t_x, T) of ``customers`` drawn from the model, each observed for ``T`` after their
    first purchase."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(model.r, 1.0 / model.alpha, customers)
    drops = rng.beta(model.a, model.b, customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    for i in range(customers):
        now = 0.0
        while True:
            now += rng.exponential(1.0 / rates[i]) if rates[i] > 0 else np.inf
            if now > T:
                break
            x[i] += 1
            t_x[i] = now
            if rng.random() < drops[i]:
                break
    return x, t_x, np.full(customers, T)


def simulate_gamma_gamma(model: GammaGamma, x: Array, *, seed: int) -> Array:
    """The mean spend of each customer's ``x`` purchases (x >= 1), drawn from the model."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(model.q, 1.0 / model.v, len(x))
    return np.asarray(
        [rng.gamma(model.p, 1.0 / n, int(k)).mean() for n, k in zip(nu, x, strict=True)],
        dtype=np.float64,
    )
