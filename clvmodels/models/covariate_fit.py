"""Maximum likelihood with covariates on weighted unique rows, fast whatever the covariates.

The unique rows of a covariate fit are the distinct (data columns, design columns)
combinations. Two ways to evaluate the likelihood and its gradient in
(log theta, gamma) — both exact, chosen once per fit by :class:`CovariatePlan`:

* **by pattern** (categorical covariates, or few distinct numeric values): the rows are split
  by their distinct covariate pattern z_k; within a pattern every customer shares the same
  parameters (links equation (1)), so the family's fastest scalar-parameter path — its fused
  value-and-gradient or its cached per-row terms — serves each pattern, and the chain rule
  is applied per pattern. Two categorical covariates with 5 levels each cost at most 25
  such passes over fewer rows each: about the cost of the plain fit.
* **by row** (continuous covariates: nearly every row its own pattern): the family's
  broadcasting log-likelihood and analytic gradient are evaluated with per-row parameter
  arrays, and the chain rule is one vectorised pass (:func:`chain_gradient`) — no Python loop
  over customers.

The Hessian (Newton steps, standard errors) is sum_i w_i B_i' h_i B_i over patterns or rows
(:meth:`CovariatePlan.hessian`), h_i the family's Hessian in its log parameters: exact where
the family offers one (``_value_grad_hess`` for a pattern's rows, ``_loglik_grad_hess`` per
row: Pareto/NBD has both, Gamma-Gamma the first), else central differences of its analytic
gradient. A family may also offer ``_loglik_value_grad`` (per-row value and gradient in one
pass) for row mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize

from clvmodels._validation import ValidationError
from clvmodels.models.links import CovariateLayout, chain_gradient, row_params
from clvmodels.rows import UniqueRows

__all__ = ["MAX_PATTERNS", "PATTERN", "CovariatePlan", "design_problem", "newton",
           "objective_hessian"]

#: the most distinct covariate patterns evaluated pattern by pattern
MAX_PATTERNS = 2000
#: the unique-row key column holding each row's covariate pattern (a row of ``patterns``)
PATTERN = "__pattern"


def design_problem(z: np.ndarray, w: np.ndarray, names: list[str]) -> str:
    """Why the design cannot identify its coefficients ("" when it can): a design column
    constant over the customers (e.g. a level nobody has, or everybody), or columns that are
    linear combinations of each other (with the intercept the base parameter provides)."""
    if z.shape[1] == 0:
        return ""
    used = w > 0
    z, w = z[used], w[used]
    for j, name in enumerate(names):
        col = z[:, j]
        if np.ptp(col) == 0:
            return (f"covariate column {name!r} takes the single value {col[0]:g} for every "
                    "customer in the fitting data, so its effect cannot be told apart from "
                    "the base parameter (drop it, or fit on data where it varies)")
    centred = (z - np.average(z, axis=0, weights=w)) * np.sqrt(w)[:, None]
    scale = np.linalg.norm(centred, axis=0)
    sv = np.linalg.svd(centred / scale, compute_uv=False)
    if sv[-1] < 1e-8 * max(sv[0], 1.0):
        _, _, vt = np.linalg.svd(centred / scale)
        involved = [n for n, v in zip(names, np.abs(vt[-1]), strict=True) if v > 0.1]
        return ("covariate columns " + ", ".join(repr(n) for n in involved) + " are "
                "collinear (one is a combination of the others), so their effects cannot be "
                "told apart; drop one of them")
    return ""


class CovariatePlan:
    """How one covariate fit evaluates the likelihood (see the module docstring)."""

    def __init__(self, model: Any, d: UniqueRows, layout: CovariateLayout,
                 patterns: np.ndarray) -> None:
        self.links = model.covariate_links
        self.layout = layout
        self.param_names = list(model.param_names)
        # the patterns the rows use (a spend model drops non-repeaters: maybe not all)
        used, code = np.unique(d.columns[PATTERN].astype(np.int64), return_inverse=True)
        code = code.reshape(-1)
        self.z = patterns[used][code]
        self.d = d
        # the design's weighted spread is the patterns' (weights summed per pattern)
        problem = design_problem(patterns[used],
                                 np.bincount(code, weights=d.w, minlength=len(used)),
                                 layout.encoding.design_names)
        single = [c for c in layout.encoding.columns if not c.design_names]
        if single:  # a categorical column with one level has no indicator at all
            problem = (f"covariate column {single[0].name!r} takes the single level "
                       f"{single[0].reference!r} for every customer in the fitting data, so "
                       "its effect cannot be told apart from the base parameter (drop it)")
        if problem:
            from clvmodels.models.base import IdentificationError

            raise IdentificationError(f"{type(model).__name__}: {problem}")
        if d.n_rows == 0:
            raise ValidationError("no customers to fit on")
        inverse = code
        self.n_patterns = len(used)
        self.by_pattern = (self.n_patterns <= MAX_PATTERNS
                           and 4 * self.n_patterns <= d.n_rows)
        if self.by_pattern:
            self.patterns = patterns[used]
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(self.n_patterns + 1))
            self.sub = []
            for k in range(self.n_patterns):
                idx = order[bounds[k]:bounds[k + 1]]
                self.sub.append(UniqueRows(
                    columns={c: v[idx] for c, v in d.columns.items()},
                    weights=d.weights[idx], inverse=np.arange(len(idx)), index=None,
                    time_unit=d.time_unit))

    def reach(self) -> np.ndarray:
        """Per coefficient (storage order), the largest |design value| it multiplies."""
        z = self.patterns if self.by_pattern else self.z  # the same values, far fewer rows
        top = np.max(np.abs(z), axis=0) if len(z) else np.zeros(z.shape[1])
        return np.concatenate([top[pos] for pos in self.layout.positions.values()])

    @property
    def mode(self) -> str:
        """``"pattern"`` or ``"row"``."""
        return "pattern" if self.by_pattern else "row"

    def _eta(self, z: np.ndarray, gamma: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for g, c in self.layout.split(gamma).items():
            out[g] = z[:, self.layout.positions[g]] @ c
        return out

    def params(self, p: dict[str, float], gamma: np.ndarray) -> dict[str, np.ndarray]:
        """Per-row parameters of the fit's rows."""
        return row_params(p, self.links, self._eta(self.z, gamma))

    def value_and_grad(self, model: Any, p: dict[str, float], gamma: np.ndarray
                       ) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood and its gradient in (log theta, gamma)."""
        if self.by_pattern:
            return self._by_pattern(model, p, gamma)
        p_rows = self.params(p, gamma)
        d = self.d
        fused = getattr(model, "_loglik_value_grad", None)  # one pass for both, if offered
        if fused is not None:
            ll_rows, g_rows = fused(p_rows, d)
        else:
            ll_rows, g_rows = model._loglik(p_rows, d), model._loglik_grad(p_rows, d)
        total = float(np.einsum("i,i->", d.w, ll_rows))
        if g_rows is None:
            raise NotImplementedError(f"{type(model).__name__} needs an analytic gradient "
                                      "for covariates")
        return total, chain_gradient(self.param_names, self.links, self.layout, p_rows,
                                     np.asarray(g_rows), self.z, d.w)

    # ---- the Hessian in (log theta, gamma) ----------------------------------------------
    #: relative step of the central differences of the family's gradient
    _STEP = 1e-5

    def _design_jacobian(self, z: np.ndarray) -> np.ndarray:
        """A (m, P, Q): d log theta_i / d gamma, since log theta_i = log theta + A_i gamma
        (links equation (1) is linear on the log scale)."""
        P = len(self.param_names)
        index = {n: j for j, n in enumerate(self.param_names)}
        blocks = []
        for g, pos in self.layout.positions.items():
            block = np.zeros((len(z), P, len(pos)))
            for name, sign in self.links[g]:
                block[:, index[name], :] = sign * z[:, pos]
            blocks.append(block)
        return np.concatenate(blocks, axis=2)

    def _log_grad(self, model: Any, p: dict[str, Any], d: UniqueRows, *, rows: bool
                  ) -> np.ndarray:
        """dLL/dlog theta: per row (P, n) with ``rows``, else summed over ``d`` (P,)."""
        if rows:
            g = np.asarray(model._loglik_grad(p, d))
            return g * np.stack([np.broadcast_to(p[n], (d.n_rows,)) for n in self.param_names])
        fused = model._value_and_grad(p, d)
        g = (fused[1] if fused is not None
             else np.einsum("ki,i->k", model._loglik_grad(p, d), d.w))
        return np.asarray(g) * np.array([p[n] for n in self.param_names])

    def _log_hessian(self, model: Any, p: dict[str, Any], d: UniqueRows, *, rows: bool
                     ) -> np.ndarray:
        """d2LL/dlog theta^2 by central differences of the analytic gradient: (P, P, n) per
        row with ``rows``, else (P, P) summed over ``d`` — from the family's exact Hessian
        when it has one (``_loglik_grad_hess`` per row, ``_value_grad_hess`` summed): with
        theta = e^v, d2LL/dv_j dv_k = H_jk theta_j theta_k + delta_jk g_j theta_j."""
        names = self.param_names
        hook = getattr(model, "_loglik_grad_hess", None)  # per-row exact Hessian, if offered
        per_row = hook(p, d) if rows and hook is not None else None
        if per_row is not None:
            theta = np.stack([np.broadcast_to(p[n], (d.n_rows,)) for n in names])
            g, h = np.asarray(per_row[0]), np.asarray(per_row[1])
            h = h * theta[:, None, :] * theta[None, :, :]
            idx = np.arange(len(names))
            h[idx, idx] += g * theta
            return h
        if not rows:
            exact = model._value_grad_hess(p, d)
            if exact is not None:
                theta = np.array([float(p[n]) for n in names])
                return (np.asarray(exact[2]) * np.outer(theta, theta)
                        + np.diag(np.asarray(exact[1]) * theta))
        cols = []
        for name in names:
            up = dict(p)
            dn = dict(p)
            up[name] = np.asarray(p[name]) * np.exp(self._STEP)
            dn[name] = np.asarray(p[name]) * np.exp(-self._STEP)
            cols.append((self._log_grad(model, up, d, rows=rows)
                         - self._log_grad(model, dn, d, rows=rows)) / (2 * self._STEP))
        h = np.stack(cols, axis=1)  # [k, j]: d g_k / d v_j
        return 0.5 * (h + np.swapaxes(h, 0, 1))

    def hessian(self, model: Any, p: dict[str, float], gamma: np.ndarray) -> np.ndarray:
        """d2 sum_i w_i LL_i / d(log theta, gamma)^2, shape (P + Q, P + Q).

        Each customer's log parameters are log theta + A_i gamma, linear in the optimiser's
        coordinates, so the Hessian is sum_i w_i B_i' h_i B_i with B_i = [I, A_i] and h_i the
        family's Hessian in its own log parameters — from 2P passes of its analytic gradient
        (per pattern, or per row), not 2(P + Q) passes of the whole objective.
        """
        key = (tuple(float(v) for v in p.values()), np.asarray(gamma, dtype=float).tobytes())
        memo = getattr(self, "_hessian_memo", None)
        if memo is not None and memo[0] == key:
            return memo[1].copy()
        out = self._hessian(model, p, gamma)
        self._hessian_memo = (key, out)
        return out.copy()

    def _hessian(self, model: Any, p: dict[str, float], gamma: np.ndarray) -> np.ndarray:
        P = len(self.param_names)
        if self.by_pattern:
            p_pat = row_params(p, self.links, self._eta(self.patterns, gamma))
            K = self.n_patterns
            h = np.empty((K, P, P))
            for k, sub in enumerate(self.sub):
                pk = {n: np.float64(np.broadcast_to(v, (K,))[k]) for n, v in p_pat.items()}
                h[k] = self._log_hessian(model, pk, sub, rows=False)
            z, w = self.patterns, np.ones(K)
        else:
            p_rows = self.params(p, gamma)
            h = np.moveaxis(self._log_hessian(model, p_rows, self.d, rows=True), 2, 0)
            z, w = self.z, self.d.w
        return self._assemble(h, z, w)

    def _assemble(self, h: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
        """sum_i w_i B_i' h_i B_i, B_i = [I, A_i] (:meth:`_design_jacobian`), by blocks and
        without forming A_i: A_i's rows are sign * z_i on the linked parameters' rows and
        zero elsewhere, so the (theta, gamma) block is sum_i sign w_i h_i[:, j] z_i' and the
        (gamma, gamma) block sum_i s1 s2 w_i h_i[j1, j2] z_i z_i' — matrix products over the
        rows (or patterns) instead of (n, P, P+Q) temporaries."""
        P = len(self.param_names)
        index = {n: j for j, n in enumerate(self.param_names)}
        hw = h * w[:, None, None]
        blocks = []  # (columns of gamma, z columns, [(row, sign)])
        start = 0
        for g, pos in self.layout.positions.items():
            blocks.append((slice(start, start + len(pos)), z[:, pos],
                           [(index[name], sign) for name, sign in self.links[g]]))
            start += len(pos)
        out = np.zeros((P + start, P + start))
        out[:P, :P] = hw.sum(axis=0)
        for cols, zg, links in blocks:
            c = slice(P + cols.start, P + cols.stop)
            for j, sign in links:
                out[:P, c] += sign * (hw[:, :, j].T @ zg)
            for cols2, zg2, links2 in blocks:
                c2 = slice(P + cols2.start, P + cols2.stop)
                for j1, s1 in links:
                    for j2, s2 in links2:
                        out[c, c2] += (s1 * s2) * ((zg * hw[:, j1, j2][:, None]).T @ zg2)
        out[P:, :P] = out[:P, P:].T
        return 0.5 * (out + out.T)  # exactly symmetric (the products round alike)

    def _by_pattern(self, model: Any, p: dict[str, float], gamma: np.ndarray
                    ) -> tuple[float, np.ndarray]:
        eta = self._eta(self.patterns, gamma)
        p_pat = row_params(p, self.links, eta)
        K, P = self.n_patterns, len(self.param_names)
        grads = np.empty((P, K))
        total = 0.0
        for k, sub in enumerate(self.sub):
            pk = {n: np.float64(np.broadcast_to(v, (K,))[k]) for n, v in p_pat.items()}
            fused = model._value_and_grad(pk, sub)
            if fused is None:
                t = float(np.einsum("i,i->", sub.w, model._loglik(pk, sub)))
                g_rows = model._loglik_grad(pk, sub)
                if g_rows is None:
                    raise NotImplementedError(f"{type(model).__name__} needs an analytic "
                                              "gradient for covariates")
                g = np.einsum("ki,i->k", g_rows, sub.w)
            else:
                t, g = fused
            total += float(t)
            grads[:, k] = g
        return total, chain_gradient(self.param_names, self.links, self.layout, p_pat, grads,
                                     self.patterns, np.ones(K))


def objective_hessian(model: Any, plan: CovariatePlan, u: np.ndarray, n: int) -> np.ndarray:
    """Hessian of the objective (mean NLL + penalty) in (log theta, gamma) from the
    plan's (:meth:`CovariatePlan.hessian`)."""
    k = len(model.param_names)
    theta = np.exp(np.clip(u[:k], -700, 700))
    with np.errstate(all="ignore"):
        h = -plan.hessian(model, model._params_dict(theta), u[k:]) / n
    pen = np.concatenate([4.0 * theta**2, np.full(len(u) - k, 2.0)]) * model.penalizer
    return h + np.diag(pen)

