"""Bayesian Pareto/NBD (Schmittlein, Morrison & Colombo 1987) in PyMC, optionally hierarchical
over segments and with covariates.

The likelihood and every prediction are the Pareto/NBD functions of
:mod:`clvmodels.models.paretonbd` (note 009 eqs. 22-23 for the likelihood, section 5 for
P(alive), section 6 for E[Y(t) | x, t_x, T]), reached through the same hooks the
maximum-likelihood :class:`~clvmodels.ParetoNBD` uses; sampling, summaries, LOO and
persistence are :mod:`clvmodels.models.bayes`'s and the predictions over draws
:mod:`clvmodels.models.posterior`'s.

How the likelihood enters PyMC
------------------------------
Not as a PyTensor graph of the closed form: the tail integral K is a 2F1(1, e; c; z) with
z = |alpha - beta| / (max(alpha, beta) + t), and PyTensor's ``hyp2f1`` gradient (a series
per element with respect to its parameters) needs ever more terms as z -> 1 — which is
where the posterior's long s-beta ridge (large s and beta, homogeneous drop-out) and the
x = 0 rows (t_x = 0) take it, so the sampler's cost per gradient grew by orders of
magnitude along the ridge (bench/bayes_paretonbd_measurements.md). Instead one PyTensor
Op (:func:`_loglik_op`) computes, per unique row, the maximum-likelihood fit's own numpy
log-likelihood and exact gradient (:func:`loglik_and_grad_rows`: the positive series for
z <= 0.9, its bounded-cost split beyond): the same numbers as :class:`~clvmodels.ParetoNBD`
to rounding, with a gradient whose cost does not depend on where the sampler is. The
parameters reach the Op per row (gathered by segment and covariate pattern), so segments
and covariates need nothing more; with one parameter set the tail integrals are taken once
per distinct (x, T) and (x, t_x) pair. Under nutpie the Op runs in numba's object mode
(the numpy code under the GIL, so chains run concurrently but not in parallel in it), and
the compiled sampler is kept in the session cache but not on disk (see
:func:`_register_numba`).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from clvmodels.models.bayes import BayesianTransactionModel
from clvmodels.models.bayes_bgnbd import _month_in
from clvmodels.models.factored import Factored
from clvmodels.models.paretonbd import (
    ParetoNBD,
    _expected_lifetime_factor,
    _loglik_and_grad,
    _XTerms,
    log_likelihood,
    log_tail_integral,
)
from clvmodels.models.priors import PriorSpec, lognormal, normal
from clvmodels.rows import UniqueRows

__all__ = ["BayesianParetoNBD", "loglik_and_grad_rows"]


def loglik_and_grad_rows(r: np.ndarray, alpha: np.ndarray, s: np.ndarray, beta: np.ndarray,
                         x: np.ndarray, tx: np.ndarray, T: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood (note 009 eqs. 22-23) and its exact gradient (4, n) with respect
    to (r, alpha, s, beta), with one parameter set per row (or one for every row).

    The maximum-likelihood fit's own numerics (:func:`clvmodels.models.paretonbd.
    log_likelihood_grad`): the two tail integrals of the two-positive-term bracket, their
    term-by-term derivatives through the 2F1 parameters, the bounded-cost form beyond z > 0.9.
    When every row has the same parameters (no segments, no covariates) the scalar path is
    taken (one alpha-beta branch for all rows).
    """
    x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
    params = [np.asarray(v, dtype=float) for v in (r, alpha, s, beta)]
    if all(v.size >= 1 and np.all(v == v.flat[0]) for v in params):
        # one parameter set: each tail integral once per distinct (x, T) / (x, t_x) pair
        r_, alpha_, s_, beta_ = (float(v.flat[0]) for v in params)
        (x1, t1), i1 = _pairs(x, T)
        (x2, t2), i2 = _pairs(x, tx)
        l1, g1 = log_tail_integral(r_ + x1 + 1.0, s_, alpha_, beta_, t1, grad=True)
        l2, g2 = log_tail_integral(r_ + x2, s_ + 1.0, alpha_, beta_, t2, grad=True)
        k1, k2 = (l1[i1], g1[:, i1]), (l2[i2], g2[:, i2])
    else:
        r_, alpha_, s_, beta_ = np.broadcast_arrays(*params, x)[:4]
        k1 = log_tail_integral(r_ + x + 1.0, s_, alpha_, beta_, T, grad=True)
        k2 = log_tail_integral(r_ + x, s_ + 1.0, alpha_, beta_, tx, grad=True)
    ll, grad = _loglik_and_grad(r_, alpha_, s_, beta_, _XTerms.of(r_, x), k1, k2)
    n = np.shape(x)[0]
    return (np.ascontiguousarray(np.broadcast_to(ll, (n,))),
            np.ascontiguousarray(np.broadcast_to(grad, (4, n))))


