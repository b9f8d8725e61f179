"""Valuation's arguments: the rules they must follow (checked once, before any work), the
horizon and period arithmetic, and the period grid summed in chunks of boundaries."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvmodels._summary_rules import TIME_UNITS, time_unit_days
from clvmodels.models.base import NotFittedError
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of

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
