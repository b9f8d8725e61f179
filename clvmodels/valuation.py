"""Customer lifetime value: expected purchases (or paid periods) × spend × margin, discounted.

Knows nothing of how a model was fitted: it uses the models through their protocols
(:mod:`clvmodels.models.protocol`), their ``data_kind`` and :func:`is_posterior`.

* **Transaction models** (``data_kind`` ``"continuous"``: BG/NBD, MBG/NBD, Pareto/NBD;
  ``"discrete"``: BG/BB) with a spend model (Gamma-Gamma) or a constant spend:
  CLV = margin × expected spend × discounted expected purchases.
* **Contractual models** (``data_kind == "contractual"``: sBG) with a revenue per period:
  CLV = margin × revenue per period × DERL, the discounted expected residual lifetime
  (Fader & Hardie 2010, eq. 6), valued at each customer's next renewal decision.

How the future of a transaction model is discounted (``discount_rate`` is an **annual** rate d):

* ``"period"`` (default): purchases expected in each period of length ``period`` are
  discounted at the period's end, with factor (1 + d)^-(end in years);
* ``"continuous"``: each purchase is discounted at the moment it is expected, e^{-delta tau}
  with delta = ln(1 + d) per year, integrated numerically over a fine (daily) grid.

``horizon=np.inf`` uses the model's closed form where it has one: a class attribute
``dert_discounting`` names the discounting its ``expected_discounted_transactions`` (DERT)
implies — ``"continuous"`` (Pareto/NBD, FHL 2005 eq. 2) or ``"period"`` (BG/BB, FHS 2010 eq. 14:
one opportunity per period) — and the valuation must be asked for that discounting.

The cumulative expected purchases are evaluated at the period boundaries in one broadcast over
the *unique* data rows and differenced by Abel summation — no loop over periods — in chunks of
rows *and* of boundaries (running sums), so memory stays bounded whatever the horizon and the
number of customers. At most :data:`MAX_PERIODS` period boundaries are summed (a longer horizon
is refused with advice: a longer period, a shorter horizon, or ``np.inf``).
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvmodels._summary_rules import TIME_UNITS, time_unit_days
from clvmodels._validation import ValidationError, fail_rows
from clvmodels.datakinds import kind_rows
from clvmodels.models.base import NotFittedError
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of

__all__ = [
    "MAX_PERIODS",
    "ValueSettings",
    "customer_lifetime_value",
    "discount_factors",
    "parse_horizon",
    "period_length",
    "value_settings",
]

_CHUNK_CELLS = 4_000_000  # unique rows × boundaries evaluated at once (~32 MB of float64)
_BOUNDARY_CHUNK = 4_096  # period boundaries evaluated at once (running Abel sums beyond)
#: the most period boundaries a valuation sums over (e.g. 273 years of daily periods, 8,333
#: years of months); a longer horizon is refused with advice rather than run for hours
MAX_PERIODS = 100_000
_UNIT_NAMES = {"D": "day", "W": "week", "M": "month", "Y": "year"}
_TRANSACTION_KINDS = ("continuous", "discrete")
_ORDER = "customer_lifetime_value(transaction_model, spend_model, data, ...)"


def period_length(period: str | float, time_unit: str) -> float:
    """Length of ``period`` ("D", "W", "M", "Y", or a number of model time units) in units."""
    if isinstance(period, str):
        return time_unit_days(period) / time_unit_days(time_unit)
    value = float(period)
    if not value > 0:
        raise ValueError(f"period must be positive, got {period!r}")
    return value


_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([DWMY]?)\s*$", re.IGNORECASE)


def parse_horizon(text: str | float, time_unit: str) -> float:
    """A horizon such as "12M", "52W", "90D", "2Y" or a bare number (model time units),
    converted to ``time_unit`` with the fixed day counts of :data:`clvmodels.TIME_UNITS`."""
    if isinstance(text, int | float):
        value, unit = float(text), ""
    else:
        match = _HORIZON.match(str(text))
        if not match:
            raise ValueError(f"cannot read horizon {text!r}: write e.g. 12M, 52W, 365D or 1Y")
        value, unit = float(match.group(1)), match.group(2).upper()
    if not value > 0:
        raise ValueError(f"horizon must be positive, got {text!r}")
    if not unit:
        return value
    return value * time_unit_days(unit) / time_unit_days(time_unit)


def discount_factors(times: np.ndarray, discount_rate: float, time_unit: str) -> np.ndarray:
    """(1 + d)^-(t in years) for times in ``time_unit`` and an annual rate d."""
    years = np.asarray(times, dtype=float) * time_unit_days(time_unit) / TIME_UNITS["Y"]
    return np.exp(-math.log1p(discount_rate) * years)


# --------------------------------------------------------------------------------------
# the period grid, in chunks of boundaries
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Period boundaries t_1 < ... < t_K = horizon (model units) and their discount factors.

    ``step`` is the spacing (the last period may be partial: it ends at the horizon);
    ``midpoint`` discounts each step at its middle (the daily grid of continuous discounting)
    instead of its end. Never materialised whole: :meth:`chunks` yields the boundaries with
    their Abel-summation coefficients a chunk at a time.
    """

    horizon: float
    step: float
    count: int
    discount_rate: float
    unit: str
    midpoint: bool

    def times(self, k0: int, k1: int) -> np.ndarray:
        """Boundaries k0+1 .. k1 (1-based)."""
        t = np.arange(k0 + 1, k1 + 1, dtype=float) * self.step
        if k1 == self.count and len(t):
            t[-1] = self.horizon  # a last, partial period ends at the horizon
        return t

    def factors(self, k0: int, k1: int) -> np.ndarray:
        """Discount factors f_{k0+1} .. f_{k1} of the periods ending at those boundaries."""
        t = self.times(k0, k1)
        if self.midpoint:
            prev = np.concatenate([[k0 * self.step], t[:-1]])
            t = t - 0.5 * (t - prev)
        return discount_factors(t, self.discount_rate, self.unit)

    def chunks(self, size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(times, coef)`` per chunk of at most ``size`` boundaries such that, summed over
        the chunks, ``coef @ E(times)`` = sum_k f_k (E(t_k) - E(t_{k-1})), E(t_0) = 0.

        Abel summation: c_k = f_k - f_{k+1} for k < K and c_K = f_K, so that every f = 1 (no
        discounting) gives exactly E(horizon).
        """
        size = size or _BOUNDARY_CHUNK
        for k0 in range(0, self.count, size):
            k1 = min(self.count, k0 + size)
            f = self.factors(k0, min(self.count, k1 + 1))  # and the next chunk's first factor
            coef = f[: k1 - k0].copy()
            coef[: len(f) - 1] -= f[1:]
            yield self.times(k0, k1), coef


# --------------------------------------------------------------------------------------
# argument checks (all of them, once, before any computation)
# --------------------------------------------------------------------------------------


def _describe(obj: Any) -> str:
    if isinstance(obj, pd.DataFrame):
        return "a DataFrame (the customers' data go third)"
    if isinstance(obj, bool | numbers.Number | str):
        return f"{type(obj).__name__} {obj!r}"
    if getattr(obj, "data_kind", None) is not None:
        return f"a {label_of(obj)} model"
    return f"a {type(obj).__name__}"


def _posterior(model: Any) -> bool:
    """:func:`is_posterior`, also seeing through proxies that forward attribute access."""
    return is_posterior(model) or bool(getattr(model, "bayesian", False))


def _check_fitted(model: Any, argument: str) -> None:
    if not hasattr(model, "params_"):
        raise NotFittedError(f"{argument} ({label_of(model)}) is not fitted: call fit(data) "
                             "first, or build it with from_params(...)")


_NEEDS = {
    ("continuous", False): ("probability_alive", "cumulative_expected_purchases"),
    ("discrete", False): ("probability_alive", "cumulative_expected_purchases"),
    ("continuous", True): ("discounted_purchase_chunks", "n_draws"),
    ("discrete", True): ("discounted_purchase_chunks", "n_draws"),
    ("contractual", False): ("discounted_expected_residual_lifetime", "conditional_survival"),
    ("contractual", True): ("residual_lifetime_draws", "conditional_survival"),
}


def _model_kind(model: Any) -> str:
    """The first argument's data kind, after checking it is a fitted model that can value."""
    kind = None if isinstance(model, bool | numbers.Number | str | pd.DataFrame | pd.Series
                                     | np.ndarray) else getattr(model, "data_kind", None)
    if kind == "spend":
        raise TypeError(
            f"transaction_model is a spend model ({label_of(model)}): the first argument must "
            "be the transaction model (BG/NBD, Pareto/NBD, BG/BB ...) or a contractual model "
            f"(sBG), the second the spend model — {_ORDER}. Did you swap them?")
    if kind not in (*_TRANSACTION_KINDS, "contractual"):
        raise TypeError(
            "transaction_model (the first argument) must be a fitted transaction model "
            "(BG/NBD, Pareto/NBD, BG/BB ...) or contractual model (sBG); got "
            f"{_describe(model)}. The order is {_ORDER}")
    missing = [m for m in _NEEDS[kind, _posterior(model)] if not hasattr(type(model), m)
               and not hasattr(model, m)]
    if missing:
        raise TypeError(f"transaction_model ({_describe(model)}) cannot be valued: it has no "
                        f"{', '.join(missing)}")
    _check_fitted(model, "transaction_model")
    return kind


def _check_spend(spend: Any) -> Any:
    """The second argument for a transaction model: a fitted spend model or a number."""
    if isinstance(spend, numbers.Real) and not isinstance(spend, bool):
        value = float(spend)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"spend_model given as a number is the spend per transaction: it "
                             f"must be finite and >= 0, got {spend!r}")
        return value
    kind = None if isinstance(spend, bool | str | pd.DataFrame | pd.Series | np.ndarray) \
        else getattr(spend, "data_kind", None)
    if kind in _TRANSACTION_KINDS:
        raise TypeError(
            f"spend_model is a transaction model ({label_of(spend)}): the second argument must "
            f"be a spend model (e.g. GammaGamma) or a number — {_ORDER}. Did you swap them?")
    if kind == "contractual":
        raise TypeError(f"spend_model is a contractual model ({label_of(spend)}): a contractual "
                        f"model goes first, with the revenue per period second — {_ORDER}")
    if kind != "spend" or not hasattr(spend, "expected_spend"):
        raise TypeError(
            "spend_model (the second argument) must be a fitted spend model (e.g. GammaGamma) "
            f"or a number (the same spend per transaction for everyone); got {_describe(spend)}")
    _check_fitted(spend, "spend_model")
    return spend