def _op_rows(r: np.ndarray, alpha: np.ndarray, s: np.ndarray, beta: np.ndarray,
             x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`loglik_and_grad_rows` for the sampler: a row whose value or gradient is not a
    finite number — only at parameters no posterior reaches (beyond about e^±30, where a
    sampler's first warm-up steps can land) — gets log-likelihood -inf and gradient 0, so
    the sampler rejects the point instead of stopping."""
    try:
        with np.errstate(all="ignore"):
            ll, grad = loglik_and_grad_rows(r, alpha, s, beta, x, tx, T)
    except (ZeroDivisionError, OverflowError, FloatingPointError):
        n = np.shape(x)[0]
        return np.full(n, -np.inf), np.zeros((4, n))
    bad = ~(np.isfinite(ll) & np.isfinite(grad).all(axis=0))
    if bad.any():  # (the arrays may be read-only broadcast views: write to copies)
        ll, grad = np.array(ll, dtype=float), np.array(grad, dtype=float)
        ll[bad] = -np.inf
        grad[:, bad] = 0.0
    return ll, grad


def _pairs(a: np.ndarray, b: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Distinct (a, b) pairs and each element's position among them (a sort, no hashing)."""
    if a.size == 0:
        return (a, b), np.zeros(0, dtype=np.int64)
    order = np.lexsort((b, a))
    sa, sb = a[order], b[order]
    new = np.empty(a.size, dtype=bool)
    new[0] = True
    new[1:] = (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1])
    inverse = np.empty(a.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return (sa[new], sb[new]), inverse


#: the Op's implementation version (bump when :func:`_op_rows` changes what it computes)
_OP_VERSION = "2"


@cache
def _loglik_op() -> Any:
    """The PyTensor Op (built once, lazily: importing the module must not import PyTensor)."""
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, grad_not_implemented
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class ParetoNBDLogLik(Op):
        """Pareto/NBD log-likelihood per row (output 0) and its gradient (output 1, (4, n))
        from :func:`loglik_and_grad_rows`: inputs r, alpha, s, beta (one value per row), x,
        t_x, T. The gradient of output 0 is output 1 (one evaluation gives both)."""

        __props__ = ("version",)

        def __init__(self, version: str = _OP_VERSION) -> None:
            # in the printed graph, hence in the compiled sampler's structure key: a new
            # implementation never meets a sampler compiled from an older one
            self.version = version

        def make_node(self, *inputs: Any) -> Apply:
            ins = [pt.as_tensor_variable(v).astype("float64") for v in inputs]
            return Apply(self, ins, [pt.dvector(), pt.dmatrix()])

        def perform(self, node: Any, inputs: list[np.ndarray], out: list[list[Any]]
                    ) -> None:
            ll, grad = _op_rows(*inputs)
            out[0][0] = ll
            out[1][0] = grad

        def connection_pattern(self, node: Any) -> list[list[bool]]:
            return [[True, True]] * 4 + [[False, False]] * 3

        def L_op(self, inputs: list[Any], outputs: list[Any], grads: list[Any]) -> list[Any]:
            g_ll, g_grad = grads
            if not isinstance(g_grad.type, DisconnectedType):
                return [grad_not_implemented(self, i, v) for i, v in enumerate(inputs)]
            grad = outputs[1]
            return ([g_ll * grad[k] for k in range(4)]
                    + [DisconnectedType()() for _ in range(3)])

    _register_numba(ParetoNBDLogLik)
    return ParetoNBDLogLik()


def _register_numba(op_type: type) -> None:
    """The Op's implementation in PyTensor's numba backend (nutpie's): a numba function that
    calls :func:`_op_rows` in object mode (the numpy code runs as it is, under the GIL).

    Registered explicitly rather than left to PyTensor's generic fallback, which warns at
    every compile. It has no cache key: a numba function with an object-mode block loaded
    from numba's disk cache failed when nutpie called it (measured: every initial point
    errored), so this model's sampler is compiled once per process and reused within the
    session (:mod:`clvmodels.models.compiled`'s session cache), never written to disk.
    """
    import numba
    from pytensor.link.numba.dispatch.basic import (
        get_numba_type,
        numba_njit,
        register_funcify_and_cache_key,
    )

    @register_funcify_and_cache_key(op_type)
    def _numba_loglik(op: Any, node: Any = None, **kwargs: Any) -> tuple[Any, None]:
        ret = numba.types.Tuple([get_numba_type(o.type) for o in node.outputs])

        @numba_njit
        def loglik(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any
                   ) -> Any:  # pragma: no cover - compiled
            with numba.objmode(out=ret):
                out = _op_rows(r, alpha, s, beta, x, tx, T)
            return out

        return loglik, None


def _tensor_rows(v: Any) -> Any:
    return v.rows() if isinstance(v, Factored) else v


class BayesianParetoNBD(BayesianTransactionModel):
    """Pareto/NBD model fitted with PyMC (NUTS), optionally hierarchical across segments.

    Parameters ``r, alpha`` (purchase rate lambda ~ Gamma(r, alpha)) and ``s, beta`` (drop-out
    rate mu ~ Gamma(s, beta)), alpha and beta in the data's time unit; likelihood note 009
    eqs. 22-23, written as ``lnG(r+x) - lnG(r) + r ln alpha + s ln beta + ln[(r+x) K(r+x+1,
    s; T) + s K(r+x, s+1; t_x)]`` with K the tail integral of
    :mod:`clvmodels.models.paretonbd` (two positive terms: nothing cancels when t_x is near T).

    Default priors (weakly informative, overridable with ``priors=``, saved with the model)::

        r     ~ LogNormal(0, 2)                  # 95%: 0.02 .. 50
        alpha ~ LogNormal(ln(1 month in unit), 2.5)
        s     ~ LogNormal(0, 1)                  # 95%: 0.14 .. 7
        beta  ~ LogNormal(ln(1 year in unit), 3)

    alpha / r is the mean time between purchases and beta / s the mean lifetime of a typical
    customer, so alpha's prior is centred on a month and beta's on a year, in the model's
    time unit: the defaults mean the same in days, weeks or months. s gets the tighter
    prior: the data pin down the mean drop-out rate s / beta but often hardly s itself (a
    long ridge of the likelihood towards large s and beta, homogeneous drop-out; CDNOW's
    39 weeks are an example), and along that ridge alpha and beta grow orders of magnitude
    apart — where each likelihood evaluation costs the most (the tail integral's z > 0.9
    form). LogNormal(0, 1) still spans very heterogeneous (s = 0.14) to nearly homogeneous
    (s = 7) drop-out; PyMC-Marketing's default, Weibull(2, 1), is tighter still.

    Hierarchical (``segment_col``): per segment, on unconstrained scales, ``log r_s``, ``log
    rate_s`` with ``rate = r / alpha`` (the mean purchase rate while alive), ``log s_s`` and
    ``log death_s`` with ``death = s / beta`` (the mean drop-out rate), each ``u_s ~
    Normal(mu_u, sigma_u)``, partially non-centred as for every Bayesian model (see
    ``parametrization`` in :class:`~clvmodels.models.bayes.BayesianModel`). The data fix the
    two mean rates far better than the shape-scale pairs separately, so pooling the means
    instead of ``log alpha``, ``log beta`` removes most of the strong r-alpha and s-beta
    posterior correlations. Default hyperpriors: ``mu_log_r ~ N(0, 2)``, ``mu_log_rate ~
    N(-ln month, 2.5)``, ``mu_log_s ~ N(0, 1)``, ``mu_log_death ~ N(-ln year, 3)``, every
    ``sigma_u ~ HalfNormal(1)``.

    Covariates (``purchase_covariates``, ``dropout_covariates``; with or without segments):
    the MLE twin's links (Fader & Hardie note 019, CLVTools), ``alpha_i = alpha
    exp(-g_p'z_i)`` and ``beta_i = beta exp(-g_d'z_i)`` — a positive coefficient raises the
    purchase (drop-out) rate; each coefficient ``~ Normal(0, 1)`` by default
    (:mod:`clvmodels.models.bayes_covariates`).

    Examples
    --------
    >>> model = BayesianParetoNBD().fit(rfm, chains=2)                  # doctest: +SKIP
    >>> model.probability_alive(rfm, interval=0.9)                      # doctest: +SKIP
    """

    param_names = ("r", "alpha", "s", "beta")
    name = "bayes-pnbd"
    label = "Bayesian Pareto/NBD"
    data_kind = "continuous"
    latents = ("log_r", "log_rate", "log_s", "log_death")
    _mle_class = ParetoNBD

    # the Pareto/NBD predictions, through the MLE twin's hooks (note 009 sections 4-6)
    _probability_alive = ParetoNBD._probability_alive
    _expected_purchases = ParetoNBD._expected_purchases
    _expected_new = ParetoNBD._expected_new
    _pmf = ParetoNBD._pmf
    _conditional_pmf = ParetoNBD._conditional_pmf

    def _loglik(self, p: dict[str, Any], d: Any, m: Any) -> Any:
        """Note 009 eqs. 22-23, per unique row.

        In the PyMC graph (``m`` a pytensor namespace) the likelihood is one Op computing
        the maximum-likelihood fit's numerics and exact gradient
        (:func:`loglik_and_grad_rows`) on the rows — parameters gathered per row (segment,
        covariate pattern); with numpy (pointwise log-likelihood over draws) it is
        :func:`clvmodels.models.paretonbd.log_likelihood` on the rows.
        """
        names = ("r", "alpha", "s", "beta")
        x, tx, T = (_tensor_rows(v) for v in (d.x, d.tx, d.T))
        if str(getattr(m, "name", "")).startswith("numpy"):
            q = [np.asarray(_tensor_rows(p[k]), dtype=float) for k in names]
            return log_likelihood(*q, np.asarray(x), np.asarray(tx), np.asarray(T))
        import pytensor.tensor as pt

        x, tx, T = (pt.as_tensor_variable(v) for v in (x, tx, T))
        q = [pt.broadcast_to(_tensor_rows(p[k]), x.shape) for k in names]
        return _loglik_op()(*q, x, tx, T)[0]

    def _default_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        month = _month_in(rows.time_unit if rows is not None else None)
        return {"r": lognormal(0.0, 2.0), "alpha": lognormal(math.log(month), 2.5),
                "s": lognormal(0.0, 1.0), "beta": lognormal(math.log(12.0 * month), 3.0)}

    def _default_mu_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        month = _month_in(rows.time_unit if rows is not None else None)
        return {"log_r": normal(0.0, 2.0), "log_rate": normal(-math.log(month), 2.5),
                "log_s": normal(0.0, 1.0), "log_death": normal(-math.log(12.0 * month), 3.0)}

    @staticmethod
    def _natural_from_latent(u: dict[str, Any], xp: Any) -> dict[str, Any]:
        """r = e^{log r}, alpha = r e^{-log rate}, s = e^{log s}, beta = s e^{-log death}."""
        r = xp.exp(u["log_r"])
        s = xp.exp(u["log_s"])
        return {"r": r, "alpha": r * xp.exp(-u["log_rate"]),
                "s": s, "beta": s * xp.exp(-u["log_death"])}

    @staticmethod
    def _latent_from_natural(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        r, alpha, s, beta = (np.asarray(p[k], dtype=float) for k in ("r", "alpha", "s", "beta"))
        return {"log_r": np.log(r), "log_rate": np.log(r) - np.log(alpha),
                "log_s": np.log(s), "log_death": np.log(s) - np.log(beta)}

    def _purchases_rows(self, rows: UniqueRows, sl: slice, times: np.ndarray,
                        coef: np.ndarray | None = None) -> np.ndarray:
        """Cumulative E[Y(t) | x, t_x, T] at ``times`` for a chunk of rows: (S, chunk, k).

        With ``coef`` (k,), the reductions valuation needs instead, stacked on a last axis
        of 2: ``sum_k coef_k E[Y(t_k)]`` and ``E[Y(t_k)]`` at the last time, (S, chunk, 2).

        Note 009 section 6 is a product ``(r+x)/(alpha+T) · F(s, beta+T, t) · P(alive | x,
        t_x, T)``: only the middle factor depends on the horizon, and P(alive) (the costly
        one, a tail integral per draw and row) does not — so it is evaluated once per draw
        and row, not once per horizon.
        """
        c = rows.columns
        x, tx, T = (c[n][sl] for n in ("x", "tx", "T"))
        p = self._params_for(rows, sl)  # (S, chunk) or (S, 1)
        alive = self._probability_alive(p, x, tx, T)
        rate = (p["r"] + x) / (p["alpha"] + T) * alive  # (S, chunk)
        shape = (self.n_draws, sl.stop - sl.start)
        rate = np.broadcast_to(rate, shape)
        life = _expected_lifetime_factor(p["s"][..., None], (p["beta"] + T)[..., None],
                                         times)  # (S, chunk, k)
        life = np.broadcast_to(life, (*shape, len(times)))
        if coef is not None:
            return rate[..., None] * np.stack([life @ coef, life[..., -1]], axis=-1)
        return rate[..., None] * life
