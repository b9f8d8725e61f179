"""Draw customers from buy-till-you-die models with known parameters.

Used to check that fitting recovers the truth, to compare implementations, and to benchmark.
Every simulator is vectorised across customers (no Python loop over customers or purchases)
and exact for the model it names:

* **BG/NBD** (Fader, Hardie & Lee 2005): while alive a customer buys at Poisson rate
  ``lambda ~ Gamma(r, alpha)`` (``alpha`` a rate, in the time unit); after each *repeat*
  purchase they drop out with probability ``p ~ Beta(a, b)``. The number of repeat purchases
  they make before dropping out is therefore ``K ~ Geometric(p)`` on {1, 2, ...}.
* **MBG/NBD** (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but the drop-out coin is also
  tossed right after the first purchase, so ``K ~ Geometric(p) - 1`` on {0, 1, ...}.
* **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987): the lifetime is
  ``tau ~ Exponential(mu)``, ``mu ~ Gamma(s, beta)``; purchases stop at ``tau``.
* **Gamma-Gamma spend** (Fader, Hardie & Lee 2005; Colombo & Jiang 1999): each transaction is
  ``Gamma(p, nu)`` (shape ``p``, rate ``nu``), ``nu ~ Gamma(q, v)`` per customer.

How the purchase times are drawn without a loop: a Poisson process observed on ``[0, L]``
has ``N ~ Poisson(lambda L)`` points which, given ``N = n``, are ``n`` sorted uniforms on
``[0, L]``. A customer's observed repeat purchases are the first ``x = min(K, n)`` of them
(``L = min(tau, T)``), so the recency is the ``x``-th order statistic of ``n`` uniforms,
``L * Beta(x, n - x + 1)``. A customer still alive at ``T`` (``K > n`` and ``tau > T``)
starts afresh by memorylessness: the holdout count is ``min(K - n, Poisson(lambda h'))``
with ``h'`` the part of the holdout they are alive for.

All simulators take ``random_seed`` (anything :func:`numpy.random.default_rng` accepts,
including a ``Generator``) and return frames in the RFM contract of :mod:`clvmodels.rfm`:
index ``customer_id``, columns ``frequency, recency, T`` [, ``monetary_value``] and, with a
holdout, ``frequency_holdout`` [, ``monetary_value_holdout``], ``duration_holdout``;
``attrs["time_unit"]`` records the time unit the parameters are in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvmodels.rfm import time_unit_days

__all__ = [
    "simulate_bgnbd",
    "simulate_gammagamma",
    "simulate_gammagamma_spend",
    "simulate_mbgnbd",
    "simulate_paretonbd",
    "simulate_transactions",
    "uniform_observation_lengths",
]

SeedLike = int | np.random.Generator | np.random.SeedSequence | None
ArrayLike = float | Sequence[float] | np.ndarray | pd.Series
#: Gamma-Gamma spend parameters ``(p, q, v)``.
SpendParams = tuple[float, float, float]


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------


def _rng(random_seed: SeedLike) -> np.random.Generator:
    return np.random.default_rng(random_seed)


def _positive(n: int | None = None, **params: Any) -> None:
    """Each parameter a positive finite number — or, where ``n`` is given, one per customer
    (an array of shape (n,): each customer's own parameter, e.g. with covariates)."""
    for name, value in params.items():
        if n is not None and not np.isscalar(value):
            arr = np.asarray(value, dtype=float)
            if arr.shape != (n,):
                raise ValueError(f"{name} must be a number or one value per customer ({n}), "
                                 f"got shape {arr.shape}")
            if not np.all(np.isfinite(arr) & (arr > 0)):
                bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
                raise ValueError(f"{name} must be positive and finite; customers at "
                                 f"positions {bad[:5].tolist()} are not")
            continue
        if not (np.isscalar(value) and np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _n_customers(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def _observation_lengths(T: ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(T, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"T must be a scalar or have one value per customer ({n}), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("T must be finite and non-negative")
    return arr


def _check_resolution(resolution: float | None) -> None:
    if resolution is not None:
        _positive(resolution=resolution)


# --------------------------------------------------------------------------------------
# latent draws: purchase rate, purchases-before-drop-out K, lifetime tau
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Latent:
    """Per-customer latent quantities (all float arrays of length n).

    ``lam``: purchase rate while alive; ``K``: number of repeat purchases made before
    dropping out (``inf`` when drop-out is not count-based); ``tau``: lifetime measured from
    the first purchase (``inf`` when drop-out is not time-based).
    """

    lam: np.ndarray
    K: np.ndarray
    tau: np.ndarray


def _geometric(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Geometric(p) on {1, 2, ...} as floats (exact; no int64 overflow when p is tiny).

    P(K > k) = (1 - p)^k, so K = ceil(ln U / ln(1 - p)) for U uniform on (0, 1].
    ``p = 0`` gives ``inf`` (never drops out).
    """
    u = 1.0 - rng.random(p.shape)  # (0, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ceil(np.log(u) / np.log1p(-p))
    return np.where(np.isnan(k), 1.0, np.maximum(k, 1.0))


def _gamma_rate(rng: np.random.Generator, shape: Any, rate: Any, n: int) -> np.ndarray:
    return rng.gamma(shape, 1.0 / rate, size=n)


def _latent_bg(rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float,
               *, modified: bool) -> _Latent:
    lam = _gamma_rate(rng, r, alpha, n)
    p = rng.beta(a, b, size=n)
    K = _geometric(rng, p) - (1.0 if modified else 0.0)
    return _Latent(lam=lam, K=K, tau=np.full(n, np.inf))


def _latent_pareto(rng: np.random.Generator, n: int, r: float, alpha: float, s: float,
                   beta: float) -> _Latent:
    lam = _gamma_rate(rng, r, alpha, n)
    mu = _gamma_rate(rng, s, beta, n)
    with np.errstate(divide="ignore"):
        tau = rng.exponential(1.0, size=n) / mu  # mu = 0 (underflow) lives for ever
    return _Latent(lam=lam, K=np.full(n, np.inf), tau=tau)


# --------------------------------------------------------------------------------------
# latent → RFM (+ holdout), and latent → purchase times
# --------------------------------------------------------------------------------------


def _rfm_from_latent(rng: np.random.Generator, z: _Latent, T: np.ndarray, holdout: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact (x, t_x) on [0, T] and the holdout count on (T, T + holdout]."""
    L = np.minimum(z.tau, T)  # time alive within the observation window
    n_all = rng.poisson(z.lam * L).astype(float)  # purchases the rate would give on [0, L]
    x = np.minimum(z.K, n_all)
    # x-th order statistic of n_all uniforms on [0, L]: L * Beta(x, n_all - x + 1)
    bought = x > 0
    frac = rng.beta(np.where(bought, x, 1.0), np.where(bought, n_all - x + 1.0, 1.0))
    tx = np.where(bought, L * frac, 0.0)
    x_h = np.zeros_like(x)
    if holdout > 0:
        alive = (z.K > n_all) & (z.tau > T)
        span = np.where(alive, np.minimum(z.tau, T + holdout) - T, 0.0)
        more = rng.poisson(z.lam * span).astype(float)
        x_h = np.where(alive, np.minimum(z.K - n_all, more), 0.0)
    return x, tx, x_h


def _purchase_times(rng: np.random.Generator, z: _Latent, W: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Every repeat purchase in [0, W] (customer index, time), sorted by customer and time.

    The Poisson process on [0, min(tau, W)] is drawn as sorted uniforms; the customer's
    purchases are its first ``min(K, N)`` points.
    """
    L = np.minimum(z.tau, W)
    n_all = rng.poisson(z.lam * L)
    who = np.repeat(np.arange(len(W)), n_all)
    times = rng.random(len(who)) * L[who]
    order = np.lexsort((times, who))
    who, times = who[order], times[order]
    starts = np.cumsum(n_all) - n_all
    rank = np.arange(len(who)) - starts[who]  # 0-based position within the customer
    keep = rank < z.K[who]
    return who[keep], times[keep]


def _round_to(values: np.ndarray, resolution: float, rng: np.random.Generator
              ) -> np.ndarray:
    """Unbiased stochastic rounding to the grid ``resolution * k``.

    A purchase ``t`` after a first purchase made at a uniformly distributed time of its day
    lands ``floor(t + U)`` days later, so this is how daily data round recency.
    """
    return np.floor(values / resolution + rng.random(values.shape)) * resolution


def _assemble(x: np.ndarray, tx: np.ndarray, T: np.ndarray, x_h: np.ndarray, *,
              holdout: float, time_unit: str, resolution: float | None,
              rng: np.random.Generator, spend: SpendParams | None) -> pd.DataFrame:
    if resolution is not None:
        tx = np.minimum(_round_to(tx, resolution, rng), T)
        # as in dated data (and as validate_rfm requires): at most one repeat purchase per
        # step after the first, none when the last one falls on the first purchase's step
        x = np.minimum(x, np.round(tx / resolution)).astype(x.dtype)
    out = pd.DataFrame(
        {"frequency": x.astype(np.int64), "recency": tx, "T": T},
        index=pd.RangeIndex(len(x), name="customer_id"),
    )
    nu: np.ndarray | None = None
    p = 0.0
    if spend is not None:
        p, q, v = spend
        _positive(len(x), p=p, q=q, v=v)
        nu = _gamma_rate(rng, q, v, len(x))  # one spend rate per customer, both periods
        out["monetary_value"] = _mean_spend(rng, x, p, nu)
    if holdout > 0:
        out["frequency_holdout"] = x_h.astype(np.int64)
        if nu is not None:
            out["monetary_value_holdout"] = _mean_spend(rng, x_h, p, nu)
        out["duration_holdout"] = float(holdout)
    out.attrs["time_unit"] = time_unit
    return out


def _mean_spend(rng: np.random.Generator, x: np.ndarray, p: float, nu: np.ndarray
                ) -> np.ndarray:
    """Mean of x Gamma(p, nu) transactions: Gamma(p x, nu) / x (0 where x = 0)."""
    bought = x > 0
    total = rng.gamma(np.where(bought, p * x, 1.0), 1.0 / nu)
    return np.where(bought, total / np.maximum(x, 1.0), 0.0)


def _prepare(n: int, T: ArrayLike, holdout: float, time_unit: str,
             resolution: float | None) -> np.ndarray:
    n = _n_customers(n)
    time_unit_days(time_unit)
    _check_resolution(resolution)
    if not (np.isscalar(holdout) and np.isfinite(holdout) and holdout >= 0):
        raise ValueError(f"holdout must be a non-negative number, got {holdout!r}")
    T_arr = _observation_lengths(T, n)
    if resolution is not None:
        T_arr = np.round(T_arr / resolution) * resolution
    return T_arr


# --------------------------------------------------------------------------------------
# public simulators
# --------------------------------------------------------------------------------------


def uniform_observation_lengths(n: int, T_max: float, *, resolution: float | None = None,
                                random_seed: SeedLike = None) -> np.ndarray:
    """Observation lengths ``T`` for customers acquired uniformly over a period ``T_max`` long.

    Without ``resolution``, ``T ~ Uniform(0, T_max)``. With it, ``T`` is a whole number of
    steps (e.g. ``resolution=1/7``: whole days, in weeks), uniform over
    ``{resolution, 2 resolution, ..., T_max}`` — a customer acquired on the last day would
    have ``T = 0`` and no chance to buy again, so that day is left out.
    """
    n = _n_customers(n)
    _positive(T_max=T_max)
    rng = _rng(random_seed)
    if resolution is None:
        return rng.uniform(0.0, T_max, size=n)
    _check_resolution(resolution)
    steps = max(int(np.floor(T_max / resolution + 1e-9)), 1)
    return rng.integers(1, steps + 1, size=n) * resolution


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    T: ArrayLike = 52.0,
    holdout: float = 0.0,
    time_unit: str = "W",
    resolution: float | None = None,
    spend: SpendParams | None = None,
    random_seed: SeedLike = None,
) -> pd.DataFrame:
    """Draw ``n`` customers from the BG/NBD (Fader, Hardie & Lee 2005, section 2).

    Parameters
    ----------
    n
        Number of customers.
    r, alpha, a, b
        Purchase rate ``lambda ~ Gamma(shape r, rate alpha)`` (``alpha`` in ``time_unit``);
        drop-out probability after each repeat purchase ``p ~ Beta(a, b)``. Each a number,
        or one value per customer (each customer's own parameters, e.g. theta_i of the
        covariate link, :mod:`clvmodels.models.links` equation (1)).
    T
        Observation length since each customer's first purchase: a scalar or one value per
        customer (e.g. :func:`uniform_observation_lengths`).
    holdout
        Length of a holdout period after ``T``; adds ``frequency_holdout`` (repeat purchases
        in ``(T, T + holdout]`` from the same customers' continued process) and
        ``duration_holdout``.
    time_unit
        Unit the parameters and times are in, recorded in ``attrs["time_unit"]``.
    resolution
        Round ``T`` (to nearest) and ``recency`` (stochastically, as dated data do) to whole
        multiples of this, e.g. ``1/7`` for daily data in weeks; frequency is then at most
        one repeat purchase per step of recency, as purchases on one day are one transaction
        in dated data (a simple cap, not an exact merge: :func:`simulate_transactions` gives
        dated transactions).
    spend
        Gamma-Gamma ``(p, q, v)``: add ``monetary_value`` (and ``monetary_value_holdout``),
        see :func:`simulate_gammagamma_spend`.
    random_seed
        Seed or ``numpy.random.Generator``.

    Returns
    -------
    DataFrame indexed by ``customer_id`` (0..n-1) in the RFM contract.
    """
    return _simulate_bg_family(n, r, alpha, a, b, T=T, holdout=holdout, time_unit=time_unit,
                               resolution=resolution, spend=spend, random_seed=random_seed,
                               modified=False)


def simulate_mbgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    T: ArrayLike = 52.0,
    holdout: float = 0.0,
    time_unit: str = "W",
    resolution: float | None = None,
    spend: SpendParams | None = None,
    random_seed: SeedLike = None,
) -> pd.DataFrame:
    """Draw ``n`` customers from the MBG/NBD (Batislam, Denizel & Filiztekin 2007).

    As :func:`simulate_bgnbd`, except that a customer may also drop out right after the first
    purchase (with the same probability ``p ~ Beta(a, b)``), so some never buy again even
    with a high purchase rate.
    """
    return _simulate_bg_family(n, r, alpha, a, b, T=T, holdout=holdout, time_unit=time_unit,
                               resolution=resolution, spend=spend, random_seed=random_seed,
                               modified=True)


def _simulate_bg_family(n: int, r: float, alpha: float, a: float, b: float, *, T: ArrayLike,
                        holdout: float, time_unit: str, resolution: float | None,
                        spend: SpendParams | None, random_seed: SeedLike, modified: bool
                        ) -> pd.DataFrame:
    """:func:`simulate_bgnbd` (``modified=False``) and :func:`simulate_mbgnbd`."""
    T_arr = _prepare(n, T, holdout, time_unit, resolution)
    _positive(len(T_arr), r=r, alpha=alpha, a=a, b=b)
    rng = _rng(random_seed)
    z = _latent_bg(rng, len(T_arr), r, alpha, a, b, modified=modified)
    x, tx, x_h = _rfm_from_latent(rng, z, T_arr, holdout)
    return _assemble(x, tx, T_arr, x_h, holdout=holdout, time_unit=time_unit,
                     resolution=resolution, rng=rng, spend=spend)


def simulate_paretonbd(
    n: int,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    *,
    T: ArrayLike = 52.0,
    holdout: float = 0.0,
    time_unit: str = "W",
    resolution: float | None = None,
    spend: SpendParams | None = None,
    random_seed: SeedLike = None,
) -> pd.DataFrame:
    """Draw ``n`` customers from the Pareto/NBD (Schmittlein, Morrison & Colombo 1987).

    Purchase rate ``lambda ~ Gamma(r, alpha)``; lifetime ``tau ~ Exponential(mu)`` with
    ``mu ~ Gamma(s, beta)`` (both ``alpha`` and ``beta`` rates in ``time_unit``). Other
    arguments as in :func:`simulate_bgnbd`.
    """
    T_arr = _prepare(n, T, holdout, time_unit, resolution)
    _positive(len(T_arr), r=r, alpha=alpha, s=s, beta=beta)
    rng = _rng(random_seed)
    z = _latent_pareto(rng, len(T_arr), r, alpha, s, beta)
    x, tx, x_h = _rfm_from_latent(rng, z, T_arr, holdout)
    return _assemble(x, tx, T_arr, x_h, holdout=holdout, time_unit=time_unit,
                     resolution=resolution, rng=rng, spend=spend)


def simulate_gammagamma_spend(
    frequency: ArrayLike,
    p: float,
    q: float,
    v: float,
    random_seed: SeedLike = None,
) -> pd.Series:
    """Mean repeat-transaction value for customers with the given repeat frequencies.

    Each transaction is ``Gamma(shape p, rate nu)`` with ``nu ~ Gamma(shape q, rate v)`` per
    customer (Fader, Hardie & Lee 2005, "RFM and CLV", section 4; the mean of ``x`` of them
    is ``Gamma(p x, nu) / x``). Customers with ``frequency`` 0 get 0, as in the RFM contract.
    The population mean spend is ``p v / (q - 1)``.

    Returns a Series ``monetary_value``, indexed like ``frequency`` when it is a Series.
    """
    index = frequency.index if isinstance(frequency, pd.Series) else None
    x = np.asarray(frequency, dtype=float).reshape(-1)
    _positive(len(x), p=p, q=q, v=v)
    if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be non-negative whole numbers")
    rng = _rng(random_seed)
    nu = _gamma_rate(rng, q, v, len(x))
    return pd.Series(_mean_spend(rng, x, p, nu), index=index, name="monetary_value")


def simulate_gammagamma(
    n: int,
    p: float,
    q: float,
    v: Any,
    *,
    frequency: ArrayLike,
    random_seed: SeedLike = None,
) -> pd.DataFrame:
    """``n`` customers' mean repeat spend from the Gamma-Gamma model, as the spend data kind
    (``frequency``, ``monetary_value``; :func:`simulate_gammagamma_spend`, Fader, Hardie &
    Lee 2005 section 4): the registry's simulator for :class:`clvmodels.GammaGamma`.

    ``frequency`` gives each customer's repeat purchases (a number or one per customer);
    ``v`` may be one value per customer (e.g. with covariates: links equation (1)).
    """
    n = _n_customers(n)
    x = np.asarray(frequency, dtype=float)
    x = np.full(n, float(x)) if x.ndim == 0 else x
    if x.shape != (n,):
        raise ValueError(f"frequency must be a number or one value per customer ({n})")
    spend = simulate_gammagamma_spend(x, p, q, v, random_seed=random_seed)
    return pd.DataFrame({"frequency": x.astype(np.int64),
                         "monetary_value": spend.to_numpy()},
                        index=pd.RangeIndex(n, name="customer_id"))


def simulate_transactions(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    start_date: str | pd.Timestamp = "2020-01-01",
    acquisition_days: int = 364,
    observation_days: int | None = None,
    holdout_days: int = 0,
    time_unit: str = "W",
    model: Literal["bgnbd", "mbgnbd"] = "bgnbd",
    spend: SpendParams | None = (6.25, 3.74, 15.44),
    random_seed: SeedLike = None,
) -> pd.DataFrame:
    """A raw transaction log (``customer_id, date, amount``) drawn from the BG/NBD.

    Customers make their first purchase on a day uniform over the ``acquisition_days`` days
    from ``start_date``, at a uniform time of that day. Their purchases then follow the
    BG/NBD (or MBG/NBD with ``model="mbgnbd"``) in continuous time with ``r, alpha, a, b``
    in ``time_unit``, up to the end of the last observed day; each purchase is dated by the
    day it falls on. Dates therefore have daily resolution: purchases on the same day become
    one transaction in an RFM summary (their amounts summed), the only departure from the
    model, small when purchase rates per day are small.

    The calibration period runs ``observation_days`` days (default ``acquisition_days``),
    i.e. to ``start_date + observation_days - 1`` inclusive; with ``holdout_days`` the log
    continues that many days more, so :func:`clvmodels.calibration_holdout_split` with
    ``calibration_end = start_date + observation_days - 1`` gives a calibration/holdout pair.

    ``spend=(p, q, v)``: amounts are Gamma-Gamma draws (CDNOW-like by default); ``None``
    makes every amount 1.0. Rows are sorted by customer and date; ``customer_id`` runs
    0..n-1 (every customer has at least the first purchase).
    """
    n = _n_customers(n)
    _positive(r=r, alpha=alpha, a=a, b=b)
    unit = time_unit_days(time_unit)
    if model not in ("bgnbd", "mbgnbd"):
        raise ValueError(f"model must be 'bgnbd' or 'mbgnbd', got {model!r}")
    if observation_days is None:
        observation_days = acquisition_days
    if not (isinstance(acquisition_days, int | np.integer) and acquisition_days >= 1):
        raise ValueError("acquisition_days must be a positive whole number of days")
    if not (isinstance(observation_days, int | np.integer)
            and observation_days >= acquisition_days):
        raise ValueError("observation_days must be a whole number >= acquisition_days")
    if not (isinstance(holdout_days, int | np.integer) and holdout_days >= 0):
        raise ValueError("holdout_days must be a non-negative whole number of days")
    start = pd.Timestamp(start_date).normalize()
    rng = _rng(random_seed)
    first_day = rng.integers(0, acquisition_days, size=n)
    first_time = first_day + rng.random(n)  # continuous time of the first purchase, in days
    window_days = (observation_days + holdout_days) - first_time  # to the end of the last day
    z = _latent_bg(rng, n, r, alpha, a, b, modified=(model == "mbgnbd"))
    who, t = _purchase_times(rng, z, window_days / unit)
    day = np.floor(first_time[who] + t * unit).astype(np.int64)
    cust = np.concatenate([np.arange(n), who])
    days = np.concatenate([first_day, day])
    order = np.lexsort((days, cust))
    cust, days = cust[order], days[order]
    if spend is None:
        amount = np.ones(len(cust))
    else:
        p, q, v = spend
        _positive(p=p, q=q, v=v)
        nu = _gamma_rate(rng, q, v, n)
        amount = rng.gamma(p, 1.0 / nu[cust])
    dates = np.datetime64(start.date(), "D") + days.astype("timedelta64[D]")
    return pd.DataFrame({"customer_id": cust, "date": dates.astype("datetime64[ns]"),
                         "amount": amount})