def _real(value: Any, name: str, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number ({meaning}), got {_describe(value)}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number ({meaning}), got {value!r}")
    return out


def _as_percent(value: float) -> str:
    share = value / 100
    return f"{share:.2f}" if round(share, 2) == share else f"{share:g}"


def _check_margin(margin: Any) -> float:
    m = _real(margin, "margin", "the share of revenue kept as profit, in [0, 1]")
    if m > 1:
        hint = (f"; for {m:g} % write margin={_as_percent(m)}" if m <= 100 else "")
        raise ValueError(f"margin is the share of revenue kept as profit, in [0, 1]: got "
                         f"{margin!r}{hint}")
    if m < 0:
        raise ValueError(f"margin must be in [0, 1] (a share of revenue), got {margin!r}")
    return m


def _check_discount_rate(rate: Any) -> float:
    d = _real(rate, "discount_rate", "an annual rate such as 0.10")
    if d < 0:
        raise ValueError(f"discount_rate must be an annual rate in [0, 1), e.g. 0.10 for 10 %; "
                         f"got {rate!r}")
    if d >= 1:
        hint = f"; for {d:g} % a year write discount_rate={_as_percent(d)}" if d <= 100 else ""
        raise ValueError(f"discount_rate={rate!r} is {d * 100:g} % a year: discount rates are "
                         f"annual fractions in [0, 1){hint}")
    return d


def _check_interval(interval: Any) -> float:
    q = _real(interval, "interval", "the probability of the credible intervals")
    if not 0 < q < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    return q


def _check_acquisition_cost(cost: Any, data: pd.DataFrame) -> None:
    if cost is None:
        return
    from clvmodels.kpis import clv_to_cac

    if not isinstance(cost, pd.Series):
        _real(cost, "acquisition_cost", "the cost to acquire a customer")
    clv_to_cac(pd.Series(1.0, index=data.index), cost)  # values and ids, before the work


def _whole(value: float) -> bool:
    return abs(value - round(value)) <= 1e-9 * max(1.0, abs(value))


def _horizon(horizon: Any, unit: str, kind: str) -> float:
    """The horizon in model time units (a whole number of periods for discrete/contractual)."""
    name = _UNIT_NAMES.get(unit, unit)
    if isinstance(horizon, str):
        value = parse_horizon(horizon, unit)
    elif isinstance(horizon, numbers.Real) and not isinstance(horizon, bool):
        value = float(horizon)
    else:
        raise TypeError(f"horizon must be a number of {name}s (the model's time unit), a "
                        f"string such as '12M', '52W', '90D', '2Y', or np.inf; got "
                        f"{_describe(horizon)}")
    if math.isnan(value):
        raise ValueError(f"horizon is NaN: give a number of {name}s, a string such as '12M', "
                         "or np.inf (where the model has a closed form)")
    if not value > 0:
        raise ValueError(f"horizon must be positive, got {horizon!r}")
    if kind != "continuous" and math.isfinite(value):
        if not _whole(value):
            what = ("opportunities" if kind == "discrete" else "periods")
            raise ValueError(
                f"horizon {horizon!r} is {value:.6g} {what} of one {name}: a "
                f"{'discrete-time' if kind == 'discrete' else 'contractual'} model counts "
                f"whole {what}; give a whole number (e.g. {max(1, math.floor(value))})")
        value = float(round(value))
    return value


def _period(period: Any, unit: str, kind: str) -> float:
    """Length of ``period`` in model units (default: a month, or one period/opportunity)."""
    name = _UNIT_NAMES.get(unit, unit)
    if period is None:
        return 1.0 if kind != "continuous" else time_unit_days("M") / time_unit_days(unit)
    if isinstance(period, str):
        if period not in TIME_UNITS:
            raise ValueError(f"period must be one of {list(TIME_UNITS)} or a positive number of "
                             f"{name}s, got {period!r}")
        value = time_unit_days(period) / time_unit_days(unit)
    else:
        value = _real(period, "period", f"a number of {name}s or 'D', 'W', 'M', 'Y'")
        if not value > 0:
            raise ValueError(f"period must be positive, got {period!r}")
    if kind == "discrete" and not (_whole(value) and value >= 1):
        raise ValueError(
            f"period {period!r} is {value:.6g} opportunities of one {name}: a discrete-time "
            "model's transactions happen at whole opportunities; give a whole number of "
            "opportunities (period=1, the default, discounts each opportunity at its end)")
    if kind == "contractual" and abs(value - 1.0) > 1e-9:
        raise ValueError(
            f"period {period!r} is not the contract period: a contractual model is paid one "
            f"period ({name}) at a time and discounts each payment per period; leave period "
            "unset")
    return float(round(value)) if kind == "discrete" else value


def _grid(horizon: float, step: float, discounting: str, discount_rate: float,
          unit: str) -> _Grid:
    name = _UNIT_NAMES.get(unit, unit)
    if discounting == "continuous":
        step, what = 1.0 / time_unit_days(unit), "days (continuous discounting's daily grid)"
        advice = "discounting='period' with a period such as 'M'"
    else:
        what, advice = f"periods of {step:g} {name}s", "a longer period= (e.g. 'M' or 'Y')"
    count = math.ceil(horizon / step - 1e-9)
    if count > MAX_PERIODS:
        raise ValueError(
            f"horizon {horizon:g} {name}s is {count:,} {what}, more than the {MAX_PERIODS:,} "
            f"period boundaries valuation sums over (MAX_PERIODS): give a shorter horizon, "
            f"{advice}, or horizon=np.inf where the model has a closed form")
    return _Grid(horizon, step, count, discount_rate, unit,
                 midpoint=discounting == "continuous")


@dataclass(frozen=True)
class ValueSettings:
    """Valuation arguments after :func:`value_settings` checked them.

    ``horizon`` and ``step`` (the discounting period's length) are in model time units
    (``horizon`` may be ``inf``); ``period`` is the period as given, or the default used.
    """

    data_kind: str
    time_unit: str
    horizon: float
    discount_rate: float
    margin: float
    step: float
    period: str | float
    discounting: str
    interval: float

    def grid(self) -> _Grid:
        """The finite horizon's period boundaries (at most :data:`MAX_PERIODS`)."""
        return _grid(self.horizon, self.step, self.discounting, self.discount_rate,
                     self.time_unit)


def value_settings(
    data_kind: str,
    time_unit: str | None,
    *,
    horizon: float | str,
    discount_rate: float,
    margin: float = 1.0,
    period: str | float | None = None,
    discounting: str = "period",
    interval: float = 0.9,
) -> ValueSettings:
    """Check valuation arguments as :func:`customer_lifetime_value` does, without a model.

    ``data_kind`` is the model's (``"continuous"``, ``"discrete"`` or ``"contractual"``),
    ``time_unit`` its unit (one opportunity / contract period for discrete / contractual
    models). The rules, each refused with a message that says what to write instead:

    * ``margin`` in [0, 1] (``margin=30`` suggests 0.30);
    * ``discount_rate`` an annual rate in [0, 1) (``discount_rate=10`` suggests 0.10);
    * ``horizon`` > 0, not NaN; a number of model units or "12M", "52W", "90D", "2Y"; a whole
      number of opportunities / periods for discrete / contractual models; ``np.inf`` only
      with a positive rate (and, checked with the model, a closed form);
    * ``period`` "D", "W", "M", "Y" or a positive number of units: a whole number of
      opportunities for discrete models, exactly one period for contractual ones;
    * ``discounting`` "period" or "continuous" (continuous-time models only);
    * a finite horizon of at most :data:`MAX_PERIODS` period boundaries (daily ones for
      continuous discounting), so the work stays bounded;
    * ``interval`` in (0, 1).

    Batch code (:func:`clvmodels.workflow.forecast`) calls it before fitting so a bad argument
    fails at once.
    """
    if data_kind not in (*_TRANSACTION_KINDS, "contractual"):
        raise ValueError(f"data_kind must be 'continuous', 'discrete' or 'contractual', got "
                         f"{data_kind!r}")
    margin = _check_margin(margin)
    rate = _check_discount_rate(discount_rate)
    interval = _check_interval(interval)
    if discounting not in ("period", "continuous"):
        raise ValueError(f"discounting must be 'period' or 'continuous', got {discounting!r}")
    if discounting == "continuous" and data_kind == "discrete":
        raise ValueError("a discrete-time model's transactions happen at opportunities: value "
                         "them with discounting='period' (each opportunity discounted at its "
                         "end)")
    if discounting == "continuous" and data_kind == "contractual":
        raise ValueError("a contractual model is paid once a period: discounting must be "
                         "'period' (each payment discounted per period)")
    if time_unit is None:
        raise ValueError(
            "the time unit is unknown, so the annual discount rate cannot be converted: fit "
            "the model on rfm_summary() / contract_summary() output, set "
            "data.attrs['time_unit'], or build the model with from_params(time_unit=...)")
    if time_unit not in TIME_UNITS:
        raise ValueError(f"unknown time unit {time_unit!r}; use one of {list(TIME_UNITS)}")
    h = _horizon(horizon, time_unit, data_kind)
    if math.isinf(h) and rate == 0:
        raise ValueError("horizon=np.inf needs a positive discount_rate (undiscounted, the "
                         "value of an infinite future can be infinite)")
    step = _period(period, time_unit, data_kind)
    if period is None:  # the default, as used
        period = "M" if data_kind == "continuous" else 1
    out = ValueSettings(data_kind, time_unit, h, rate, margin, step, period, discounting,
                        interval)
    if math.isfinite(h):
        out.grid()  # refuses more than MAX_PERIODS boundaries
    return out


# --------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------


def customer_lifetime_value(
    transaction_model: Any,
    spend_model: Any,
    data: pd.DataFrame,
    *,
    horizon: float | str,
    discount_rate: float,
    margin: float = 1.0,
    period: str | float | None = None,
    discounting: Literal["period", "continuous"] = "period",
    acquisition_cost: float | pd.Series | None = None,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Per-customer CLV: the present value of future margin.

    Parameters
    ----------
    transaction_model
        A fitted transaction model — continuous time (BG/NBD, MBG/NBD, Pareto/NBD) or
        discrete opportunities (BG/BB) — or a fitted contractual model (sBG); maximum
        likelihood or Bayesian.
    spend_model
        With a transaction model: a fitted spend model (:class:`~clvmodels.GammaGamma`,
        Bayesian or not) or a number (the same spend per transaction for everyone).
        With a contractual model: the **revenue per period** — a number, a Series on
        ``data``'s index (per-customer revenue) or the name of a column of ``data``.
    data
        Customers to value, in the model's time unit: ``frequency, recency, T`` (discrete:
        ``T`` or ``periods`` = opportunities) [+ ``monetary_value``], or for a contractual
        model ``periods, churned`` (:func:`clvmodels.contract_summary`). Not modified.
    horizon
        How far ahead: a number of model time units (weeks for a weekly model; opportunities
        for BG/BB; periods for sBG), a string "12M", "52W", "90D", "2Y" (converted with the
        model's time unit; discrete and contractual models need it to be a whole number of
        opportunities / periods), or ``np.inf`` where a closed form exists: a transaction
        model's DERT (its ``dert_discounting`` says which discounting it implies: Pareto/NBD
        ``"continuous"``; BG/BB ``"period"`` with ``period`` = one opportunity), a contractual
        model's DERL (always). Maximum-likelihood models only for transaction DERT.
    discount_rate
        **Annual** discount rate in [0, 1), e.g. 0.10 (converted per period with the model's
        time unit). ``horizon=np.inf`` needs it > 0.
    margin
        Share of revenue that is profit, in [0, 1] (1.0 = value revenue).
    period
        Bucket length for ``discounting="period"``: "D", "W", "M" (30.4375 days), "Y", or a
        number of model time units. Default: a month for continuous-time models, one
        opportunity for BG/BB (a whole number of opportunities is required), one contract
        period for contractual models (nothing else is allowed: one payment per period).
    discounting
        "period" (discount at each period's end) or "continuous" (continuous-time
        transaction models only).
    acquisition_cost
        Optional cost to acquire each customer (number > 0 or Series on ``data``'s index);
        adds ``clv_to_cac``.
    interval
        Bayesian models only: probability of the central credible intervals ``clv_lower`` /
        ``clv_upper`` and of the base's total (default 0.9).

    Returns
    -------
    DataFrame on ``data``'s index. Transaction models: ``expected_purchases``
    (undiscounted, over the horizon), ``probability_alive``, ``expected_spend``, ``clv``
    [, ``clv_to_cac``]. Contractual models: ``expected_periods`` (undiscounted expected
    further payments over the horizon), ``probability_active`` (probability of paying the
    next period: 0 for churned customers), ``revenue_per_period``, ``clv``
    [, ``clv_to_cac``].

    With ``horizon=np.inf`` the undiscounted expected count can diverge (Pareto/NBD
    s <= 1, BG/BB gamma <= 1, sBG alpha <= 1: some customers almost never leave); then
    ``expected_purchases`` / ``expected_periods`` hold the *discounted* count (DERT / DERL)
    instead, ``attrs["expected_count"]`` says so and a ``UserWarning`` is issued — never a
    silent NaN or inf. Otherwise ``attrs["expected_count"] == "undiscounted"``.

    Contractual valuation follows Fader & Hardie (2010): each active customer is valued at
    their next renewal decision, that payment (if made) undiscounted, the later ones
    discounted per period; CLV = margin × revenue per period × DERL (eq. 6), over a finite
    horizon of K periods the next K renewal decisions only.

    With a Bayesian model every column is a posterior mean and ``clv_lower`` / ``clv_upper``
    are added; ``attrs`` then carry ``total_clv`` (posterior mean of the base's total) and
    ``total_clv_lower`` / ``total_clv_upper``. A Bayesian spend model's draws (a
    ``BayesianGammaGamma``) are paired with the transaction model's, so the interval
    includes spend uncertainty. The draws are processed in chunks of customers (the model's
    ``discounted_purchase_chunks``; contractual: ``residual_lifetime_draws`` on the unique
    rows), so memory stays bounded whatever the number of customers and draws.

    Raises
    ------
    TypeError
        An argument of the wrong kind: a spend model first or a transaction model second
        (swapped), a number or a DataFrame where a model belongs, a spend model with a
        contractual model.
    NotFittedError
        A model that is not fitted.
    ValueError
        A margin outside [0, 1] (``margin=30`` suggests 0.30), an annual discount rate
        outside [0, 1) (``discount_rate=10`` suggests 0.10), a horizon that is not positive,
        NaN, infinite without a closed form, not a whole number of periods (discrete /
        contractual), or longer than :data:`MAX_PERIODS` period boundaries; an unknown or
        non-positive period.
    """
    kind = _model_kind(transaction_model)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data (the third argument) must be a pandas DataFrame of customers, "
                        f"got {_describe(data)}")
    unit = getattr(transaction_model, "time_unit_", None) or data.attrs.get("time_unit")
    s = value_settings(kind, unit, horizon=horizon, discount_rate=discount_rate, margin=margin,
                       period=period, discounting=discounting, interval=interval)
    _check_acquisition_cost(acquisition_cost, data)
    settings = dict(time_unit=s.time_unit, horizon=s.horizon, discount_rate=s.discount_rate,
                    margin=s.margin, period=s.period, discounting=s.discounting)
    if kind == "contractual":
        revenue = _revenue(spend_model, data)
        return _contract_value(transaction_model, revenue, data, horizon=s.horizon,
                               rate=s.discount_rate, acquisition_cost=acquisition_cost,
                               interval=s.interval, settings=settings)
    spend = _check_spend(spend_model)
    if math.isinf(s.horizon):
        _check_closed_form(transaction_model, s)
        grid = None
    else:
        grid = s.grid()
    if _posterior(transaction_model):
        assert grid is not None  # a posterior model has no closed form (checked above)
        return _posterior_lifetime_value(transaction_model, spend, data, grid=grid,
                                         margin=s.margin, acquisition_cost=acquisition_cost,
                                         interval=s.interval, settings=settings)
    return _mle_lifetime_value(transaction_model, spend, data, kind=kind, grid=grid,
                               rate=s.discount_rate, unit=s.time_unit, margin=s.margin,
                               acquisition_cost=acquisition_cost, settings=settings)


def _check_closed_form(model: Any, s: ValueSettings) -> None:
    """horizon=np.inf: the model must have a DERT whose discounting matches the request."""
    kind, discounting, step, unit = s.data_kind, s.discounting, s.step, s.time_unit
    implied = getattr(model, "dert_discounting", None)
    label = label_of(model)
    if implied is None or _posterior(model) or not hasattr(model,
                                                            "expected_discounted_transactions"):
        raise ValueError(
            f"horizon=np.inf needs a closed form, and {label} has none (closed forms: "
            "Pareto/NBD's DERT with discounting='continuous', BG/BB's DERT, maximum "
            "likelihood): give a finite horizon, e.g. 100 years of months")
    if implied != discounting:
        raise ValueError(
            f"horizon=np.inf uses {label}'s closed form (DERT), which discounts "
            f"{'continuously' if implied == 'continuous' else 'per period'}: pass "
            f"discounting={implied!r}")
    if implied == "period" and abs(step - 1.0) > 1e-9:
        name = _UNIT_NAMES.get(unit, unit)
        raise ValueError(
            f"horizon=np.inf uses {label}'s closed form (DERT), which discounts each "
            f"{'opportunity' if kind == 'discrete' else 'period'} ({name}) at its end: the "
            f"period must be one {name} (leave period unset), got {step:g} {name}s")


def _frame_of(rows: Any) -> pd.DataFrame:
    frame = rows.to_frame().drop(columns="weight")
    frame.attrs["time_unit"] = rows.time_unit
    return frame


def _mle_lifetime_value(model: Any, spend: Any, data: pd.DataFrame, *, kind: str,
                        grid: _Grid | None, rate: float, unit: str, margin: float,
                        acquisition_cost: Any, settings: dict[str, Any]) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a maximum-likelihood transaction model."""
    p_alive = model.probability_alive(data)  # also validates the data and their time unit
    if isinstance(spend, float):
        spend_values = np.full(len(data), spend)
    else:
        spend_values = spend.expected_spend(data).to_numpy(dtype=float)
    rows = kind_rows(data, kind, validate=False, time_unit=unit)
    frame = _frame_of(rows)
    count = "undiscounted"
    if grid is None:
        dert = model.expected_discounted_transactions
        extra = {} if getattr(model, "time_unit_", None) else {"time_unit": unit}
        disc_rows = dert(frame, rate, **extra).to_numpy(dtype=float)
        if kind == "continuous":
            total_rows = model.cumulative_expected_purchases(frame, np.array([np.inf]))[:, 0]
        else:
            total_rows = dert(frame, 0.0, **extra).to_numpy(dtype=float)
        if not np.all(np.isfinite(total_rows)):
            total_rows, count = disc_rows, _divergent(label_of(model), "expected_purchases")
    else:
        disc_rows, total_rows = _discounted_purchases(model, frame, grid)
    out = pd.DataFrame(index=data.index)
    out["expected_purchases"] = np.asarray(total_rows)[rows.inverse]
    out["probability_alive"] = p_alive.to_numpy()
    out["expected_spend"] = spend_values
    out["clv"] = margin * spend_values * np.asarray(disc_rows)[rows.inverse]
    _add_cac(out, acquisition_cost)
    out.attrs.update(settings, expected_count=count)
    return out


def _divergent(label: str, column: str) -> str:
    note = (f"discounted: the undiscounted expected count over an infinite horizon diverges "
            f"for this {label} (customers who almost never leave), so {column} holds the "
            "discounted count")
    warnings.warn(note, UserWarning, stacklevel=4)
    return note


def _add_cac(out: pd.DataFrame, acquisition_cost: Any) -> None:
    if acquisition_cost is not None:
        from clvmodels.kpis import clv_to_cac

        out["clv_to_cac"] = clv_to_cac(out["clv"], acquisition_cost)


def _discounted_purchases(model: Any, rows: pd.DataFrame, grid: _Grid
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: sum_k f_k (E(t_k) - E(t_{k-1})) and E(t_K), by Abel summation.

    Chunks of boundaries (running sums) × chunks of rows: at most :data:`_CHUNK_CELLS` cells
    of cumulative expectations at once, whatever the horizon.
    """
    n = len(rows)
    disc, total = np.zeros(n), np.empty(n)
    step = max(1, _CHUNK_CELLS // min(grid.count, _BOUNDARY_CHUNK))
    for times, coef in grid.chunks():
        for start in range(0, n, step):
            part = rows.iloc[start:start + step]
            cum = model.cumulative_expected_purchases(part, times)  # (rows, k)
            disc[start:start + step] += cum @ coef
            total[start:start + step] = cum[:, -1]
    return disc, total


# --------------------------------------------------------------------------------------
# Bayesian transaction models
# --------------------------------------------------------------------------------------


def _posterior_lifetime_value(model: Any, spend: Any, data: pd.DataFrame, *, grid: _Grid,
                              margin: float, acquisition_cost: Any, interval: float,
                              settings: dict[str, Any]) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a Bayesian transaction model (posterior draws)."""
    cols, total = _posterior_clv(model, spend, data, grid, margin=margin, interval=interval)
    out = pd.DataFrame(cols, index=data.index)
    _add_cac(out, acquisition_cost)
    _total_attrs(out, total, interval)
    out.attrs.update(settings, expected_count="undiscounted")
    return out


def _total_attrs(out: pd.DataFrame, total: np.ndarray, interval: float) -> None:
    q = (1 - interval) / 2
    lo, hi = np.quantile(total, [q, 1 - q])
    out.attrs.update(interval=interval, total_clv=float(total.mean()),
                     total_clv_lower=float(lo), total_clv_upper=float(hi),
                     n_draws=len(total))


def _even_draws(n: int, k: int) -> np.ndarray:
    """k evenly spaced indices out of n draws (all of them, in order, when k == n)."""
    return np.arange(n) if k == n else np.round(np.linspace(0, n - 1, k)).astype(np.int64)


@dataclass(frozen=True)
class _Part:
    """Customers (positions), their discounted draws (S, n) and posterior means."""

    customers: np.ndarray
    discounted: np.ndarray
    expected_purchases: np.ndarray
    probability_alive: np.ndarray


def _long_horizon_part(model: Any, data: pd.DataFrame, grid: _Grid, width: int, p0: int,
                       p1: int, draws: np.ndarray) -> Iterator[_Part]:
    """Customers p0..p1 over a horizon of many boundary chunks: running sums of each chunk's
    discounted draws (the last chunk's means are those at the horizon)."""
    sub = data.iloc[p0:p1]
    n = p1 - p0
    disc = np.zeros((len(draws), n))
    ep, pa = np.empty(n), np.empty(n)
    for times, coef in grid.chunks(width):
        chunks = model.discounted_purchase_chunks(sub, times, coef, draws=draws)
        for i in range(len(chunks)):
            for chunk in chunks.block(i):
                disc[:, chunk.customers] += chunk.discounted
                ep[chunk.customers] = chunk.expected_purchases
                pa[chunk.customers] = chunk.probability_alive
    yield _Part(np.arange(p0, p1), disc, ep, pa)


def _posterior_clv(
    transaction_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    grid: _Grid,
    *,
    margin: float,
    interval: float,
    n_jobs: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-customer CLV draws reduced on the fly: ``(columns, total CLV draws)``.

    For each posterior draw s and customer i,
    ``CLV_i^s = margin · E[M_i]^s · sum_k coef_k E[Y_i(t_k)]^s`` — the discounted sum of the
    cumulative expected purchases at the period boundaries by Abel summation — with the
    spend model's draws paired with the transaction model's (evenly thinned to the smaller
    number when they differ). The transaction model hands its draws over in chunks of
    customers (``discounted_purchase_chunks``), the spend model for the customers asked for
    (``spend_draws_by_customer``); each chunk is reduced to mean and central ``interval`` —
    never customers × draws × periods at once. A horizon of more boundaries than fit one
    chunk (draws × boundaries <= :data:`_CHUNK_CELLS`) is summed chunk by chunk over parts
    of the customers. ``n_jobs`` threads (default: one per CPU) process the blocks in
    parallel (numpy releases the GIL in the heavy loops).

    Returns the columns ``expected_purchases``, ``probability_alive`` and ``expected_spend``
    (posterior means), ``clv``, ``clv_lower``, ``clv_upper`` and the draws of the base's
    total CLV.
    """
    import os
    from functools import partial

    n = len(rfm)
    S_t = transaction_model.n_draws
    bayes_spend = hasattr(spend_model, "spend_draws_by_customer")
    S_s = spend_model.n_draws if bayes_spend else S_t
    S = min(S_t, S_s)
    draws = _even_draws(S_t, S)
    width = max(1, min(_BOUNDARY_CHUNK, _CHUNK_CELLS // S_t))
    blocks: list[Callable[[], Iterator[Any]]]
    if grid.count <= width:
        ((times, coef),) = grid.chunks(width)
        chunks = transaction_model.discounted_purchase_chunks(rfm, times, coef, draws=draws)
        blocks = [partial(chunks.block, i) for i in range(len(chunks))]
    else:
        size = max(1, _CHUNK_CELLS // S)
        blocks = [partial(_long_horizon_part, transaction_model, rfm, grid, width, p0,
                          min(n, p0 + size), draws) for p0 in range(0, n, size)]
    spend_draws = None
    spend_fixed: np.ndarray | None = None
    if isinstance(spend_model, int | float):
        spend_fixed = np.full(n, float(spend_model))
    elif bayes_spend:
        spend_draws = spend_model.spend_draws_by_customer(rfm, draws=_even_draws(S_s, S))
    else:
        spend_fixed = spend_model.expected_spend(rfm).to_numpy(dtype=float)
    q = (1 - interval) / 2
    out = {name: np.empty(n) for name in ("expected_purchases", "probability_alive",
                                           "expected_spend", "clv", "clv_lower", "clv_upper")}

    def block(make: Callable[[], Iterator[Any]]) -> np.ndarray:
        part = np.zeros(S)
        for chunk in make():
            cust = chunk.customers
            if spend_draws is None:
                spend = spend_fixed[cust][None, :]  # type: ignore[index]
                out["expected_spend"][cust] = spend_fixed[cust]  # type: ignore[index]
            else:
                spend = spend_draws.take(cust)
                out["expected_spend"][cust] = spend.mean(axis=0)
            clv = margin * spend * chunk.discounted
            out["clv"][cust] = clv.mean(axis=0)
            lo, hi = np.quantile(clv, [q, 1 - q], axis=0)
            out["clv_lower"][cust], out["clv_upper"][cust] = lo, hi
            out["expected_purchases"][cust] = chunk.expected_purchases
            out["probability_alive"][cust] = chunk.probability_alive
            part += clv.sum(axis=1)
        return part

    # blocks write disjoint customers, so they run in threads without locks
    workers = max(1, min(n_jobs or (os.cpu_count() or 1), len(blocks)))
    if workers == 1:
        total = sum((block(b) for b in blocks), np.zeros(S))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            total = sum(pool.map(block, blocks), np.zeros(S))
    return out, total


# --------------------------------------------------------------------------------------
# contractual models
# --------------------------------------------------------------------------------------


def _revenue(revenue: Any, data: pd.DataFrame) -> np.ndarray:
    """Revenue per period per customer from a number, a Series on the index or a column."""
    if isinstance(revenue, numbers.Real) and not isinstance(revenue, bool):
        value = float(revenue)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"revenue_per_period must be a finite number >= 0, got {revenue!r}")
        return np.full(len(data), value)
    if isinstance(revenue, str):
        if revenue not in data.columns:
            raise ValidationError(
                f"revenue_per_period {revenue!r} is not a column of the data; it has "
                f"{list(map(str, data.columns))}")
        name, values, frame = revenue, data[revenue], data
    elif isinstance(revenue, pd.Series):
        name = str(revenue.name) if revenue.name is not None else "revenue_per_period"
        if not revenue.index.is_unique:
            dup = revenue.index[revenue.index.duplicated()].unique()
            raise ValidationError(f"revenue_per_period has duplicated customer ids, e.g. "
                                  f"{dup[:5].tolist()}")
        missing = data.index.difference(revenue.index)
        if len(missing):
            raise ValidationError(
                f"revenue_per_period has no value for {len(missing)} customer(s) of the data, "
                f"e.g. {missing[:5].tolist()}: give a Series on the data's index")
        values = revenue.reindex(data.index)
        frame = values.to_frame(name)
    else:
        kind = None if isinstance(revenue, bool | pd.DataFrame | np.ndarray) \
            else getattr(revenue, "data_kind", None)
        got = f"a {label_of(revenue)} model" if kind is not None else _describe(revenue)
        raise TypeError(
            "with a contractual model the second argument is the revenue per period: a "
            f"number, a Series on the data's index or a column name; got {got}")
    numeric = pd.to_numeric(values, errors="coerce")
    v = numeric.to_numpy(dtype=float)
    fail_rows(frame, np.isnan(v), name, "revenue per period is missing or not numeric")
    fail_rows(frame, ~np.isfinite(v), name, "revenue per period is not finite")
    fail_rows(frame, v < 0, name, "revenue per period must be >= 0")
    return v


def _contract_value(model: Any, revenue: np.ndarray, data: pd.DataFrame, *, horizon: float,
                    rate: float, acquisition_cost: Any, interval: float,
                    settings: dict[str, Any]) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a contractual model: margin × revenue × DERL."""
    margin = settings["margin"]
    kw = {} if math.isinf(horizon) else {"horizon": horizon}
    active = model.conditional_survival(data, 1)  # also validates the data
    out = pd.DataFrame(index=data.index)
    bayes = _posterior(model)
    if bayes:
        draws, rows = model.residual_lifetime_draws(data, rate, **kw)  # (S, unique rows)
        plain, _ = model.residual_lifetime_draws(data, 0.0, **kw)
        inverse = np.asarray(rows.inverse)
        with np.errstate(invalid="ignore"):
            plain_rows = plain.mean(axis=0)
        derl_rows = draws.mean(axis=0)
    else:
        derl = model.discounted_expected_residual_lifetime(data, rate, **kw)
        plain_rows = model.discounted_expected_residual_lifetime(data, 0.0, **kw).to_numpy()
        derl_rows = derl.to_numpy(dtype=float)
        inverse = np.arange(len(data))
    count = "undiscounted"
    if not np.all(np.isfinite(plain_rows)):
        plain_rows, count = derl_rows, _divergent(label_of(model), "expected_periods")
    value = margin * revenue
    out["expected_periods"] = np.asarray(plain_rows, dtype=float)[inverse]
    out["probability_active"] = np.asarray(active, dtype=float)
    out["revenue_per_period"] = revenue
    out["clv"] = value * derl_rows[inverse]
    if bayes:
        q = (1 - interval) / 2
        lo, hi = np.quantile(draws, [q, 1 - q], axis=0)
        # a non-negative scale commutes with quantiles: per-customer intervals per row
        out["clv_lower"] = value * lo[inverse]
        out["clv_upper"] = value * hi[inverse]
        total = draws @ np.bincount(inverse, weights=value, minlength=draws.shape[1])
        _total_attrs(out, total, interval)
    _add_cac(out, acquisition_cost)
    out.attrs.update(settings, expected_count=count, valued_at="next renewal decision")
    return out
