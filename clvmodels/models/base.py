"""Machinery shared by every model: data handling, maximum likelihood, summaries, persistence.

A model module (``bgnbd.py`` …) holds its math once, as functions that broadcast over
parameter arrays. A model class names its parameters and points at those functions; the
classes here do everything else, so no data-handling or fitting code is copied per model.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from clvmodels._validation import ValidationError, validate_rfm
from clvmodels.models._math import NP
from clvmodels.rfm import compress_rfm

__all__ = [
    "ConvergenceWarning",
    "FitData",
    "MLEModel",
    "NotFittedError",
    "load_model",
    "rfm_arrays",
]


class NotFittedError(RuntimeError):
    """A prediction was asked of a model that has not been fitted."""


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without meeting its convergence criteria."""


@dataclass(frozen=True)
class FitData:
    """Unique ``(x, t_x, T[, m_x])`` rows with integer weights: what every likelihood sees.

    :meth:`levels` groups the rows by the distinct values of one column, so terms that
    depend on x alone (tens of values) or T alone (hundreds) are computed once per value.
    """

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    m: np.ndarray | None = None
    time_unit: str | None = None

    @property
    def n_customers(self) -> int:
        return int(self.w.sum())

    @property
    def n_rows(self) -> int:
        return len(self.w)

    def levels(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distinct values, row → value index, summed weight per value) of a column."""
        cache = self.__dict__.setdefault("_levels", {})
        if name not in cache:
            values, inverse = np.unique(getattr(self, name), return_inverse=True)
            inverse = inverse.reshape(-1)
            cache[name] = (values, inverse, np.bincount(inverse, weights=self.w,
                                                        minlength=len(values)))
        return cache[name]


def rfm_arrays(
    rfm: pd.DataFrame,
    *,
    time_unit: str | None = None,
    require_monetary: bool = False,
    what: str = "rfm",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """Validate an RFM frame and return float arrays ``x, t_x, T`` and its index.

    ``time_unit`` is the model's unit: a frame whose ``attrs["time_unit"]`` says otherwise is
    refused, because every prediction silently depends on it.
    """
    validate_rfm(rfm, require_monetary=require_monetary, what=what)
    unit = rfm.attrs.get("time_unit")
    if time_unit is not None and unit is not None and unit != time_unit:
        raise ValueError(
            f"{what} is in time unit {unit!r} but the model was fitted in {time_unit!r}; "
            "summarise the transactions again with the model's time_unit"
        )
    return (
        rfm["frequency"].to_numpy(dtype=float),
        rfm["recency"].to_numpy(dtype=float),
        rfm["T"].to_numpy(dtype=float),
        rfm.index,
    )


# --------------------------------------------------------------------------------------
# model registry (for load_model)
# --------------------------------------------------------------------------------------

_REGISTRY: dict[str, type[BaseModel]] = {}

#: Display names of the model classes (plots, reports).
MODEL_LABELS: dict[str, str] = {
    "BetaGeo": "BG/NBD",
    "ModifiedBetaGeo": "MBG/NBD",
    "ParetoNBD": "Pareto/NBD",
    "GammaGamma": "Gamma-Gamma",
    "BayesianBetaGeo": "Bayesian BG/NBD",
    "BayesianModifiedBetaGeo": "Bayesian MBG/NBD",
    "BayesianGammaGamma": "Bayesian Gamma-Gamma",
}


class BaseModel:
    """What every model (MLE or Bayesian) shares: parameters, time unit, persistence."""

    param_names: ClassVar[tuple[str, ...]] = ()
    #: short name used by the CLI and reports ("bgnbd", "pnbd", ...)
    short_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.param_names:
            _REGISTRY[cls.__name__] = cls

    params_: pd.Series
    time_unit_: str | None

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(rfm) first"
            )

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({ps})"
        return f"{type(self).__name__}(unfitted)"


class MLEModel(BaseModel):
    """Maximum-likelihood fitting on compressed rows, shared by every classical model.

    Subclasses set :attr:`param_names` and implement :meth:`_loglik` (per-row
    log-likelihood from a parameter dict, written once in the model module) and, where it is
    cheap, :meth:`_loglik_grad` (analytic gradient w.r.t. the natural parameters). Without an
    analytic gradient the pytensor version of the same likelihood is differentiated
    automatically.

    Parameters
    ----------
    penalizer
        Strength of an L2 penalty ``penalizer * sum(params ** 2)`` added to the *mean*
        negative log-likelihood per customer (as in lifetimes), so its effect does not change
        when rows are compressed or the data grow. 0 (default) is plain maximum likelihood.
    """

    #: whether the model is fitted on the spend column (Gamma-Gamma) rather than (x, t_x, T)
    uses_monetary: ClassVar[bool] = False

    def __init__(self, penalizer: float = 0.0) -> None:
        if not (isinstance(penalizer, int | float) and penalizer >= 0):
            raise ValueError("penalizer must be a non-negative number")
        self.penalizer = float(penalizer)

    # ---- to be provided by the model -------------------------------------------------
    def _loglik(self, p: dict[str, Any], d: FitData, m: Any = NP) -> Any:
        """Per-row log-likelihood (numpy by default; pytensor when ``m`` says so)."""
        raise NotImplementedError

    def _loglik_grad(self, p: dict[str, Any], d: FitData) -> np.ndarray | None:
        """Per-row gradient, shape (n_params, n_rows), or None to use autodiff."""
        return None

    def _value_and_grad(self, p: dict[str, Any], d: FitData
                        ) -> tuple[float, np.ndarray] | None:
        """Weighted total log-likelihood and its gradient in one pass, if the model has a
        fast fused form (the BG family does); None falls back to ``_loglik``/``_loglik_grad``.
        """
        return None

    def _initial_params(self, d: FitData) -> np.ndarray:
        return np.ones(len(self.param_names))

    def _fit_data(self, rfm: pd.DataFrame) -> FitData:
        c = compress_rfm(rfm)
        return FitData(c.frequency, c.recency, c.T, c.weights.astype(float),
                       time_unit=c.time_unit)

    def _data_summary(self, rfm: pd.DataFrame, d: FitData) -> dict[str, Any]:
        x = rfm["frequency"].to_numpy(float)
        return {
            "n_customers": len(rfm),
            "n_unique_rows": d.n_rows,
            "total_repeat_transactions": float(x.sum()),
            "share_zero_repeat": float(np.mean(x == 0)),
            "mean_T": float(rfm["T"].mean()),
        }

    # ---- objective -------------------------------------------------------------------
    def _params_dict(self, values: np.ndarray) -> dict[str, float]:
        return dict(zip(self.param_names, (float(v) for v in values), strict=True))

    def _autodiff_grad(self, d: FitData) -> Callable[[np.ndarray], np.ndarray]:
        import pytensor
        import pytensor.tensor as pt

        from clvmodels.models._math import tensor_namespace  # lazy: pytensor is heavy

        theta = pt.dvector("theta")
        p = {n: theta[i] for i, n in enumerate(self.param_names)}
        tensor_data = FitData(
            *(pt.as_tensor_variable(v) if isinstance(v, np.ndarray) else v
              for v in (d.x, d.tx, d.T, d.w, d.m)),
            time_unit=d.time_unit,
        )
        ll = pt.sum(d.w * self._loglik(p, tensor_data, m=tensor_namespace()))
        fn = pytensor.function([theta], pytensor.grad(ll, theta))
        return lambda values: np.asarray(fn(values), dtype=float)

    def _objective(self, d: FitData) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """Mean negative log-likelihood (+ penalty) and its gradient, on log parameters."""
        n = d.n_customers
        autodiff: Callable[[np.ndarray], np.ndarray] | None = None

        def f(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
            nonlocal autodiff
            theta = np.exp(np.clip(log_theta, -700, 700))
            p = self._params_dict(theta)
            with np.errstate(all="ignore"):
                fused = self._value_and_grad(p, d)
                if fused is not None:
                    total, grad = fused
                else:
                    total = float(np.einsum("i,i->", d.w, self._loglik(p, d)))
                    g_rows = self._loglik_grad(p, d)
                    if g_rows is None:
                        if autodiff is None:
                            autodiff = self._autodiff_grad(d)
                        grad = autodiff(theta)
                    else:
                        grad = np.einsum("ki,i->k", g_rows, d.w)
            value = -total / n + self.penalizer * float(np.sum(theta**2))
            grad_nat = -grad / n + 2.0 * self.penalizer * theta
            if not np.isfinite(value) or not np.all(np.isfinite(grad_nat)):
                return np.inf, np.zeros_like(log_theta)
            return value, grad_nat * theta  # chain rule to log scale

        return f

    @staticmethod
    def _hessian_log(f: Callable[[np.ndarray], tuple[float, np.ndarray]],
                     log_theta: np.ndarray) -> np.ndarray:
        """Hessian of the objective w.r.t. log parameters (central differences of the
        exact gradient)."""
        k = len(log_theta)
        H = np.empty((k, k))
        for j in range(k):
            up, dn = log_theta.copy(), log_theta.copy()
            up[j] += 1e-5
            dn[j] -= 1e-5
            H[:, j] = (f(up)[1] - f(dn)[1]) / 2e-5
        return 0.5 * (H + H.T)

    # ---- public API ------------------------------------------------------------------
    def fit(
        self,
        rfm: pd.DataFrame,
        *,
        initial_params: Sequence[float] | dict[str, float] | None = None,
        maxiter: int = 2000,
        tol: float = 1e-10,
    ) -> MLEModel:
        """Fit by maximum likelihood on the unique rows of ``rfm`` (weighted).

        Log-parameters are optimised with L-BFGS-B using exact gradients; the covariance is
        the inverse Hessian of the total negative log-likelihood at the optimum. Raises
        :class:`ValidationError` on bad data and warns (:class:`ConvergenceWarning`) with
        advice when the optimiser does not converge.
        """
        started = time.perf_counter()
        # the optimiser's tiny BLAS calls stall when BLAS threads contend for a busy
        # machine (milliseconds each instead of microseconds): one thread is fastest
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(rfm, started, initial_params, maxiter, tol)

    def _fit(self, rfm: pd.DataFrame, started: float,
             initial_params: Sequence[float] | dict[str, float] | None, maxiter: int,
             tol: float) -> MLEModel:
        d = self._fit_data(rfm)
        if d.n_customers == 0:
            raise ValidationError("no customers to fit on")
        f = self._objective(d)
        if initial_params is None:
            x0 = np.log(self._initial_params(d))
        else:
            if isinstance(initial_params, dict):
                initial_params = [initial_params[n] for n in self.param_names]
            start = np.asarray(initial_params, dtype=float)
            if start.shape != (len(self.param_names),) or np.any(start <= 0):
                raise ValueError(
                    f"initial_params must be {len(self.param_names)} positive values "
                    f"for {self.param_names}"
                )
            x0 = np.log(start)
        res = optimize.minimize(f, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": maxiter, "ftol": tol, "gtol": 1e-8})
        if not np.isfinite(res.fun):
            raise RuntimeError(
                f"{type(self).__name__} fit failed: the log-likelihood is not finite at the "
                "starting point; pass initial_params closer to plausible values"
            )
        # polish with Newton steps on the Hessian (finite differences of the exact
        # gradient), which the standard errors need anyway: quadratic convergence makes the
        # optimum tight to ~1e-10 in one or two steps
        x_opt = res.x
        H_log = self._hessian_log(f, x_opt)
        for _ in range(3):
            _, g_log = f(x_opt)
            if np.max(np.abs(g_log)) < 1e-10:
                break
            try:
                step = np.linalg.solve(H_log, g_log)
            except np.linalg.LinAlgError:
                break
            candidate = x_opt - step
            if not f(candidate)[0] <= f(x_opt)[0] + 1e-15:
                break
            x_opt = candidate
            if np.max(np.abs(step)) < 1e-4:
                break  # the Hessian moves by O(step) relative: keep it for the errors
            H_log = self._hessian_log(f, x_opt)
        res.x = x_opt
        theta = np.exp(res.x)
        _, g = f(res.x)
        grad_norm = float(np.max(np.abs(g)))
        self.converged_ = bool(grad_norm < 1e-4)
        n = d.n_customers
        self.params_ = pd.Series(theta, index=list(self.param_names), name="estimate")
        p = self._params_dict(theta)
        with np.errstate(all="ignore"):
            fused = self._value_and_grad(p, d)
        self.log_likelihood_ = (float(fused[0]) if fused is not None else
                                float(np.einsum("i,i->", d.w, self._loglik(p, d))))
        self.n_customers_ = n
        self.time_unit_ = d.time_unit
        self.data_summary_ = self._data_summary(rfm, d)
        # Hessian of the total negative log-likelihood on the natural scale, from the one on
        # log parameters: d2F/dt_i dt_j = (H_log_ij - delta_ij g_log_i) / (t_i t_j)
        H = (H_log - np.diag(g)) / np.outer(theta, theta) * n
        try:
            cov = np.linalg.inv(H)
            cov = 0.5 * (cov + cov.T)
            if np.any(np.diag(cov) <= 0) or not np.all(np.isfinite(cov)):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            cov = np.full((len(theta),) * 2, np.nan)
            warnings.warn(
                f"{type(self).__name__}: the Hessian is not positive definite at the optimum; "
                "standard errors are unavailable (the model may be unidentified on these "
                "data — try a penalizer or more data)",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_uncertainty(cov)
        k = len(theta)
        self.aic_ = 2 * k - 2 * self.log_likelihood_
        self.bic_ = k * math.log(n) - 2 * self.log_likelihood_
        self.fit_seconds_ = time.perf_counter() - started
        self._optimizer_result = res
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge (max |gradient| {grad_norm:.2e}, "
                f"optimiser: {res.message}). Check the data (enough repeat buyers?), try "
                "initial_params, a small penalizer, or another time_unit.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _set_uncertainty(self, cov: np.ndarray) -> None:
        """Covariance, standard errors and 95% intervals from the parameter covariance.

        The parameters are positive and were estimated on the log scale, so the intervals
        are Wald intervals for log(theta) (se of log theta = se / theta, delta method),
        mapped back: exp(log theta -/+ 1.96 se / theta). They never cross zero.
        """
        names = list(self.param_names)
        theta = self.params_.to_numpy()
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        se = np.sqrt(np.diag(cov))
        self.standard_errors_ = pd.Series(se, index=names, name="se")
        half = stats.norm.ppf(0.975) * se / theta
        self.confidence_intervals_ = pd.DataFrame(
            {"lower 95%": theta * np.exp(-half), "upper 95%": theta * np.exp(half)},
            index=names,
        )

    def summary(self) -> pd.DataFrame:
        """Parameter table: estimate, standard error, 95% confidence interval."""
        self._check_fitted()
        out = pd.concat([self.params_.rename("estimate"), self.standard_errors_.rename("se"),
                         self.confidence_intervals_], axis=1)
        out.attrs.update(
            log_likelihood=self.log_likelihood_, aic=self.aic_, bic=self.bic_,
            n_customers=self.n_customers_, converged=self.converged_,
            time_unit=self.time_unit_,
        )
        return out

    def summary_text(self) -> str:
        """The summary table with the fit statistics, as text."""
        s = self.summary()
        head = (f"{type(self).__name__} (maximum likelihood), {self.n_customers_:,} customers, "
                f"time unit {self.time_unit_!r}\n"
                f"log-likelihood {self.log_likelihood_:.4f}   AIC {self.aic_:.2f}   "
                f"BIC {self.bic_:.2f}   converged {self.converged_}\n")
        return head + s.to_string(float_format=lambda v: f"{v:.6g}")

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description of the fitted model."""
        self._check_fitted()
        from clvmodels._version import __version__

        return {
            "format": "clvmodels-model",
            "format_version": 1,
            "model": type(self).__name__,
            "estimator": "mle",
            "package_version": __version__,
            "time_unit": self.time_unit_,
            "params": {k: float(v) for k, v in self.params_.items()},
            "covariance": self.covariance_.to_numpy().tolist(),
            "penalizer": self.penalizer,
            "log_likelihood": self.log_likelihood_,
            "aic": self.aic_,
            "bic": self.bic_,
            "n_customers": self.n_customers_,
            "converged": self.converged_,
            "data_summary": self.data_summary_,
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Save as JSON (parameters, covariance, time unit, data summary, version).

        Written atomically; ``overwrite=False`` refuses to replace an existing file.
        """
        from clvmodels._io import write_text

        return write_text(json.dumps(self.to_dict(), indent=2, allow_nan=True), path,
                          force=overwrite)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> MLEModel:
        model = cls(penalizer=payload.get("penalizer", 0.0))
        names = list(cls.param_names)
        model.params_ = pd.Series([payload["params"][n] for n in names], index=names,
                                  name="estimate")
        model._set_uncertainty(np.asarray(payload["covariance"], dtype=float))
        model.time_unit_ = payload.get("time_unit")
        model.log_likelihood_ = payload["log_likelihood"]
        model.aic_ = payload["aic"]
        model.bic_ = payload["bic"]
        model.n_customers_ = payload["n_customers"]
        model.converged_ = payload["converged"]
        model.data_summary_ = payload.get("data_summary", {})
        return model

    # ---- helpers for predictions -------------------------------------------------------
    def _p(self) -> dict[str, float]:
        self._check_fitted()
        return {k: float(v) for k, v in self.params_.items()}

    def _arrays(self, rfm: pd.DataFrame, require_monetary: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
        self._check_fitted()
        return rfm_arrays(rfm, time_unit=self.time_unit_, require_monetary=require_monetary)


def check_horizon(t: float | np.ndarray, name: str = "t") -> np.ndarray:
    """Validate a forecast horizon (non-negative, finite unless allowed)."""
    arr = np.asarray(t, dtype=float)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {t!r}")
    return arr


def load_model(path: str | os.PathLike) -> BaseModel:
    """Load a model saved with ``model.save(path)`` (JSON for MLE models; netCDF for Bayes)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf", ".h5"):
        from clvmodels.models.bayes import load_netcdf_model  # lazy: pymc/arviz are heavy

        return load_netcdf_model(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.get("format") != "clvmodels-model":
        raise ValueError(f"{path} is not a clvmodels model file")
    name = payload["model"]
    if name not in _REGISTRY:
        raise ValueError(f"{path}: unknown model type {name!r}")
    return _REGISTRY[name].from_dict(payload)



class TransactionModel:
    """Public predictions shared by every transaction model (BG/NBD, MBG/NBD, Pareto/NBD).

    A model supplies ``_probability_alive(p, x, tx, T)``, ``_expected_purchases(p, x, tx, T,
    t)``, ``_expected_new(p, t)`` and, where the formula exists, ``_pmf(p, n, t)`` — the
    module's broadcasting functions. These methods validate the input, keep its index and
    never mutate it.
    """

    def probability_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """P(alive | frequency, recency, T) for each customer of ``rfm``."""
        x, tx, T, index = self._arrays(rfm)
        out = self._probability_alive(self._p(), x, tx, T)
        return pd.Series(out, index=index, name="probability_alive")

    def expected_purchases(self, rfm: pd.DataFrame, t: float) -> pd.Series:
        """Expected repeat purchases in (T, T + t] given each customer's history.

        ``t`` is in the model's time unit: a scalar, or one value per customer.
        """
        x, tx, T, index = self._arrays(rfm)
        t_arr = check_horizon(t)
        if t_arr.ndim > 0 and t_arr.shape != x.shape:
            raise ValueError("t must be a scalar or have one value per customer")
        out = self._expected_purchases(self._p(), x, tx, T, t_arr)
        return pd.Series(out, index=index, name="expected_purchases")

    def cumulative_expected_purchases(self, rfm: pd.DataFrame, times: np.ndarray
                                      ) -> np.ndarray:
        """Expected purchases in (T, T + t] for every customer × every t: shape (n, k).

        One broadcast over all horizons (no loop); valuation differences these per period.
        """
        x, tx, T, _ = self._arrays(rfm)
        times = check_horizon(times, "times").reshape(-1)
        return self._cumulative_expected(self._p(), x, tx, T, times)

    def _cumulative_expected(self, p: dict[str, Any], x: np.ndarray, tx: np.ndarray,
                             T: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(customers × times) expected purchases; models may override with a faster form."""
        return self._expected_purchases(p, x[:, None], tx[:, None], T[:, None], times[None, :])

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t]."""
        t_arr = check_horizon(t)
        out = self._expected_new(self._p(), t_arr)
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def purchase_count_probability(self, n: int | np.ndarray, t: float) -> float | np.ndarray:
        """P(X(t) = n): probability that a new customer makes n repeat purchases in (0, t]."""
        n_arr = np.asarray(n)
        if np.any(n_arr < 0) or np.any(n_arr != np.round(n_arr)):
            raise ValueError("n must be non-negative integers")
        out = self._pmf(self._p(), n_arr.astype(float), check_horizon(t))
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def expected_frequency_histogram(self, rfm: pd.DataFrame, max_frequency: int = 7
                                     ) -> pd.Series:
        """Expected number of customers with 0..max_frequency-1 and max_frequency+ repeat
        purchases in calibration, given each customer's own T (FHL 2005, Figure 1)."""
        _, _, T, _ = self._arrays(rfm)
        uT, counts = np.unique(T, return_counts=True)
        n = np.arange(max_frequency, dtype=float)
        probs = self._pmf(self._p(), n[None, :], uT[:, None])  # (unique T, k)
        expected = counts @ probs
        out = np.append(expected, len(T) - expected.sum())
        labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
        return pd.Series(out, index=labels, name="expected")

    def _pmf(self, p: dict[str, Any], n: Any, t: Any) -> np.ndarray:
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form purchase count distribution"
        )
