"""Maximum likelihood on weighted unique rows, shared by every classical model.

A family's class points :meth:`MLEModel._loglik` at its module's log-likelihood (and, where it
is cheap, an analytic gradient or a fused value-and-gradient pass); everything else — data
validation and compression with weights, the optimiser, the Newton polish, standard errors,
``conf_int``, ``summary``, ``from_params`` and JSON persistence — is here, once.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from clvmodels._validation import ValidationError
from clvmodels._version import __version__
from clvmodels.engines.spark_fit import fit_input
from clvmodels.models._math import NP
from clvmodels.models.base import (
    BaseModel,
    ConvergenceWarning,
    IdentificationError,
    frame_arrays,
)
from clvmodels.models.covariate_fit import PATTERN, CovariatePlan, newton, objective_hessian
from clvmodels.models.links import CovariateLayout, row_params
from clvmodels.rows import UniqueRows, unique_rows

__all__ = ["MLEModel"]


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
        With covariates the coefficients are penalised alike (a ridge).
    purchase_covariates, dropout_covariates, spend_covariates
        Columns of the fitting data holding customer attributes that scale the family's
        parameters (:mod:`clvmodels.models.links`, equation (1); which groups a family offers
        is in its :attr:`covariate_links`). Coefficients are learned as
        ``params_["purchase:<column>"]`` (``purchase:<column>[<level>]`` for a level of a
        categorical column) and every prediction then uses each customer's own covariates.
    covariate_reference
        ``{column: level}``: the reference level of a categorical covariate (default: its
        first category, or smallest level; see :mod:`clvmodels.covariates`).
    standardize_covariates
        Centre and scale numeric covariates by the fitting data's mean and standard deviation
        (coefficients per standard deviation); default False: per unit, as given.
    unseen_levels
        At prediction, a categorical level not seen in fitting is refused (``"raise"``,
        default, naming column and rows) or treated as the reference level
        (``"reference"``).
    """

    #: whether the model is fitted on the spend column (Gamma-Gamma) rather than (x, t_x, T)
    uses_monetary: ClassVar[bool] = False
    #: JSON format version written by :meth:`to_dict`
    FORMAT_VERSION: ClassVar[int] = 2

    def __init__(self, penalizer: float = 0.0, *,
                 purchase_covariates: Sequence[str] | None = None,
                 dropout_covariates: Sequence[str] | None = None,
                 spend_covariates: Sequence[str] | None = None,
                 covariate_reference: dict[str, Any] | None = None,
                 standardize_covariates: bool = False,
                 unseen_levels: str = "raise") -> None:
        if not (isinstance(penalizer, int | float) and penalizer >= 0):
            raise ValueError("penalizer must be a non-negative number")
        self.penalizer = float(penalizer)
        self._init_covariates(purchase_covariates, dropout_covariates, spend_covariates,
                              covariate_reference, standardize_covariates, unseen_levels)

    def get_params(self) -> dict[str, Any]:
        """The configuration given to ``__init__`` (scikit-learn convention)."""
        return {"penalizer": self.penalizer, **self._covariate_params()}

    # ---- to be provided by the model -------------------------------------------------
    def _loglik(self, p: dict[str, Any], d: UniqueRows, m: Any = NP) -> Any:
        """Per-row log-likelihood (numpy by default; pytensor when ``m`` says so)."""
        raise NotImplementedError

    def _loglik_grad(self, p: dict[str, Any], d: UniqueRows) -> np.ndarray | None:
        """Per-row gradient, shape (n_params, n_rows), or None to use autodiff."""
        return None

    def _value_and_grad(self, p: dict[str, Any], d: UniqueRows
                        ) -> tuple[float, np.ndarray] | None:
        """Weighted total log-likelihood and its gradient in one pass, if the model has a
        fast fused form (the BG family does); None falls back to ``_loglik``/``_loglik_grad``.
        """
        return None

    def _value_grad_hess(self, p: dict[str, Any], d: UniqueRows
                         ) -> tuple[float, np.ndarray, np.ndarray] | None:
        """Optional: weighted total log-likelihood, gradient and Hessian w.r.t. the natural
        parameters (scalar ``p``). A family with an analytic Hessian (Gamma-Gamma) returns
        them and the Newton polish and the covariance use it (:meth:`_analytic_hessian_log`);
        None (default) means central differences of the gradient (:meth:`_hessian_log`).
        """
        return None

    def _initial_params(self, d: UniqueRows) -> np.ndarray:
        return np.ones(len(self.param_names))

    def _fit_data(self, data: pd.DataFrame, weights: str | np.ndarray | None = None,
                  extra_codes: dict[str, np.ndarray] | None = None) -> UniqueRows:
        return self._data_rows(data, weights=weights, extra_codes=extra_codes)

    def _data_summary(self, data: pd.DataFrame, d: UniqueRows) -> dict[str, Any]:
        """Size of the data (weighted), for the summary and saved file."""
        out: dict[str, Any] = {"n_customers": d.n_customers, "n_unique_rows": d.n_rows}
        if self.data_kind in ("continuous", "discrete"):
            n = max(float(d.w.sum()), 1.0)
            out.update(total_repeat_transactions=float(np.dot(d.w, d.x)),
                       share_zero_repeat=float(np.dot(d.w, d.x == 0) / n),
                       mean_T=float(np.dot(d.w, d.T) / n))
        elif self.data_kind == "contractual":
            n = max(float(d.w.sum()), 1.0)
            out.update(share_churned=float(np.dot(d.w, d.churned) / n),
                       mean_periods=float(np.dot(d.w, d.periods) / n))
        return out

    # ---- objective -------------------------------------------------------------------
    def _params_dict(self, values: np.ndarray) -> dict[str, float]:
        return dict(zip(self.param_names, (float(v) for v in values), strict=True))

    def _autodiff_grad(self, d: UniqueRows) -> Callable[[np.ndarray], np.ndarray]:
        import pytensor
        import pytensor.tensor as pt

        from clvmodels.models._math import tensor_namespace  # lazy: pytensor is heavy

        theta = pt.dvector("theta")
        p = {n: theta[i] for i, n in enumerate(self.param_names)}
        tensor_data = UniqueRows(
            columns={k: pt.as_tensor_variable(v) for k, v in d.columns.items()},
            weights=d.weights, inverse=d.inverse, index=d.index, time_unit=d.time_unit)
        ll = pt.sum(d.w * self._loglik(p, tensor_data, m=tensor_namespace()))
        fn = pytensor.function([theta], pytensor.grad(ll, theta))
        return lambda values: np.asarray(fn(values), dtype=float)

    def _objective(self, d: UniqueRows, plan: CovariatePlan | None = None
                   ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """Mean negative log-likelihood (+ penalty) and its gradient, on log parameters
        (followed, with covariates, by the coefficients on their own scale)."""
        n = d.n_customers
        k = len(self.param_names)
        autodiff: Callable[[np.ndarray], np.ndarray] | None = None

        def f(u: np.ndarray) -> tuple[float, np.ndarray]:
            nonlocal autodiff
            theta = np.exp(np.clip(u[:k], -700, 700))
            p = self._params_dict(theta)
            gamma = u[k:]
            with np.errstate(all="ignore"):
                if plan is not None:
                    total, g_u = plan.value_and_grad(self, p, gamma)
                    grad = None
                else:
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
                value = -total / n + self.penalizer * (float(np.sum(theta**2))
                                                       + float(np.sum(gamma**2)))
                if grad is not None:
                    # chain rule to the log scale
                    out = (-grad / n + 2.0 * self.penalizer * theta) * theta
                else:
                    out = -g_u / n
                    out[:k] += 2.0 * self.penalizer * theta**2
                    out[k:] += 2.0 * self.penalizer * gamma
            if not np.isfinite(value) or not np.all(np.isfinite(out)):
                return np.inf, np.zeros_like(u)
            return value, out

        return f

    def _log_value_grad_hess(self, d: UniqueRows, u: np.ndarray
                             ) -> tuple[float, np.ndarray, np.ndarray] | None:
        """The objective of :meth:`_objective` (no covariates), its gradient and Hessian
        w.r.t. log parameters from the family's :meth:`_value_grad_hess` (None without one):
        with F(u) = G(theta), theta = exp(u), d2F/du_i du_j = G_ij theta_i theta_j
        + delta_ij G_i theta_i. Not finite: (inf, 0, identity), which optimisers reject."""
        theta = np.exp(np.clip(u, -700, 700))
        with np.errstate(all="ignore"):
            out = self._value_grad_hess(self._params_dict(theta), d)
            if out is None:
                return None
            n = d.n_customers
            total, g, h = out
            value = -float(total) / n + self.penalizer * float(np.sum(theta**2))
            g_nat = -np.asarray(g) / n + 2.0 * self.penalizer * theta
            h_nat = -np.asarray(h) / n + 2.0 * self.penalizer * np.eye(len(theta))
            h_log = h_nat * np.outer(theta, theta) + np.diag(g_nat * theta)
        if not (np.isfinite(value) and np.all(np.isfinite(g_nat)) and np.all(np.isfinite(h_log))):
            return np.inf, np.zeros_like(theta), np.eye(len(theta))
        return value, g_nat * theta, h_log

    def _analytic_hessian_log(self, d: UniqueRows, u: np.ndarray) -> np.ndarray | None:
        """Hessian of the objective w.r.t. log parameters, analytic (None without one)."""
        out = self._log_value_grad_hess(d, u)
        return None if out is None else out[2]

    def _newton_minimize(self, d: UniqueRows, x0: np.ndarray, maxiter: int) -> Any:
        """Trust-region Newton (scipy's ``trust-exact``) on log parameters with the family's
        analytic Hessian: a handful of likelihood passes where L-BFGS-B needs tens. None when
        the family has no Hessian or Newton does not reach a small gradient (L-BFGS-B
        then takes over)."""
        if type(self)._value_grad_hess is MLEModel._value_grad_hess:
            return None
        last: dict[str, Any] = {}

        def vgh(u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            if last.get("u") is None or not np.array_equal(last["u"], u):
                out = self._log_value_grad_hess(d, u)
                if out is None:
                    raise _NoHessian
                last.update(u=np.array(u), out=out)
            return last["out"]

        try:
            res = optimize.minimize(lambda u: vgh(u)[:2], x0, jac=True,
                                    hess=lambda u: vgh(u)[2], method="trust-exact",
                                    options={"maxiter": maxiter, "gtol": 1e-10})
        except (_NoHessian, np.linalg.LinAlgError, ValueError):
            return None
        if not (np.isfinite(res.fun) and np.max(np.abs(res.jac)) < 1e-6):
            return None
        return res

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
        data: pd.DataFrame,
        *,
        weights: str | np.ndarray | None = None,
        initial_params: Sequence[float] | dict[str, float] | None = None,
        maxiter: int = 2000,
        tol: float = 1e-10,
    ) -> MLEModel:
        """Fit by maximum likelihood on the unique rows of ``data`` (weighted).

        ``data`` has the columns of the model's data kind (:mod:`clvmodels.datakinds`);
        ``weights`` — a column name or one count per row — says how many identical
        customers each row stands for (pre-aggregated data: SQL, Spark, a paper's table).
        Log-parameters are optimised with L-BFGS-B using exact gradients; the covariance is
        the inverse Hessian of the total negative log-likelihood at the optimum. Raises
        :class:`ValidationError` on bad data and warns (:class:`ConvergenceWarning`) with
        advice when the optimiser does not converge.
        """
        started = time.perf_counter()
        data, weights = fit_input(self, data, weights)  # a Spark summary: unique rows, counts
        # the optimiser's tiny BLAS calls stall when BLAS threads contend for a busy
        # machine (milliseconds each instead of microseconds): one thread is fastest
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(data, weights, started, initial_params, maxiter, tol)

    def _fit(self, rfm: pd.DataFrame, weights: str | np.ndarray | None, started: float,
             initial_params: Sequence[float] | dict[str, float] | None, maxiter: int,
             tol: float, rows: UniqueRows | None = None) -> MLEModel:
        layout = self._learn_layout(rfm) if rows is None else None
        extra = patterns = None
        if layout is not None:
            # the covariate pattern (one integer per distinct design row) joins the
            # unique-row key; the plan maps it back to the design row
            z, codes = layout.encoding.patterns(rfm, what="the fitting data")
            patterns = np.zeros((int(codes.max()) + 1 if len(codes) else 0, z.shape[1]))
            patterns[codes] = z
            extra = {PATTERN: codes}
        d = self._fit_data(rfm, weights, extra) if rows is None else rows
        if d.n_customers == 0:
            raise ValidationError("no customers to fit on")
        problem = self._identifiability_problem(d)
        if problem:
            raise IdentificationError(
                f"{type(self).__name__}: the parameters cannot be estimated from these data: "
                f"{problem}")
        plan = CovariatePlan(self, d, layout, patterns) if layout is not None else None
        coef_names = layout.coefficient_names if layout is not None else []
        f = self._objective(d, plan)
        k = len(self.param_names)
        if initial_params is None:
            x0 = np.log(self._initial_params(d))
        else:
            if isinstance(initial_params, dict):
                initial_params = [initial_params[n] for n in self.param_names]
            start = np.asarray(initial_params, dtype=float)
            if start.shape != (k,) or np.any(start <= 0):
                raise ValueError(
                    f"initial_params must be {k} positive values "
                    f"for {self.param_names}"
                )
            x0 = np.log(start)
        if coef_names:
            # start the base parameters at the plain model's optimum (cheap: the rows
            # without covariates compress far more), the coefficients at 0
            x0 = np.concatenate([self._plain_start(rfm, d, x0, maxiter, tol),
                                 np.zeros(len(coef_names))])
        res = (self._newton_minimize(d, x0, maxiter) if plan is None
               else newton(self, plan, f, x0, d.n_customers, maxiter))
        if res is None:
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

        def hessian_log(u: np.ndarray) -> np.ndarray:
            if plan is not None:
                return objective_hessian(self, plan, u, d.n_customers)
            h = self._analytic_hessian_log(d, u)
            return self._hessian_log(f, u) if h is None else h

        H_log = hessian_log(x_opt)
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
            H_log = hessian_log(x_opt)
        res.x = x_opt
        theta = np.exp(res.x[:k])
        gamma = res.x[k:]
        _, g = f(res.x)
        grad_norm = float(np.max(np.abs(g)))
        self.converged_ = bool(grad_norm < 1e-4)
        self.convergence_reason_ = "" if self.converged_ else (
            f"the optimiser stopped with max |gradient| {grad_norm:.2e} "
            f"({_optimizer_message(res)})")
        boundary = self._boundary_problem(
            res.x, H_log, coef_names,
            plan.reach() if plan is not None else None)
        if boundary:
            self.converged_ = False
            self.convergence_reason_ = boundary
        n = d.n_customers
        self.covariate_layout_ = layout
        self.params_ = pd.Series(np.concatenate([theta, gamma]),
                                 index=list(self.param_names) + coef_names, name="estimate")
        p = self._params_dict(theta)
        with np.errstate(all="ignore"):
            if plan is not None:
                self.log_likelihood_ = float(plan.value_and_grad(self, p, gamma)[0])
            else:
                fused = self._value_and_grad(p, d)
                self.log_likelihood_ = (float(fused[0]) if fused is not None else
                                        float(np.einsum("i,i->", d.w, self._loglik(p, d))))
        self.n_customers_ = n
        self.time_unit_ = d.time_unit
        self.data_summary_ = self._data_summary(rfm, d)
        # Hessian of the total negative log-likelihood on the natural scale, from the one on
        # log parameters: d2F/dt_i dt_j = (H_log_ij - delta_ij g_log_i) / (t_i t_j); the
        # coefficients are on their own scale already (Jacobian 1, no correction)
        jac = np.concatenate([theta, np.ones(len(gamma))])
        log_part = np.concatenate([np.ones(k), np.zeros(len(gamma))])
        H = (H_log - np.diag(g * log_part)) / np.outer(jac, jac) * n
        try:
            cov = np.linalg.inv(H)
            cov = 0.5 * (cov + cov.T)
            if np.any(np.diag(cov) <= 0) or not np.all(np.isfinite(cov)):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            cov = np.full((len(jac),) * 2, np.nan)
            warnings.warn(
                f"{type(self).__name__}: the Hessian is not positive definite at the optimum; "
                "standard errors are unavailable (the model may be unidentified on these "
                "data — try a penalizer or more data)",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_uncertainty(cov)
        if plan is not None and self.converged_:
            loose = self._loose_coefficients(np.sqrt(np.diag(cov))[k:], plan.reach(),
                                             coef_names)
            if loose:
                self.converged_ = False
                self.convergence_reason_ = loose
        n_params = len(jac)
        self.aic_ = 2 * n_params - 2 * self.log_likelihood_
        self.bic_ = n_params * math.log(n) - 2 * self.log_likelihood_
        if plan is not None:
            self.data_summary_.update(n_covariate_patterns=plan.n_patterns,
                                      covariate_evaluation=plan.mode)
        self.fit_seconds_ = time.perf_counter() - started
        self._optimizer_result = res
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge: {self.convergence_reason_}. Check "
                "the data (enough repeat buyers? enough time observed?), try initial_params, "
                "a small penalizer, or another time_unit.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    #: |log parameter| beyond which an estimate is taken to have run to 0 or infinity
    _BOUNDARY_LOG: ClassVar[float] = 16.0

    #: |coefficient × largest |design value|| beyond which a coefficient has run off
    _BOUNDARY_EFFECT: ClassVar[float] = 25.0

    def _boundary_problem(self, u: np.ndarray, H_log: np.ndarray,
                          coef_names: Sequence[str] = (), reach: np.ndarray | None = None
                          ) -> str:
        """"" when the optimum is interior; otherwise which parameters ran to 0 or infinity,
        or along which the likelihood is flat (not identified). ``reach`` is, per covariate
        coefficient, the largest |design value| it multiplies."""
        k = len(self.param_names)
        names = list(self.param_names) + list(coef_names)
        log_theta = u[:k]
        far = np.abs(log_theta) > self._BOUNDARY_LOG
        parts = [f"{n} → {'∞' if v > 0 else '0'} (estimate {math.exp(v):.3g})"
                 for n, v, f in zip(names, log_theta, far, strict=False) if f]
        if coef_names and reach is not None:
            effect = np.abs(u[k:]) * reach
            parts += [f"{n} → {'+' if v > 0 else '-'}∞ (estimate {v:.3g})"
                      for n, v, e in zip(coef_names, u[k:], effect, strict=True)
                      if e > self._BOUNDARY_EFFECT]
        if parts:
            return ("the estimate ran to the boundary of the parameter space: "
                    + ", ".join(parts) + "; the data cannot pin these parameters down")
        try:
            evals, evecs = np.linalg.eigh(0.5 * (H_log + H_log.T))
        except np.linalg.LinAlgError:
            return ""
        if np.all(np.isfinite(evals)) and evals[0] < 1e-10:
            weights = np.abs(evecs[:, 0])
            involved = [n for n, wgt in zip(names, weights, strict=True) if wgt > 0.3]
            return ("the likelihood is flat along a combination of "
                    + ", ".join(involved) + ": these parameters are not identified by the "
                    "data (standard errors would be infinite)")
        return ""

    #: standard error × largest |design value| beyond which a coefficient is not pinned down
    #: (its 95% interval would span a factor e^±20 on the parameter it scales)
    _LOOSE_EFFECT: ClassVar[float] = 10.0

    def _loose_coefficients(self, se: np.ndarray, reach: np.ndarray,
                            names: Sequence[str]) -> str:
        """"" unless some coefficients are so loosely determined that the optimiser merely
        stopped somewhere on a flat ridge (e.g. a level whose customers never repeat: its
        purchase coefficient runs toward -inf)."""
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(se) | (se * reach > self._LOOSE_EFFECT)
        if not np.any(bad):
            return ""
        parts = [f"{n} (se {s:.3g})" for n, s, b in zip(names, se, bad, strict=True) if b]
        return ("the data cannot pin down the covariate coefficient(s) " + ", ".join(parts)
                + ": typically a level whose customers never repeat (or never drop out), so "
                "its effect runs toward ±∞; merge that level with another or drop the "
                "covariate")

    def _plain_start(self, data: pd.DataFrame, d: UniqueRows, x0: np.ndarray, maxiter: int,
                     tol: float) -> np.ndarray:
        """Log parameters of the plain model's fit (the start of a covariate fit), on the
        covariate fit's rows collapsed over the covariate patterns."""
        plain = copy.copy(self)
        plain._init_covariates(None, None, None, None, False)
        plain.__dict__.pop("covariate_layout_", None)
        names = [c for c in d.columns if c != PATTERN]
        cols, inverse, _ = unique_rows([d.columns[c] for c in names])
        collapsed = UniqueRows(dict(zip(names, cols, strict=True)),
                               np.bincount(inverse, weights=d.weights, minlength=len(cols[0])),
                               np.arange(len(cols[0])), None, d.time_unit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plain._fit(data, None, time.perf_counter(), list(np.exp(x0)), maxiter, tol,
                           rows=collapsed)
            start = np.log(plain.params_.to_numpy(dtype=float))
            return start if np.all(np.isfinite(start)) else x0
        except (ValidationError, RuntimeError, ValueError):
            return x0

    @property
    def coefficient_names_(self) -> list[str]:
        """Names of the covariate coefficients in ``params_`` (empty without covariates)."""
        layout = getattr(self, "covariate_layout_", None)
        return layout.coefficient_names if layout is not None else []

    def _is_coefficient(self) -> np.ndarray:
        return np.asarray([n not in self.param_names for n in self.params_.index])

    def _wald(self, se: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Wald limits: on the log scale for the positive parameters (mapped back, never
        crossing zero), on their own scale for covariate coefficients."""
        est = self.params_.to_numpy(dtype=float)
        coef = self._is_coefficient()
        zq = stats.norm.ppf(level)
        with np.errstate(divide="ignore", invalid="ignore"):
            half_log = zq * se / est
            lower = np.where(coef, est - zq * se, est * np.exp(-half_log))
            upper = np.where(coef, est + zq * se, est * np.exp(half_log))
        return lower, upper

    def _set_uncertainty(self, cov: np.ndarray) -> None:
        """Covariance, standard errors and 95% intervals from the parameter covariance.

        The parameters are positive and were estimated on the log scale, so the intervals
        are Wald intervals for log(theta) (se of log theta = se / theta, delta method),
        mapped back: exp(log theta -/+ 1.96 se / theta). They never cross zero. Covariate
        coefficients get plain Wald intervals, estimate -/+ 1.96 se.
        """
        names = list(self.params_.index)
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        se = np.sqrt(np.diag(cov))
        self.standard_errors_ = pd.Series(se, index=names, name="se")
        lower, upper = self._wald(se, 0.975)
        self.confidence_intervals_ = pd.DataFrame(
            {"lower 95%": lower, "upper 95%": upper}, index=names)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals of level 1 - ``alpha`` for every parameter (columns ``lower``,
        ``upper``), on the log scale and mapped back, so they never cross zero (covariate
        coefficients: on their own scale). NaN when the model has no standard errors (e.g.
        built with :meth:`from_params`)."""
        self._check_fitted()
        if not (isinstance(alpha, int | float) and 0 < alpha < 1):
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        lower, upper = self._wald(self.standard_errors_.to_numpy(), 1 - alpha / 2)
        return pd.DataFrame({"lower": lower, "upper": upper}, index=self.params_.index)

    @classmethod
    def from_params(cls, *, time_unit: str | None = None,
                    covariates: pd.DataFrame | CovariateLayout | None = None,
                    **params: float) -> MLEModel:
        """A fitted model from known parameters (a paper, a database, another tool).

        Every parameter of :attr:`param_names` must be given, positive and finite; the
        model then predicts like a fitted one (standard errors are unknown: NaN).
        ``time_unit`` is the unit the parameters are expressed in. A covariate model: give
        the coefficients too, named as in ``params_`` (``**{"purchase:channel[web]": 0.3}``),
        and ``covariates`` — a :class:`CovariateLayout`, or a frame whose columns define the
        encoding (indicators against the level no coefficient names, numbers as given).
        """
        coefs = {k: params.pop(k) for k in [k for k in params if k not in cls.param_names
                                            and ":" in k]}
        values = cls._check_params(params)
        if time_unit is not None:
            from clvmodels.rfm import time_unit_days

            time_unit_days(time_unit)  # validates
        model = cls()
        names = list(cls.param_names)
        if coefs or covariates is not None:
            return model._with_coefficients(values, coefs, covariates, time_unit)
        model.params_ = pd.Series([values[n] for n in names], index=names, name="estimate")
        model._set_uncertainty(np.full((len(names), len(names)), np.nan))
        model.time_unit_ = time_unit
        model.log_likelihood_ = float("nan")
        model.aic_ = model.bic_ = float("nan")
        model.n_customers_ = 0
        model.converged_ = True
        model.convergence_reason_ = ""
        model.data_summary_ = {"source": "from_params"}
        return model

    def _with_coefficients(self, values: dict[str, float], coefs: dict[str, float],
                           covariates: Any, time_unit: str | None) -> MLEModel:
        """:meth:`from_params` for a covariate model (layout from ``covariates``)."""
        from clvmodels.models.registry import layout_from_coefficients

        if covariates is None:
            raise ValueError("covariate coefficients given: pass covariates= (a frame with "
                             "the covariate columns, or a CovariateLayout)")
        layout = (covariates if isinstance(covariates, CovariateLayout)
                  else layout_from_coefficients(type(self), list(coefs), covariates))
        names = layout.coefficient_names
        if sorted(names) != sorted(coefs):
            raise ValueError(f"covariate coefficients {sorted(coefs)} do not match the "
                             f"covariates' {names}")
        if not all(np.isfinite(float(coefs[c])) for c in names):
            raise ValueError(f"covariate coefficients must be finite, got {coefs}")
        model = type(self).from_params(time_unit=time_unit, **values)
        model._init_covariates(*(layout.groups.get(g) for g in ("purchase", "dropout",
                                                               "spend")),
                               None, layout.encoding.standardize)
        model.covariate_layout_ = layout
        model.params_ = pd.concat([model.params_, pd.Series(
            [float(coefs[c]) for c in names], index=names, name="estimate")])
        model._set_uncertainty(np.full((len(model.params_),) * 2, np.nan))
        return model

    def summary(self) -> pd.DataFrame:
        """Parameter table: estimate, standard error, 95% confidence interval."""
        self._check_fitted()
        out = pd.concat([self.params_.rename("estimate"), self.standard_errors_.rename("se"),
                         self.confidence_intervals_], axis=1)
        out.attrs.update(
            log_likelihood=self.log_likelihood_, aic=self.aic_, bic=self.bic_,
            n_customers=self.n_customers_, converged=self.converged_,
            convergence_reason=getattr(self, "convergence_reason_", ""),
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
        reason = getattr(self, "convergence_reason_", "")
        if reason:
            head += f"NOT CONVERGED: {reason}\n"
        return head + s.to_string(float_format=lambda v: f"{v:.6g}")

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description of the fitted model."""
        self._check_fitted()
        return {
            "format": "clvmodels-model",
            "format_version": self.FORMAT_VERSION,
            "model": type(self).__name__,
            "name": self.name,
            "data_kind": self.data_kind,
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
            "convergence_reason": getattr(self, "convergence_reason_", ""),
            "data_summary": self.data_summary_,
            "covariates": (self.covariate_layout_.to_dict() | {
                "covariate_reference": _json_safe(self.covariate_reference),
                "unseen_levels": self.unseen_levels}
                if getattr(self, "covariate_layout_", None) is not None else None),
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Save as JSON (parameters, covariance, time unit, data summary, version).

        Written atomically; ``overwrite=False`` refuses to replace an existing file. Values
        that are not numbers (an unknown standard error) are written as ``null``: the file
        is strict JSON.
        """
        from clvmodels._io import write_text

        return write_text(json.dumps(_json_safe(self.to_dict()), indent=2, allow_nan=False),
                          path, force=overwrite)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> MLEModel:
        """The model described by :meth:`to_dict` (parameters validated: positive, finite)."""
        model = cls(penalizer=payload.get("penalizer", 0.0) or 0.0)
        params = dict(payload["params"])
        layout = None
        if payload.get("covariates"):
            layout = CovariateLayout.from_dict(payload["covariates"])
            if any(g not in cls.covariate_links for g in layout.groups):
                raise ValueError(f"{cls.__name__} takes no covariates of group(s) "
                                 f"{[g for g in layout.groups if g not in cls.covariate_links]}")
        coef_names = layout.coefficient_names if layout is not None else []
        missing = [c for c in coef_names if c not in params]
        if missing:
            raise ValueError(f"the file lacks the coefficient(s) {missing}")
        coefs = [params.pop(c) for c in coef_names]
        try:
            coefs = [float(v) for v in coefs]
        except (TypeError, ValueError):
            raise ValueError(f"covariate coefficients must be numbers, got {coefs}") from None
        if not all(np.isfinite(coefs)):
            raise ValueError(f"covariate coefficients must be finite, got {coefs}")
        values = cls._check_params(params)
        names = list(cls.param_names)
        model.covariate_layout_ = layout
        if layout is not None:
            saved = payload["covariates"]
            reference = saved.get("covariate_reference")
            if reference is not None and not isinstance(reference, dict):
                raise ValueError("covariate_reference must be an object")
            model._init_covariates(*(layout.groups.get(g) for g in ("purchase", "dropout",
                                                                   "spend")),
                                   reference, layout.encoding.standardize,
                                   saved.get("unseen_levels", "raise"))
        model.params_ = pd.Series([values[n] for n in names] + coefs, index=names + coef_names,
                                  name="estimate")
        size = len(names) + len(coef_names)
        model._set_uncertainty(_float_array(payload["covariance"], (size, size)))
        model.time_unit_ = payload.get("time_unit")
        model.log_likelihood_ = _float(payload.get("log_likelihood"))
        model.aic_ = _float(payload.get("aic"))
        model.bic_ = _float(payload.get("bic"))
        model.n_customers_ = int(payload.get("n_customers") or 0)
        model.converged_ = bool(payload.get("converged", True))
        model.convergence_reason_ = str(payload.get("convergence_reason") or "")
        model.data_summary_ = payload.get("data_summary", {}) or {}
        return model

    # ---- helpers for predictions -------------------------------------------------------
    def _p(self, data: pd.DataFrame | None = None, *, extra_axes: int = 0) -> dict[str, Any]:
        """The parameters for predictions: floats, or — for a model with covariates — each
        row of ``data``'s own parameters (links equation (1)), arrays ``(n, 1, ...)`` with
        ``extra_axes`` trailing axes. A covariate model refuses to predict without data."""
        self._check_fitted()
        base = {k: float(self.params_[k]) for k in self.param_names}
        layout = getattr(self, "covariate_layout_", None)
        if layout is None:
            return base
        if data is None:
            raise ValueError(
                f"this {type(self).__name__} has covariates "
                f"({', '.join(layout.encoding.names)}): the prediction depends on each "
                "customer's attributes; pass covariates=<a frame with those columns>")
        z = layout.encoding.design(data, unseen=self.unseen_levels)
        coefs = self.params_[layout.coefficient_names].to_numpy(dtype=float)
        eta = self._eta(z, coefs)
        tail = (1,) * extra_axes
        out = row_params(base, self.covariate_links, eta)
        return {k: (np.asarray(v).reshape(-1, *tail) if np.ndim(v) else v)
                for k, v in out.items()}

    def _unit_for(self, time_unit: str | None) -> str | None:
        """The model's time unit, or ``time_unit`` when the model does not know its own
        (a different one is refused)."""
        unit = getattr(self, "time_unit_", None)
        if time_unit is not None and unit is not None and time_unit != unit:
            raise ValueError(f"the model was fitted in time unit {unit!r}, not {time_unit!r}")
        return unit or time_unit

    def _arrays(self, data: pd.DataFrame) -> tuple[Any, ...]:
        """The model's data columns of ``data`` as float arrays, and its index (validated,
        in the model's time unit)."""
        self._check_fitted()
        cols, index = frame_arrays(data, self.data_kind, time_unit=self.time_unit_)
        return (*cols, index)


class _NoHessian(Exception):
    """The family's :meth:`MLEModel._value_grad_hess` returned None."""


def _optimizer_message(res: Any) -> str:
    """The optimiser's message, or what its status means when the message is empty."""
    message = str(getattr(res, "message", "") or "").strip()
    if message.rstrip(": ").upper() in ("", "ABNORMAL"):
        return ("the line search could not improve the likelihood further: the likelihood "
                "is flat or not finite near this point")
    return message


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _float_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.array([[np.nan if v is None else v for v in row] for row in value], dtype=float)
    if arr.shape != shape:
        raise ValueError(f"covariance must be {shape[0]} x {shape[1]}, got {arr.shape}")
    return arr


def _json_safe(value: Any) -> Any:
    """NaN and infinities → None, recursively (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
