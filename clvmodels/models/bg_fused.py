"""The BG/NBD and MBG/NBD log-likelihood of a PyMC model as one fused operation.

A Bayesian BG/NBD without covariates has four parameters (per segment, when hierarchical)
and a likelihood that is a sum over the unique rows; the factored PyMC graph of it
(:mod:`clvmodels.models.factored`) becomes ~100 nodes after PyTensor's rewriting — gathers,
their gradients' scatters, fused elementwise loops — which numba compiles as ~300 functions:
~90 % of a first (cold) compile, measured (``bench/compile_measurements.md``). Here the
weighted total and its gradient are one operation (:func:`bg_family_loglik_op`), computed by
one compiled loop (:func:`bg_segments_total_and_grad`): the graph around it is the priors
(and, when hierarchical, the segment latents).

The formula is FHL (2005) eq. (6) in Hardie's overflow-safe form (note 027), the same as
:func:`clvmodels.models.bgnbd.bg_family_log_likelihood`; with s = b + x (BG) or b + x + 1
(MBG) and D = 1{x > 0} (BG) or 1 (MBG)::

    LL = lnG(r+x) - lnG(r) + r ln(alpha) + lnG(a+b) + lnG(s) - lnG(b) - lnG(a+s)
         + ln[(alpha+T)^-(r+x) + D (a/(s-1)) (alpha+t_x)^-(r+x)]

The lnG / psi terms depend on x alone and are evaluated once per distinct (segment, x)
(weighted by the rows' total weight), ln(alpha + T) once per distinct (segment, T) and
ln(alpha + t_x) once per distinct (segment, t_x); only the bracket's log-sum-exp is per row.
The gradient is :func:`~clvmodels.models.bgnbd.bg_family_log_likelihood_grad`'s, accumulated
in the same pass.
The numpy implementation (``perform``, used outside numba) is the maximum-likelihood hot path
:func:`~clvmodels.models.bgnbd.bg_family_value_and_grad`; tests check the two against each
other, against the factored PyMC graph and against finite differences.

Without segments, the model's whole log density is then four log-transformed parameters,
their priors and the kernel; where the priors are of :data:`PRIOR_KINDS` the sampler's callbacks
are compiled from :func:`direct_logp` without any PyTensor graph (:class:`DirectCompile`,
used by :mod:`clvmodels.models.compiled`): a first compile is then mostly the kernel's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from types import SimpleNamespace
from typing import Any

import numba
import numpy as np

from clvmodels.models.compiled import _digamma

__all__ = ["DATA_ORDER", "KERNEL_VERSION", "PRIOR_KINDS", "DirectCompile",
           "bg_family_loglik_op", "bg_family_total_and_grad", "bg_segments_total_and_grad",
           "direct_compile", "direct_logp", "factored_columns", "fused_total",
           "numpy_total_and_grad"]

#: changes with the kernel: part of the Op's printed form, hence of the structure key
KERNEL_VERSION = "1"

_psi = numba.njit(nogil=True, error_model="numpy")(_digamma)


@numba.njit(nogil=True, error_model="numpy")
def _log_and_inverse(alpha: np.ndarray, seg: np.ndarray, u: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """ln(alpha_s + u) and 1 / (alpha_s + u) for each (segment s, value u) pair."""
    out = np.empty(u.shape[0])
    inv = np.empty(u.shape[0])
    for k in range(u.shape[0]):
        v = alpha[seg[k]] + u[k]
        out[k] = math.log(v)
        inv[k] = 1.0 / v
    return out, inv


# no cache=True: numba's own cache would not see a change of _digamma (another file); the
# kernel is stored linked into the compiled callbacks, under keys holding _DIGEST
@numba.njit(nogil=True, error_model="numpy")
def bg_segments_total_and_grad(r: np.ndarray, alpha: np.ndarray, a: np.ndarray,
                               b: np.ndarray, ux: np.ndarray, xseg: np.ndarray,
                               xi: np.ndarray, uT: np.ndarray, Tseg: np.ndarray,
                               Ti: np.ndarray, utx: np.ndarray, txseg: np.ndarray,
                               txi: np.ndarray, w: np.ndarray, modified: bool
                               ) -> tuple[float, np.ndarray]:  # pragma: no cover - compiled
    """Weighted total sum_i w_i LL_i (FHL 2005 eq. 6; MBG: Batislam et al. 2007 eq. 6) and
    its gradient with respect to each segment's (r, alpha, a, b), shape (4, S).

    Segment s has parameters ``r[s], alpha[s], a[s], b[s]``. ``ux`` holds the distinct
    (segment, x) pairs' x and ``xseg`` their segment; ``xi`` each row's pair; likewise
    ``uT, Tseg, Ti`` and ``utx, txseg, txi``; ``w`` each row's weight (customers it stands
    for). A row's three pairs share its segment.
    """
    j = 1.0 if modified else 0.0
    nx, n = ux.shape[0], w.shape[0]
    lat, iat = _log_and_inverse(alpha, Tseg, uT)
    latx, iatx = _log_and_inverse(alpha, txseg, utx)
    # per (segment, x): ln(a / (s - 1)) and 1 / (s - 1) where the second term is present
    log_c = np.zeros(nx)
    inv_s1 = np.zeros(nx)
    present = np.empty(nx, dtype=np.bool_)
    for k in range(nx):
        present[k] = modified or ux[k] > 0.0
        if present[k]:
            q = xseg[k]
            s1 = b[q] + ux[k] + j - 1.0
            log_c[k] = math.log(a[q]) - math.log(s1)
            inv_s1[k] = 1.0 / s1
    wx = np.zeros(nx)
    w_d = np.zeros(nx)  # sum of w * (share of the second term), per (segment, x)
    grad = np.zeros((4, r.shape[0]))
    total = 0.0
    for i in range(n):
        k = xi[i]
        q = xseg[k]
        wi = w[i]
        wx[k] += wi
        rx = r[q] + ux[k]
        t = Ti[i]
        lc = -rx * lat[t]
        if present[k]:
            m = txi[i]
            ld = log_c[k] - rx * latx[m]
            if ld <= lc:
                e = math.exp(ld - lc)
                ll = lc + math.log1p(e)
                wd = e / (1.0 + e)
            else:
                e = math.exp(lc - ld)
                ll = ld + math.log1p(e)
                wd = 1.0 / (1.0 + e)
            wc = 1.0 - wd
            total += wi * ll
            grad[0, q] -= wi * (wc * lat[t] + wd * latx[m])
            grad[1, q] -= wi * rx * (wc * iat[t] + wd * iatx[m])
            w_d[k] += wi * wd
        else:
            total += wi * lc
            grad[0, q] -= wi * lat[t]
            grad[1, q] -= wi * rx * iat[t]
    # the terms in x alone, per (segment, x)
    for k in range(nx):
        wk = wx[k]
        if wk == 0.0:
            continue
        q = xseg[k]
        rq, aq, bq, alq = r[q], a[q], b[q], alpha[q]
        x = ux[k]
        s = bq + x + j
        log_alpha = math.log(alq)
        total += wk * (math.lgamma(rq + x) - math.lgamma(rq) + rq * log_alpha
                       + math.lgamma(aq + bq) + math.lgamma(s) - math.lgamma(bq)
                       - math.lgamma(aq + s))
        psi_as = _psi(aq + s)
        psi_ab = _psi(aq + bq)
        grad[0, q] += wk * (_psi(rq + x) - _psi(rq) + log_alpha)
        grad[1, q] += wk * rq / alq
        grad[2, q] += wk * (psi_ab - psi_as) + w_d[k] / aq
        grad[3, q] += wk * (psi_ab + _psi(s) - _psi(bq) - psi_as) - w_d[k] * inv_s1[k]
    return total, grad


@numba.njit(nogil=True, error_model="numpy")
def bg_family_total_and_grad(r: float, alpha: float, a: float, b: float, ux: np.ndarray,
                             xi: np.ndarray, uT: np.ndarray, Ti: np.ndarray,
                             utx: np.ndarray, txi: np.ndarray, w: np.ndarray,
                             modified: bool) -> tuple[float, float, float, float, float
                                                      ]:  # pragma: no cover - compiled
    """:func:`bg_segments_total_and_grad` for one segment: the total and d/d(r, alpha, a,
    b), with ``ux, uT, utx`` the distinct values of x, T, t_x."""
    total, g = bg_segments_total_and_grad(
        np.full(1, r), np.full(1, alpha), np.full(1, a), np.full(1, b), ux,
        np.zeros(ux.shape[0], np.int64), xi, uT, np.zeros(uT.shape[0], np.int64), Ti, utx,
        np.zeros(utx.shape[0], np.int64), txi, w, modified)
    return total, g[0, 0], g[1, 0], g[2, 0], g[3, 0]


@numba.njit(nogil=True, error_model="numpy")
def _op_outputs(modified: bool, r: Any, alpha: Any, a: Any, b: Any, ux: Any, xseg: Any,
                xi: Any, uT: Any, Tseg: Any, Ti: Any, utx: Any, txseg: Any, txi: Any,
                w: Any) -> Any:  # pragma: no cover - compiled
    """:class:`BGFamilyLogLik`'s outputs in PyTensor's numba backend (0-d total, vectors)."""
    total, g = bg_segments_total_and_grad(r, alpha, a, b, ux, xseg, xi, uT, Tseg, Ti, utx,
                                          txseg, txi, w, modified)
    return np.array(total), g[0].copy(), g[1].copy(), g[2].copy(), g[3].copy()


@numba.njit(nogil=True, error_model="numpy")
def _bg_op(*inputs: Any) -> Any:  # pragma: no cover - compiled
    """The Op for the BG/NBD (``modified`` a compile-time constant)."""
    return _op_outputs(False, *inputs)


@numba.njit(nogil=True, error_model="numpy")
def _mbg_op(*inputs: Any) -> Any:  # pragma: no cover - compiled
    """The Op for the MBG/NBD."""
    return _op_outputs(True, *inputs)


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_2_OVER_PI = 0.5 * math.log(2.0 / math.pi)

#: priors the direct compile implements: PyMC name -> (code, its parameters in order); all
#: are on the positive half-line, sampled on log scale (PyMC's log transform)
PRIOR_KINDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "LogNormal": (0, ("mu", "sigma")), "Gamma": (1, ("alpha", "beta")),
    "HalfNormal": (2, ("sigma",)), "Exponential": (3, ("lam",))}


@numba.njit(nogil=True, error_model="numpy")
def _log_prior(kind: int, u: float, p0: float, p1: float
               ) -> tuple[float, float]:  # pragma: no cover - compiled
    """ln p(theta) + ln|dtheta/du| at theta = e^u (PyMC's log-transformed density, its
    normalising constants included) and its derivative in u, for :data:`PRIOR_KINDS`."""
    if kind == 0:  # LogNormal(mu, sigma): the -ln theta of the density cancels the Jacobian
        z = (u - p0) / p1
        return -0.5 * z * z - math.log(p1) - _HALF_LOG_2PI, -z / p1
    t = math.exp(u)
    if kind == 1:  # Gamma(alpha, beta), rate beta
        return p0 * math.log(p1) - math.lgamma(p0) + p0 * u - p1 * t, p0 - p1 * t
    if kind == 2:  # HalfNormal(sigma)
        q = t / p0
        return _HALF_LOG_2_OVER_PI - math.log(p0) - 0.5 * q * q + u, 1.0 - q * q
    return math.log(p0) - p0 * t + u, 1.0 - p0 * t  # Exponential(lam)


@numba.njit(nogil=True, error_model="numpy")
def direct_logp(x: np.ndarray, pos: Any, kinds: Any, pars: Any, ux: np.ndarray,
                xseg: np.ndarray, xi: np.ndarray, uT: np.ndarray, Tseg: np.ndarray,
                Ti: np.ndarray, utx: np.ndarray, txseg: np.ndarray, txi: np.ndarray,
                w: np.ndarray, modified: bool
                ) -> tuple[float, np.ndarray]:  # pragma: no cover - compiled
    """The model's log density on the sampler's scale and its gradient: x[pos[j]] = ln of
    parameter j (r, alpha, a, b), prior j of kind ``kinds[j]`` with parameters
    ``pars[2j], pars[2j+1]``, plus the weighted BG/NBD (MBG/NBD) log-likelihood (one
    segment)."""
    theta = np.empty((4, 1))
    for j in range(4):
        theta[j, 0] = math.exp(x[pos[j]])
    total, g = bg_segments_total_and_grad(theta[0], theta[1], theta[2], theta[3], ux, xseg,
                                          xi, uT, Tseg, Ti, utx, txseg, txi, w, modified)
    grad = np.zeros(x.shape[0])
    lp = total
    for j in range(4):
        lp_j, d_j = _log_prior(kinds[j], x[pos[j]], pars[2 * j], pars[2 * j + 1])
        lp += lp_j
        grad[pos[j]] = d_j + g[j, 0] * theta[j, 0]
    return lp, grad


@dataclasses.dataclass(frozen=True)
class DirectCompile:
    """The fused model's sampler callbacks compiled directly, without a PyTensor graph.

    The model (four log-transformed parameters, priors of :data:`PRIOR_KINDS`, the fused
    likelihood as a potential) has a log density small enough to write out: the compiled
    sampler's logp-and-gradient is :func:`direct_logp` and its trace expansion ``theta =
    e^u``. A first compile is then the kernel's alone (bench/compile_measurements.md);
    tests check both callbacks against PyMC's own compile of the same model.
    :mod:`clvmodels.models.compiled` uses it (``register_direct``) where the model's layout
    is the one described here, and PyTensor's numba compile otherwise.
    """

    modified: bool
    data_names: tuple[str, ...]  # shared variables: ux, xseg, xi, uT, Tseg, Ti, utx, txseg, txi, w
    priors: tuple[tuple[str, int, float, float], ...]  # (parameter, kind, p0, p1)

    @property
    def version(self) -> str:
        return f"direct|{KERNEL_VERSION}|{_DIGEST}"

    def _register(self, src: str, name: str) -> Any:
        from pytensor.link.numba.cache import compile_numba_function_src

        env = {"np": np, "math": math, "direct_logp": direct_logp}
        key = hashlib.sha256(f"{self.version}|{src}".encode()).hexdigest()
        fn = compile_numba_function_src(src, name, env, cache_key=key)
        return numba.njit(nogil=True, error_model="numpy")(fn)

    def logp_inner(self, free: list[str], n_dim: int) -> Any:
        """``inner(x, *data) -> (logp, grad)`` for the free values ``free`` (None where they
        are not the four parameters' log-transformed values)."""
        names = [f"{p}_log__" for p, *_ in self.priors]
        if sorted(free) != sorted(names) or n_dim != len(free):
            return None
        pos = tuple(free.index(n) for n in names)
        kinds = tuple(k for _, k, _, _ in self.priors)
        pars = tuple(v for *_, p0, p1 in self.priors for v in (p0, p1))
        data = ", ".join(f"d{i}" for i in range(len(self.data_names)))
        src = (f"def clv_direct_logp(x, {data}):\n"
               f"    return direct_logp(x, {pos!r}, {kinds!r}, {pars!r}, {data}, "
               f"{self.modified!r})\n")
        return self._register(src, "clv_direct_logp")

    def expand_inner(self, names: list[str], slices: list[slice], n_dim: int,
                     n_expanded: int) -> Any:
        """``inner(x) -> (trace values,)``: the free values, then each parameter ``e^u``
        (None unless every other trace entry is such a parameter)."""
        lines = [f"    out = np.empty({n_expanded})", f"    for i in range({n_dim}):",
                 "        out[i] = x[i]"]
        index = {n: sl.start for n, sl in zip(names, slices, strict=True)}
        for name, sl in zip(names, slices, strict=True):
            if sl.start < n_dim:
                continue
            source = f"{name}_log__"
            if sl.stop - sl.start != 1 or source not in index or index[source] >= n_dim:
                return None
            lines.append(f"    out[{sl.start}] = math.exp(x[{index[source]}])")
        src = "def clv_direct_expand(x):\n" + "\n".join([*lines, "    return (out,)"]) + "\n"
        return self._register(src, "clv_direct_expand")


def direct_compile(priors: dict[str, Any], data_names: list[str], *, modified: bool
                   ) -> DirectCompile | None:
    """The direct compile of a fused model with these prior specs (None where a prior is
    not of :data:`PRIOR_KINDS` in its usual parametrisation)."""
    out = []
    for name in ("r", "alpha", "a", "b"):
        spec = dict(priors[name])
        kind = PRIOR_KINDS.get(str(spec.pop("dist", "")))
        if kind is None or set(spec) != set(kind[1]):
            return None
        values = [float(spec[k]) for k in kind[1]] + [0.0]
        positive = values[1:2] if kind[0] == 0 else values[:len(kind[1])]  # all but mu
        if not all(math.isfinite(v) for v in values) or any(v <= 0 for v in positive):
            return None  # PyMC's own graph then says what such a prior means
        out.append((name, kind[0], values[0], values[1]))
    return DirectCompile(modified=modified, data_names=tuple(data_names), priors=tuple(out))


def _code_digest(obj: Any) -> bytes:
    """The bytecode, constants and names of a function's code (and of nested code)."""
    code = obj.__code__ if hasattr(obj, "__code__") else obj
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            parts.append(_code_digest(const))
        else:  # a frozenset's repr follows the string hash seed: sort it
            parts.append(repr(sorted(map(repr, const)) if isinstance(const, frozenset)
                              else const).encode())
    return b"|".join(parts)


def _module_digest() -> str:
    """sha256 of what the compiled code depends on, taken once, at import, from the code
    actually loaded: every function and method of this module (the kernels, the priors, the
    generated sources' templates) and the digamma it calls. Part of the Op's printed form
    (hence of every structure key) and of every numba cache key here."""
    h = hashlib.sha256(_code_digest(_digamma))
    for name, obj in sorted(globals().items()):
        obj = getattr(obj, "py_func", obj)
        if isinstance(obj, type) and obj.__module__ == __name__:
            for attr, member in sorted(vars(obj).items()):
                member = getattr(member, "fget", member)
                if hasattr(member, "__code__"):
                    h.update(f"{name}.{attr}".encode() + _code_digest(member))
        elif hasattr(obj, "__code__") and getattr(obj, "__module__", None) == __name__:
            h.update(name.encode() + _code_digest(obj))
    h.update(repr(sorted(PRIOR_KINDS.items())).encode())
    return h.hexdigest()


_N_PARAMS = 4
_N_DATA = 10
#: the data inputs' kinds: ux, xseg, xi, uT, Tseg, Ti, utx, txseg, txi, w
_DATA_KINDS = ("f", "i", "i", "f", "i", "i", "f", "i", "i", "f")
_OP_CLASS: list[Any] = []


def _op_class() -> Any:
    """The PyTensor Op class (defined on first use: PyTensor is imported with PyMC)."""
    if _OP_CLASS:
        return _OP_CLASS[0]
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, grad_not_implemented
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch import basic as nbasic

    class BGFamilyLogLikOp(Op):
        """Weighted BG/NBD (or MBG/NBD) log-likelihood total and its gradient.

        Inputs ``r, alpha, a, b`` (float64 vectors, one value per segment) and the data
        ``ux, xseg, xi, uT, Tseg, Ti, utx, txseg, txi, w`` (see
        :func:`bg_segments_total_and_grad`); outputs the total and its gradient with respect
        to each parameter vector. Its gradient is those outputs times the total's output
        gradient (first derivatives only).
        """

        __props__ = ("modified", "version")

        def __init__(self, modified: bool) -> None:
            self.modified = bool(modified)
            self.version = f"{KERNEL_VERSION}|{_DIGEST[:16]}"

        def make_node(self, *inputs: Any) -> Apply:
            if len(inputs) != _N_PARAMS + _N_DATA:
                raise TypeError(f"{type(self).__name__} takes {_N_PARAMS + _N_DATA} inputs")
            params = [pt.cast(pt.as_tensor_variable(v), "float64") for v in inputs[:_N_PARAMS]]
            data = [pt.as_tensor_variable(v) for v in inputs[_N_PARAMS:]]
            kinds = _DATA_KINDS
            for p in params:
                if p.ndim != 1:
                    raise TypeError("BG/NBD parameters must be vectors (one value per segment)")
            for v, kind in zip(data, kinds, strict=True):
                if v.ndim != 1 or np.dtype(v.dtype).kind != kind:
                    raise TypeError(f"data input {v} must be a vector of kind {kind!r}")
            data = [pt.cast(v, "float64" if k == "f" else "int64")
                    for v, k in zip(data, kinds, strict=True)]
            outputs = [pt.scalar(dtype="float64"),
                       *(pt.vector(dtype="float64", shape=p.type.shape) for p in params)]
            return Apply(self, [*params, *data], outputs)

        def perform(self, node: Any, inputs: Any, output_storage: Any) -> None:
            values = numpy_total_and_grad(*inputs, modified=self.modified)
            for store, value in zip(output_storage, values, strict=True):
                store[0] = np.asarray(value, dtype=np.float64)

        def connection_pattern(self, node: Any) -> list[list[bool]]:
            return [[True] * (1 + _N_PARAMS)] * _N_PARAMS + [[False] * (1 + _N_PARAMS)] * _N_DATA

        def grad(self, inputs: Any, output_grads: Any) -> list[Any]:
            g_total, *rest = output_grads
            if isinstance(g_total.type, DisconnectedType) or not all(
                    isinstance(g.type, DisconnectedType) for g in rest):
                return [grad_not_implemented(self, i, inputs[i],
                                             "only the total's first derivatives")
                        for i in range(_N_PARAMS)] + [DisconnectedType()()] * _N_DATA
            outs = self(*inputs)
            return [g_total * d for d in outs[1:]] + [DisconnectedType()()] * _N_DATA

    key = hashlib.sha256(f"clvmodels.bg_fused|{KERNEL_VERSION}|{_DIGEST}"
                         .encode()).hexdigest()

    @nbasic.register_funcify_and_cache_key(BGFamilyLogLikOp)
    def _numba_bg_family(op: Any, node: Any, **kwargs: Any) -> tuple[Any, str]:
        return (_mbg_op if op.modified else _bg_op), f"{key}|modified={op.modified}"

    _OP_CLASS.append(BGFamilyLogLikOp)
    return BGFamilyLogLikOp


def bg_family_loglik_op(modified: bool) -> Any:
    """The fused log-likelihood Op (:func:`_op_class`) for the BG/NBD or the MBG/NBD."""
    return _op_class()(modified)


def _levels(values: np.ndarray, index: np.ndarray, w: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return values, index, np.bincount(index, weights=w, minlength=len(values))


def numpy_total_and_grad(r: Any, alpha: Any, a: Any, b: Any, ux: np.ndarray,
                         xseg: np.ndarray, xi: np.ndarray, uT: np.ndarray, Tseg: np.ndarray,
                         Ti: np.ndarray, utx: np.ndarray, txseg: np.ndarray, txi: np.ndarray,
                         w: np.ndarray, *, modified: bool) -> tuple[Any, ...]:
    """The same total and per-segment gradients as :func:`bg_segments_total_and_grad`, in
    numpy: the maximum-likelihood hot path
    :func:`~clvmodels.models.bgnbd.bg_family_value_and_grad` on each segment's rows."""
    from clvmodels.models.bgnbd import bg_family_value_and_grad

    r, alpha, a, b = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (r, alpha, a, b))
    xi, Ti, txi = (np.asarray(v, dtype=np.int64) for v in (xi, Ti, txi))
    w = np.asarray(w, dtype=float)
    ux, uT, utx = (np.asarray(v, dtype=float) for v in (ux, uT, utx))
    row_seg = np.asarray(xseg, dtype=np.int64)[xi]
    total, grad = 0.0, np.zeros((4, len(r)))
    for q in range(len(r)):
        rows = np.flatnonzero(row_seg == q)
        if len(rows) == 0:
            continue
        wq = w[rows]
        levels = {}
        for name, u, idx in (("x", ux, xi), ("T", uT, Ti), ("tx", utx, txi)):
            used, inverse = np.unique(idx[rows], return_inverse=True)
            levels[name] = _levels(u[used], inverse.reshape(-1), wq)
        d = SimpleNamespace(levels=levels.__getitem__, x=ux[xi[rows]], w=wq,
                            n_customers=float(wq.sum()))
        value, g = bg_family_value_and_grad(float(r[q]), float(alpha[q]), float(a[q]),
                                            float(b[q]), d, modified=modified)
        total += value
        grad[:, q] = g
    return (total, *grad)


def _pairs(codes: np.ndarray, values: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (segment, value) pairs: their values, segments, and each row's pair."""
    keys = np.column_stack([codes.astype(float), np.asarray(values, dtype=float)])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    return uniq[:, 1].copy(), uniq[:, 0].astype(np.int64), inverse.reshape(-1).astype(np.int64)


def factored_columns(x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                     segment: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The kernel's data from per-row ``x, t_x, T`` (and segment codes): for each column
    the distinct (segment, value) pairs ``u<name>``, their segments ``<name>seg`` and each
    row's pair ``<name>i``."""
    codes = (np.zeros(len(np.asarray(x)), dtype=np.int64) if segment is None
             else np.asarray(segment, dtype=np.int64))
    out: dict[str, np.ndarray] = {}
    for name, values in (("x", x), ("T", T), ("tx", tx)):
        out[f"u{name}"], out[f"{name}seg"], out[f"{name}i"] = _pairs(codes, values)
    return out


#: the kernel's data inputs, in order (names of :func:`factored_columns`'s arrays)
DATA_ORDER = ("ux", "xseg", "xi", "uT", "Tseg", "Ti", "utx", "txseg", "txi")


def fused_total(params: dict[str, Any], columns: dict[str, np.ndarray], weights: np.ndarray,
                inputs: Any, *, modified: bool, segment: np.ndarray | None = None,
                priors: dict[str, Any] | None = None, model: Any = None) -> Any:
    """The weighted log-likelihood total of a PyMC model as one :func:`bg_family_loglik_op`
    node; the data enter through ``inputs`` (:class:`~clvmodels.models.compiled.DataInputs`)
    so that any data set of these columns gives the same graph. ``params`` are scalars, or
    one value per segment with ``segment`` each row's segment code (hierarchical). With the
    model's ``priors`` (specs) and ``model``, a model without segments has its sampler
    compiled directly where the priors allow it (:class:`DirectCompile`)."""
    import pytensor.tensor as pt

    cols = factored_columns(columns["x"], columns["tx"], columns["T"], segment)
    data = [inputs.add(cols[n], n[1:] if n.startswith("u") else n) for n in DATA_ORDER]
    data.append(inputs.add(np.asarray(weights, dtype=float), "weights"))
    scalar = all(pt.as_tensor_variable(params[n]).ndim == 0 for n in ("r", "alpha", "a", "b"))
    vectors = [pt.as_tensor_variable(params[n]) for n in ("r", "alpha", "a", "b")]
    if scalar:
        vectors = [v[None] for v in vectors]
    out = bg_family_loglik_op(modified)(*vectors, *data)
    if scalar and segment is None and priors is not None and model is not None:
        from clvmodels.models.compiled import register_direct

        direct = direct_compile(priors, [v.name for v in data], modified=modified)
        if direct is not None:
            register_direct(model, direct)
    return out[0]


#: see :func:`_module_digest`
_DIGEST = _module_digest()
