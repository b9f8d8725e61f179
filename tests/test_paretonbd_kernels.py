"""Pareto/NBD compiled likelihood kernels (clvmodels.models._pnbd_kernels): equal to the numpy
reference paths on ordinary and extreme inputs, gradients against finite differences, no NaN.

The references: ``_special._hyp_series_numpy`` (the series loop the kernel replaces) and
``_special.log_tail_integral`` evaluated with it; the per-row ``_loglik_and_grad`` summed
with weights (what ``ParetoNBD._value_and_grad`` did before the fused totals).
"""

from __future__ import annotations

import numpy as np
import pytest

from clvmodels.models import _special as sp
from clvmodels.models import paretonbd as pn
from clvmodels.models.paretonbd import ParetoNBD
from clvmodels.rows import UniqueRows

pytest.importorskip("numba")

RTOL = 1e-12


@pytest.fixture
def numpy_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the reference tail integral use the numpy series (not the kernel)."""
    monkeypatch.setattr(sp, "_hyp_series", sp._hyp_series_numpy)


def _close(new: np.ndarray, ref: np.ndarray, rtol: float = RTOL, floor: float = 1.0) -> None:
    new, ref = np.asarray(new), np.asarray(ref)
    assert new.shape == ref.shape
    assert np.all(np.isfinite(new)), "kernel gave a non-finite value"
    err = np.abs(new - ref) / np.maximum(np.abs(ref), floor)
    assert float(err.max(initial=0.0)) <= rtol, float(err.max())


def test_series_kernel_equals_numpy_loop() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    x = np.sort(rng.integers(0, 300, n)).astype(float)
    e = 0.4 + x + rng.choice([0.0, 1.0], n)
    c = e + rng.uniform(0.01, 3.0, n)
    z = rng.uniform(0.0, 0.9, n)
    z[:50] = 0.0
    z[50:100] = 0.9
    z[100:150] = 1e-300
    e[150:200] = 1e4  # huge parameters (x ~ 10,000)
    c[150:200] = 1e4 + 0.5
    c[200:250] = e[200:250] * (1 + 1e-12)  # e ~ c: terms barely decay but for z^k
    for grad in (True, False):
        ref = sp._hyp_series_numpy(e, c, z, grad)
        new = sp._hyp_series(e, c, z, grad)
        for a, b in zip(new, ref, strict=True):
            # log S and the log derivatives: absolute at O(1), relative beyond
            _close(a, b, rtol=1e-13)
    # any order of the elements (tables rebuilt on every change of (e, c))
    perm = rng.permutation(n)
    for a, b in zip(sp._hyp_series(e[perm], c[perm], z[perm], True),
                    sp._hyp_series_numpy(e[perm], c[perm], z[perm], True), strict=True):
        _close(a, b, rtol=1e-13)


CASES = {
    # name: (p offset on x, q, alpha, beta, t) -- p = r + x + offset with r = 0.55
    "alpha<beta": (1.0, 0.6, 10.5, 11.7, "grid"),
    "alpha>beta": (0.0, 1.6, 14.0, 3.2, "grid"),
    "alpha=beta": (1.0, 0.6, 7.0, 7.0, "grid"),
    "alpha~beta": (1.0, 0.6, 7.0, 7.0 * (1 + 1e-13), "grid"),
    "far apart, z > 0.9 for small t": (1.0, 0.6, 0.01, 100.0, "grid"),
    "far apart, alpha big": (0.0, 1.6, 250.0, 0.02, "grid"),
    "t = 0": (0.0, 1.6, 5.0, 7.0, "zero"),
    "huge t": (1.0, 0.6, 5.0, 7.0, "huge"),
}


def _times(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "zero":
        return np.zeros(n)
    if kind == "huge":
        return rng.uniform(1e9, 1e13, n)
    return np.round(rng.uniform(0.0, 52.0, n) * 7) / 7  # a daily grid in weeks


@pytest.mark.parametrize("case", list(CASES))
def test_tail_integral_kernel_equals_reference(case: str, numpy_series: None) -> None:
    off, q, alpha, beta, kind = CASES[case]
    rng = np.random.default_rng(1)
    n = 3000
    x = np.sort(rng.integers(0, 120, n)).astype(float)
    x[:100] = 0.0
    t = _times(kind, n, rng)
    p = 0.55 + x + off
    ref_v, ref_g = sp.log_tail_integral(p, q, alpha, beta, t, grad=True)
    new_v, new_g = pn._log_tail(p, q, alpha, beta, t, grad=True)
    _close(new_v, ref_v)
    _close(new_g, ref_g, floor=1e-3)
    _close(pn._log_tail(p, q, alpha, beta, t), new_v, rtol=0.0)  # value alone: the same


def test_tail_integral_kernel_per_row_parameters_and_shapes(numpy_series: None) -> None:
    rng = np.random.default_rng(2)
    n = 4000
    x = np.sort(rng.integers(0, 60, n)).astype(float)
    t = rng.uniform(0.0, 80.0, n)
    alpha = np.exp(rng.uniform(-4, 4, n))  # ratios up to e^8: both branches, both orders
    beta = np.exp(rng.uniform(-4, 4, n))
    ref = sp.log_tail_integral(0.3 + x, 1.7, alpha, beta, t, grad=True)
    new = pn._log_tail(0.3 + x, 1.7, alpha, beta, t, grad=True)
    _close(new[0], ref[0])
    _close(new[1], ref[1], floor=1e-3)
    # posterior draws (d, 1) against customers (n,), and 0-d inputs
    r = np.array([[0.4], [0.9]])
    ref = sp.log_tail_integral(r + x[:50], 0.8, np.array([[3.0], [30.0]]), 9.0, t[:50],
                               grad=True)
    new = pn._log_tail(r + x[:50], 0.8, np.array([[3.0], [30.0]]), 9.0, t[:50], grad=True)
    assert new[0].shape == (2, 50) and new[1].shape == (4, 2, 50)
    _close(new[0], ref[0])
    _close(new[1], ref[1], floor=1e-3)
    v0 = pn._log_tail(2.5, 0.6, 10.0, 12.0, 3.0)
    assert np.shape(v0) == ()
    _close(v0, sp.log_tail_integral(2.5, 0.6, 10.0, 12.0, 3.0))


def _rows(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> UniqueRows:
    return UniqueRows(columns={"x": x, "tx": tx, "T": T}, weights=w,
                      inverse=np.arange(len(x)), index=None, time_unit="W")


def _extreme_rows(n: int = 3000) -> UniqueRows:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 40, n).astype(float)
    T = np.round(rng.uniform(0.2, 60.0, n) * 7) / 7
    tx = np.round(rng.uniform(0.0, 1.0, n) * T * 7) / 7
    x[:200] = 0.0  # no repeat purchase: t_x = 0
    tx[:200] = 0.0
    tx[200:400] = T[200:400]  # last purchase at T
    x[400:420] = 400.0  # very frequent buyers
    tx[400:420] = T[400:420]
    T[420:440] = 1e6  # observed for a very long time
    tx[420:440] = 0.5e6
    keys = np.unique(np.column_stack([x, tx, T]), axis=0)
    return _rows(keys[:, 0], keys[:, 1], keys[:, 2], rng.integers(1, 50, len(keys)))


PARAMS = [(0.55, 10.5, 0.6, 11.7), (0.8, 20.0, 1.3, 3.0), (1.2, 5.0, 0.9, 5.0),
          (0.5, 0.1, 2.0, 100.0), (2.0, 100.0, 0.5, 0.1), (0.3, 2.0, 1.0, 40.0)]


@pytest.mark.parametrize("params", PARAMS)
def test_fused_totals_equal_per_row_reference(params: tuple[float, ...],
                                              numpy_series: None) -> None:
    d = _extreme_rows()
    r, alpha, s, beta = params
    k1 = sp.log_tail_integral(r + d.x + 1.0, s, alpha, beta, d.T, grad=True)
    k2 = sp.log_tail_integral(r + d.x, s + 1.0, alpha, beta, d.tx, grad=True)
    ll, grad = pn._loglik_and_grad(r, alpha, s, beta, pn._XTerms.of(r, d.x), k1, k2)
    ref_total, ref_grad = float(ll @ d.w), grad @ d.w
    model = ParetoNBD()
    total, g = model._value_and_grad(dict(zip(model.param_names, params, strict=True)), d)
    assert np.isfinite(total) and np.all(np.isfinite(g))
    assert abs(total - ref_total) <= 1e-12 * abs(ref_total)
    # gradient components: relative to the size of what is summed (they can cancel)
    scale = np.abs(grad) @ d.w
    assert np.all(np.abs(g - ref_grad) <= 1e-12 * scale), (g, ref_grad)
    # the per-row path (_loglik / _loglik_grad) agrees with the reference per row
    p = dict(zip(model.param_names, params, strict=True))
    _close(model._loglik(p, d), ll)
    _close(model._loglik_grad(p, d), grad, floor=1e-3)


@pytest.mark.parametrize("params", PARAMS[:4])
def test_fused_gradient_matches_finite_differences(params: tuple[float, ...]) -> None:
    d = _extreme_rows(1500)
    model = ParetoNBD()
    names = model.param_names
    _, g = model._value_and_grad(dict(zip(names, params, strict=True)), d)
    for j in range(4):
        h = 1e-6 * params[j]
        up, dn = list(params), list(params)
        up[j] += h
        dn[j] -= h
        fd = (model._value_and_grad(dict(zip(names, up, strict=True)), d)[0]
              - model._value_and_grad(dict(zip(names, dn, strict=True)), d)[0]) / (2 * h)
        assert fd == pytest.approx(g[j], rel=1e-5, abs=1e-4 * float(d.w.sum()) / params[j])


def test_combine_rows_keeps_the_small_share() -> None:
    """One term of the bracket e^700 times the other: its share is e^-700, not 0 - 0."""
    from clvmodels.models._pnbd_kernels import combine_rows

    l1 = np.array([0.0, -700.0])
    l2 = np.array([-700.0, 0.0])
    acc1, acc2, accx = np.empty(2), np.empty(2), np.empty(1)
    total = combine_rows(l1, l2, np.array([0, 1]), np.array([0, 1]), np.array([0, 0]),
                         np.array([0.0]), 0.0, np.array([1.0, 2.0]), acc1, acc2, accx)
    small = np.exp(-700.0) / (1.0 + np.exp(-700.0))
    assert total == pytest.approx(3.0 * np.log1p(np.exp(-700.0)), abs=1e-300)
    assert acc1[0] == pytest.approx(1.0) and acc1[1] == pytest.approx(2.0 * small, rel=1e-14)
    assert acc2[0] == pytest.approx(small, rel=1e-14) and acc2[1] == pytest.approx(2.0)
    assert accx[0] == pytest.approx(1.0 + 2.0 * small)


@pytest.mark.parametrize("params", [*PARAMS, (0.5, 7.0, 0.8, 7.0)])  # last: alpha = beta
def test_exact_hessian_matches_differences_of_the_gradient(params: tuple[float, ...]) -> None:
    """The analytic Hessian (series elements exact, z > 0.9 elements by differences of the
    reference gradient) against central differences of the fused gradient."""
    d = _extreme_rows(1500)
    model = ParetoNBD()
    names = model.param_names
    p = dict(zip(names, params, strict=True))
    total, g, hess = model._value_grad_hess(p, d)
    ref_total, ref_g = model._value_and_grad(p, d)
    assert total == pytest.approx(ref_total, rel=1e-13)
    np.testing.assert_allclose(g, ref_g, rtol=1e-11, atol=1e-9 * float(d.w.sum()))
    fd = np.empty((4, 4))
    for j in range(4):
        h = 1e-5 * params[j]
        up, dn = list(params), list(params)
        up[j] += h
        dn[j] -= h
        fd[:, j] = (model._value_and_grad(dict(zip(names, up, strict=True)), d)[1]
                    - model._value_and_grad(dict(zip(names, dn, strict=True)), d)[1]) / (2 * h)
    assert np.all(np.isfinite(hess))
    np.testing.assert_array_equal(hess, hess.T)
    scale = np.sqrt(np.outer(np.abs(np.diag(fd)), np.abs(np.diag(fd))))
    assert float(np.max(np.abs(hess - fd) / scale)) < 1e-7


def test_tail_hessian_kernel_against_differences_elementwise() -> None:
    """Per element, d2 log K / d(p, q, alpha, beta)^2 of the kernel against central
    differences of the reference gradient: alpha < beta, alpha > beta, alpha = beta (z = 0),
    t = 0, big x."""
    rng = np.random.default_rng(5)
    n = 400
    p = np.sort(0.55 + rng.integers(0, 300, n)).astype(float) + 1.0
    t = np.round(rng.uniform(0, 52, n) * 7) / 7
    t[:20] = 0.0
    for q, alpha, beta in ((0.6, 10.5, 11.7), (1.6, 14.0, 3.2), (0.6, 7.0, 7.0),
                           (0.6, 2.0, 15.0)):
        v, g, h = pn._log_tail_hess(p, q, alpha, beta, t)
        ref_v, ref_g = sp.log_tail_integral(p, q, alpha, beta, t, grad=True)
        _close(v, ref_v)
        _close(g, ref_g, floor=1e-3)
        args = [p, np.full(n, q), np.full(n, alpha), np.full(n, beta), t]
        for j in range(4):
            step = 1e-5 * np.abs(args[j])
            up, dn = list(args), list(args)
            up[j] = args[j] + step
            dn[j] = args[j] - step
            fd = ((sp.log_tail_integral(*up, grad=True)[1]
                   - sp.log_tail_integral(*dn, grad=True)[1]) / (2 * step))
            _close(h[:, j], fd, rtol=2e-6, floor=1e-2)


def test_covariate_fit_with_the_exact_hessian_equals_the_difference_hessian(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pareto/NBD fit with a categorical covariate: estimates, log-likelihood and standard
    errors are the same whether the pattern Hessians are exact or central differences of the
    gradient (the path a family without ``_value_grad_hess`` takes)."""
    import pandas as pd

    from clvmodels.simulate import simulate_paretonbd

    frames = []
    for k, (a, b) in enumerate([(10.0, 12.0), (6.0, 12.0), (10.0, 25.0)]):
        part = simulate_paretonbd(3000, r=0.6, alpha=a, s=0.7, beta=b, T=40.0,
                                  random_seed=10 + k)
        part["channel"] = "abc"[k]
        frames.append(part)
    data = pd.concat(frames, ignore_index=True)
    data.attrs = dict(frames[0].attrs)
    exact = ParetoNBD(purchase_covariates=["channel"], dropout_covariates=["channel"]).fit(data)
    monkeypatch.setattr(ParetoNBD, "_value_grad_hess", lambda self, p, d: None)
    diff = ParetoNBD(purchase_covariates=["channel"], dropout_covariates=["channel"]).fit(data)
    assert exact.converged_ and diff.converged_
    assert exact.log_likelihood_ == pytest.approx(diff.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(exact.params_, diff.params_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(exact.standard_errors_, diff.standard_errors_, rtol=1e-5)


@pytest.mark.parametrize("family", ["pnbd", "bgnbd"])
def test_hessian_assembly_by_blocks_equals_the_dense_product(family: str) -> None:
    """CovariatePlan._assemble (blocks, no (n, P, P+Q) temporaries) equals
    sum_i w_i B_i' h_i B_i with B_i = [I, A_i] formed explicitly; BG/NBD's drop-out group
    links two parameters (a and b), Pareto/NBD's one each."""
    import pandas as pd  # noqa: F401  (the simulator returns a frame)

    from clvmodels import BetaGeo
    from clvmodels.models.covariate_fit import PATTERN, CovariatePlan
    from clvmodels.simulate import simulate_paretonbd

    rng = np.random.default_rng(0)
    cls = ParetoNBD if family == "pnbd" else BetaGeo
    model = cls(purchase_covariates=["x1", "x2"], dropout_covariates=["x2", "x3", "x1"])
    n = 400
    data = simulate_paretonbd(n, r=0.5, alpha=10.0, s=0.6, beta=12.0, T=40.0, random_seed=1)
    for c in ("x1", "x2", "x3"):
        data[c] = rng.standard_normal(n)
    layout = model._learn_layout(data)
    z, codes = layout.encoding.patterns(data, what="the test data")
    patterns = np.zeros((int(codes.max()) + 1, z.shape[1]))
    patterns[codes] = z
    plan = CovariatePlan(model, model._fit_data(data, None, {PATTERN: codes}), layout, patterns)
    P = len(model.param_names)
    h = rng.standard_normal((len(plan.z), P, P))
    h = h + h.transpose(0, 2, 1)
    w = rng.uniform(1.0, 3.0, len(plan.z))
    B = np.concatenate([np.broadcast_to(np.eye(P), (len(plan.z), P, P)),
                        plan._design_jacobian(plan.z)], axis=2)
    ref = np.einsum("kja,kjb->ab", B * w[:, None, None], np.einsum("kjl,klb->kjb", h, B))
    new = plan._assemble(h, plan.z, w)
    np.testing.assert_allclose(new, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_array_equal(new, new.T)


def test_per_row_exact_hessian_matches_differences_of_the_gradient() -> None:
    """Row mode: per-row parameters (alpha_i, beta_i e^6 apart at most, both orders), value
    and gradient equal the module functions, the Hessian equals central differences of
    log_likelihood_grad (to their error, relative to each row's largest entry)."""
    d = _extreme_rows(1500)
    n = d.n_rows
    rng = np.random.default_rng(3)
    theta = [np.full(n, 0.55), np.exp(rng.uniform(-3, 3, n)), np.full(n, 0.7),
             np.exp(rng.uniform(-3, 3, n))]
    ll, g, h = pn._rows_value_grad_hess(*theta, d.x, d.tx, d.T, hess=True)
    ll2, g2 = pn._rows_value_grad_hess(*theta, d.x, d.tx, d.T, hess=False)
    ref_ll = pn.log_likelihood(*theta, d.x, d.tx, d.T)
    ref_g = pn.log_likelihood_grad(*theta, d.x, d.tx, d.T)
    _close(ll, ref_ll)
    _close(ll2, ref_ll)
    _close(g, ref_g, floor=1e-3)
    _close(g2, ref_g, floor=1e-3)
    fd = np.empty((4, 4, n))
    for j in range(4):
        step = 1e-5 * theta[j]
        up, dn = list(theta), list(theta)
        up[j] = theta[j] + step
        dn[j] = theta[j] - step
        fd[:, j] = (pn.log_likelihood_grad(*up, d.x, d.tx, d.T)
                    - pn.log_likelihood_grad(*dn, d.x, d.tx, d.T)) / (2 * step)
    assert np.all(np.isfinite(h))
    np.testing.assert_array_equal(h, h.transpose(1, 0, 2))
    row_scale = np.abs(fd).max(axis=(0, 1))
    assert float((np.abs(h - fd) / row_scale).max()) < 1e-7


def test_row_mode_fit_with_the_fused_hooks_equals_the_plain_hooks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A continuous-covariate Pareto/NBD fit (row mode) gives the same LL, estimates and
    standard errors with the fused per-row value-and-gradient and exact per-row Hessian as
    with _loglik / _loglik_grad and central differences."""
    from clvmodels.simulate import simulate_paretonbd

    rng = np.random.default_rng(7)
    n = 1500
    z = rng.standard_normal(n)
    data = simulate_paretonbd(n, r=0.6, alpha=10.0 * np.exp(-0.3 * z), s=0.7,
                              beta=12.0 * np.exp(-0.2 * z), T=40.0, random_seed=4)
    data["z"] = z
    exact = ParetoNBD(purchase_covariates=["z"], dropout_covariates=["z"]).fit(data)
    assert exact.data_summary_["covariate_evaluation"] == "row"
    monkeypatch.delattr(ParetoNBD, "_loglik_value_grad")
    monkeypatch.delattr(ParetoNBD, "_loglik_grad_hess")
    plain = ParetoNBD(purchase_covariates=["z"], dropout_covariates=["z"]).fit(data)
    assert exact.converged_ and plain.converged_
    assert exact.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(exact.params_, plain.params_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(exact.standard_errors_, plain.standard_errors_, rtol=1e-5)


@pytest.mark.parametrize("s, beta", [(3e-16, 1e300), (1e-300, 1e300), (0.5, 1e300),
                                     (3e-16, 11.0), (1e-300, 1e-300)])
def test_kernels_never_raise_at_extreme_parameters(s: float, beta: float) -> None:
    """Division by zero inside the compiled kernels follows numpy's rules (inf / nan, which
    the callers guard), never Python's ZeroDivisionError (it crashed at beta = 1e300): the
    log-likelihood stays finite and equal to the s -> 0 limit's where it should."""
    x, tx, T = np.array([0.0, 1.0, 5.0]), np.array([0.0, 3.0, 20.0]), np.full(3, 30.0)
    with np.errstate(all="ignore"):
        ll = pn.log_likelihood(0.55, 10.6, s, beta, x, tx, T)
        pn.log_likelihood_grad(0.55, 10.6, s, beta, x, tx, T)
    assert np.all(np.isfinite(ll))
    with np.errstate(all="ignore"):
        reference = pn.log_likelihood(0.55, 10.6, 3e-16, 11.0, x, tx, T)
    if s < 1e-15 or beta > 1e200:  # nobody drops out: the NBD part alone
        np.testing.assert_allclose(ll, reference, rtol=1e-9)