def newton(model: Any, plan: CovariatePlan, f: Callable[[np.ndarray], tuple[float, np.ndarray]],
       x0: np.ndarray, n: int, maxiter: int) -> Any:
    """Newton's method for a covariate fit with the plan's exact Hessian, refreshed only
    when progress slows (a chord method): from the plain fit's optimum the likelihood is
    close to quadratic in the coefficients, so one or two Hessians (2P gradient passes
    each) and a handful of gradient passes replace L-BFGS-B's many. Steps are
    backtracked to decrease the objective and the Hessian is shifted to be positive
    definite. None (L-BFGS-B takes over) when it does not reach a small gradient."""
    u = np.array(x0, dtype=float)
    value, g = f(u)
    if not np.isfinite(value):
        return None
    hess = objective_hessian(model, plan, u, n)
    fresh = True
    it = 0
    for it in range(min(maxiter, 100)):  # noqa: B007 (reported in the result)
        if np.max(np.abs(g)) < 1e-9:
            break
        try:
            evals, evecs = np.linalg.eigh(hess)
        except np.linalg.LinAlgError:
            return None
        floor = max(1e-8, 1e-10 * float(np.max(np.abs(evals))))
        step = evecs @ ((evecs.T @ g) / np.maximum(evals, floor))
        big = float(np.max(np.abs(step)))
        t = 1.0 if big <= 2.0 else 2.0 / big  # at most e^2 per step on any parameter
        while t > 1e-6:
            cand = u - t * step
            c_value, c_g = f(cand)
            if np.isfinite(c_value) and (
                    c_value <= value - 1e-4 * t * float(g @ step)
                    # near the optimum the decrease is below rounding of the value:
                    # accept a step that does not raise it and shrinks the gradient
                    or (c_value <= value + 1e-13 * abs(value)
                        and np.max(np.abs(c_g)) < np.max(np.abs(g)))):
                break
            t *= 0.5
        else:
            if fresh:
                return None
            hess, fresh = objective_hessian(model, plan, u, n), True
            continue
        slow = np.max(np.abs(c_g)) > 0.5 * np.max(np.abs(g))
        u, value, g = cand, c_value, c_g
        fresh = False
        if slow:
            hess, fresh = objective_hessian(model, plan, u, n), True
    if not (np.isfinite(value) and np.max(np.abs(g)) < 1e-6):
        return None
    return optimize.OptimizeResult(x=u, fun=value, jac=g, nit=it + 1, success=True,
                                   message="Newton (chord) converged")
