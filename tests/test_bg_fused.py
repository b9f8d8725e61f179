"""The fused BG/NBD / MBG/NBD log-likelihood node of the Bayesian model
(clvmodels.models.bg_fused): the compiled kernel equals the numpy hot path and the plain
per-row formula, its gradient equals finite differences, extreme inputs stay finite, and the
PyMC model built with it has the factored graph's logp and gradient with a fraction of the
nodes to compile."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")
pytest.importorskip("numba")

from clvmodels.models.bg_fused import (
    DATA_ORDER,
    bg_family_loglik_op,
    bg_family_total_and_grad,
    bg_segments_total_and_grad,
    factored_columns,
    numpy_total_and_grad,
)
from clvmodels.models.bgnbd import bg_family_log_likelihood
from clvmodels.models.priors import validate_priors
from clvmodels.simulate import simulate_bgnbd, uniform_observation_lengths


def _rows(n: int, seed: int, *, x_max: int = 12, T_max: float = 52.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(1.0, T_max, n), 1)
    x = rng.integers(0, x_max + 1, n).astype(float)
    tx = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T, 1), 0.0)
    w = rng.integers(1, 5, n).astype(float)
    return x, tx, T, w


def _kernel(params: tuple[float, ...], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
            w: np.ndarray, modified: bool) -> np.ndarray:
    c = factored_columns(x, tx, T)
    return np.array(bg_family_total_and_grad(*params, c["ux"], c["xi"], c["uT"], c["Ti"],
                                             c["utx"], c["txi"], w, modified))


def _numpy(params: tuple[float, ...], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
           w: np.ndarray, modified: bool) -> np.ndarray:
    c = factored_columns(x, tx, T)
    out = numpy_total_and_grad(*params, *(c[n] for n in DATA_ORDER), w, modified=modified)
    return np.array([out[0], *(float(g[0]) for g in out[1:])])


PARAMS = [(0.243, 4.41, 0.793, 2.43), (2.5, 0.3, 0.05, 0.4), (0.02, 40.0, 8.0, 0.7)]


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("params", PARAMS)
def test_kernel_equals_numpy_and_plain_formula(params: tuple[float, ...],
                                               modified: bool) -> None:
    x, tx, T, w = _rows(500, 1)
    ours = _kernel(params, x, tx, T, w, modified)
    ref = _numpy(params, x, tx, T, w, modified)
    np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-9)
    plain = bg_family_log_likelihood(*params, x, tx, T, modified=modified)
    assert ours[0] == pytest.approx(float(w @ plain), rel=1e-12)


@pytest.mark.parametrize("modified", [False, True])
def test_kernel_gradient_equals_finite_differences(modified: bool) -> None:
    x, tx, T, w = _rows(300, 2)
    p = np.array(PARAMS[0])
    grad = _kernel(tuple(p), x, tx, T, w, modified)[1:]
    for k in range(4):
        h = 1e-6 * p[k]
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        fd = (_kernel(tuple(up), x, tx, T, w, modified)[0]
              - _kernel(tuple(down), x, tx, T, w, modified)[0]) / (2 * h)
        assert grad[k] == pytest.approx(fd, rel=1e-5, abs=1e-4)


EXTREME = [(1e-8, 1e-8, 1e-8, 1e-8), (1e4, 1e4, 1e4, 1e4), (1e-6, 1e6, 1e5, 1e-5),
           (50.0, 1e-6, 1e-3, 0.2), (0.5, 1.0, 0.5, 0.999999)]


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("params", EXTREME)
def test_extreme_inputs_finite_and_equal_to_reference(params: tuple[float, ...],
                                                      modified: bool) -> None:
    """Tiny and huge parameters, b < 1 with non-buyers (b - 1 < 0 must not be used),
    heavy buyers and long histories: finite, and the numpy reference's values."""
    x, tx, T, w = _rows(400, 3, x_max=3000, T_max=5000.0)
    x[:40] = 0.0
    tx[:40] = 0.0
    ours = _kernel(params, x, tx, T, w, modified)
    assert np.all(np.isfinite(ours)), ours
    ref = _numpy(params, x, tx, T, w, modified)
    scale = np.abs(ref) + np.abs(ref[0]) * 1e-3
    assert np.all(np.abs(ours - ref) <= 1e-9 * scale), (ours, ref)


def test_zero_weight_rows_and_single_row() -> None:
    x, tx, T, w = _rows(50, 4)
    w[::2] = 0.0
    keep = w > 0
    a = _kernel(PARAMS[0], x, tx, T, w, False)
    b = _kernel(PARAMS[0], x[keep], tx[keep], T[keep], w[keep], False)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    one = _kernel(PARAMS[0], x[:1], tx[:1], T[:1], np.ones(1), False)
    ll = bg_family_log_likelihood(*PARAMS[0], x[:1], tx[:1], T[:1], modified=False)
    assert one[0] == pytest.approx(float(ll[0]), rel=1e-13)


def _pymc_models(cls: type, data: pd.DataFrame) -> tuple[object, object]:
    model = cls()
    rows = model._rows(data, fitting=True)
    model.priors_ = validate_priors(None, model._default_priors(rows))
    return model._build_model(rows), model._build_model(rows, fused=False)


def _data(seed: int, n: int = 400) -> pd.DataFrame:
    T = uniform_observation_lengths(n, 52.0, resolution=1 / 7, random_seed=seed)
    return simulate_bgnbd(n, r=0.24, alpha=4.4, a=0.79, b=2.43, T=T, resolution=1 / 7,
                          random_seed=seed + 100)


def _logp_dlogp(mode: str, *models: object) -> tuple[list, list[int]]:
    """Each model's compiled (logp, dlogp) function and its number of nodes."""
    import pytensor

    funcs = [pytensor.function(m.value_vars, [m.logp(), m.dlogp()], mode=mode,
                               on_unused_input="ignore") for m in models]
    return funcs, [len(f.maker.fgraph.apply_nodes) for f in funcs]


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
@pytest.mark.parametrize("name", ["BayesianBetaGeo", "BayesianModifiedBetaGeo"])
def test_fused_model_equals_factored_graph(name: str, mode: str) -> None:
    """The PyMC model's logp and gradient with the fused node (numpy ``perform`` under the C
    backend, the compiled kernel under numba) equal the factored graph's at random points,
    and the node leaves a fraction of the graph to compile."""

    from clvmodels.models import bayes_bgnbd

    fused, factored = _pymc_models(getattr(bayes_bgnbd, name), _data(5))
    assert "likelihood" in fused.named_vars and not fused.observed_RVs
    assert [v.name for v in factored.observed_RVs] == ["likelihood"]
    funcs, sizes = _logp_dlogp(mode, fused, factored)
    assert sizes[0] * 3 < sizes[1], sizes
    rng = np.random.default_rng(0)
    start = fused.initial_point()
    for _ in range(6):
        point = [start[v.name] + rng.normal(0, 0.7) for v in fused.value_vars]
        (lp_f, g_f), (lp_r, g_r) = (f(*point) for f in funcs)
        assert lp_f == pytest.approx(lp_r, rel=1e-12)
        np.testing.assert_allclose(g_f, g_r, rtol=1e-8, atol=1e-8 * np.abs(g_r).max())


def test_op_refuses_bad_inputs_and_second_derivatives() -> None:
    import pytensor.tensor as pt
    from pytensor.gradient import NullTypeGradError

    op = bg_family_loglik_op(False)
    r, alpha, a, b = pt.dvectors("r", "alpha", "a", "b")
    fx, ix = pt.dvector("ux"), pt.lvector("xi")
    data = [fx, ix, ix, fx, ix, ix, fx, ix, ix, fx]
    with pytest.raises(TypeError, match="vectors"):
        op(pt.dscalar("rs"), alpha, a, b, *data)
    with pytest.raises(TypeError, match="kind 'i'"):
        op(r, alpha, a, b, fx, fx, *data[2:])
    with pytest.raises(TypeError, match="14 inputs"):
        op(r, alpha, a, b)
    out = op(r, alpha, a, b, *data)
    g_r = pt.grad(out[0], r)
    with pytest.raises(NullTypeGradError):
        pt.grad(g_r.sum(), r)
    # the data are not differentiable inputs
    assert pt.grad(out[0], fx, disconnected_inputs="ignore") is not None


def _segment_rows(n: int, seed: int, segments: int) -> tuple[np.ndarray, ...]:
    x, tx, T, w = _rows(n, seed)
    seg = np.random.default_rng(seed + 50).integers(0, segments, n)
    return x, tx, T, w, seg


@pytest.mark.parametrize("modified", [False, True])
def test_segments_kernel_equals_each_segment_alone(modified: bool) -> None:
    """With one parameter set per segment, the total is the sum of each segment's rows
    evaluated alone (scalar kernel and numpy hot path), and the gradient for segment s is
    that segment's gradient; a segment without rows gets zeros."""
    x, tx, T, w, seg = _segment_rows(600, 11, 3)
    rng = np.random.default_rng(3)
    params = rng.uniform(0.3, 3.0, (4, 4))  # four segments, the last one empty
    c = factored_columns(x, tx, T, seg)
    total, grad = bg_segments_total_and_grad(*params, *(c[n] for n in DATA_ORDER), w,
                                             modified)
    ref = numpy_total_and_grad(*params, *(c[n] for n in DATA_ORDER), w, modified=modified)
    assert total == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(grad, np.array(ref[1:]), rtol=1e-10, atol=1e-9)
    expect_total = 0.0
    for q in range(3):
        keep = seg == q
        alone = _kernel(tuple(params[:, q]), x[keep], tx[keep], T[keep], w[keep], modified)
        expect_total += alone[0]
        np.testing.assert_allclose(grad[:, q], alone[1:], rtol=1e-11, atol=1e-9)
    assert total == pytest.approx(expect_total, rel=1e-12)
    assert np.all(grad[:, 3] == 0.0)


def test_fit_uses_fused_node_and_recovers_cdnow_like_posterior() -> None:
    """An end-to-end fit through nutpie with the fused node: close to the factored
    graph's posterior (same data, same seed; Monte Carlo noise only)."""
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    data = _data(6, n=600)
    fits = []
    for fused in (True, False):
        model = BayesianBetaGeo()
        if not fused:
            model._fused_total = lambda *args, **kwargs: None  # the factored graph
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(model.fit(data, draws=300, tune=300, chains=2, random_seed=3,
                                  log_likelihood=False))
    a, b = (f.params_ for f in fits)
    sd = fits[1].idata_.posterior[["r", "alpha", "a", "b"]].std()
    for k in ("r", "alpha", "a", "b"):
        assert abs(a[k] - b[k]) < 0.5 * float(sd[k]), (k, a[k], b[k])


# --------------------------------------------------------------------------------------
# the direct compile: the sampler's callbacks without a PyTensor graph
# --------------------------------------------------------------------------------------

PRIOR_SETS = {
    "default": None,
    "gamma_halfnormal_exponential": {
        "r": {"dist": "Gamma", "alpha": 2.0, "beta": 3.0},
        "alpha": {"dist": "HalfNormal", "sigma": 10.0},
        "a": {"dist": "Exponential", "lam": 0.7},
        "b": {"dist": "LogNormal", "mu": -0.5, "sigma": 1.3}},
}


def _direct(model: object) -> tuple[object, ...]:
    import nutpie.compile_pymc as nc
    from pymc.initial_point import make_initial_point_fn

    from clvmodels.models import compiled

    point_fn = nc._wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point",
        jitter_rvs=set(model.free_RVs), return_transformed=True))
    return compiled._direct_functions(model, point_fn)


def _scipy_log_prior(spec: dict, u: float) -> float:
    """ln p(e^u) + u from scipy's densities (float64 throughout)."""
    from scipy import stats

    t = float(np.exp(u))
    dist = {"LogNormal": lambda s: stats.lognorm(s=s["sigma"], scale=np.exp(s["mu"])),
            "Gamma": lambda s: stats.gamma(a=s["alpha"], scale=1.0 / s["beta"]),
            "HalfNormal": lambda s: stats.halfnorm(scale=s["sigma"]),
            "Exponential": lambda s: stats.expon(scale=1.0 / s["lam"])}[spec["dist"]](spec)
    return float(dist.logpdf(t)) + u


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("prior_set", list(PRIOR_SETS))
def test_direct_callbacks_equal_pymc_logp_gradient_and_trace(prior_set: str,
                                                             modified: bool) -> None:
    """The directly compiled logp-and-gradient: its priors (with their log-transform
    Jacobians) are scipy's densities, its likelihood part and gradient equal PyMC's logp /
    dlogp of the same model at random points, and the expansion gives PyMC's trace values
    (e^u, in the trace's order)."""
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo, BayesianModifiedBetaGeo

    cls = BayesianModifiedBetaGeo if modified else BayesianBetaGeo
    model = cls(priors=PRIOR_SETS[prior_set])
    rows = model._rows(_data(7), fitting=True)
    model.priors_ = validate_priors(model.priors, model._default_priors(rows))
    pm_model = model._build_model(rows)
    out = _direct(pm_model)
    assert out is not None
    n_dim, n_exp, logp_fn, expand_fn, _, (names, slices, _), data_names, _, shared = out
    assert n_dim == 4 and n_exp == 8
    data = [shared[n].get_value() for n in data_names]
    no_weights = [*data[:-1], np.zeros_like(data[-1])]  # the priors alone
    f_logp, f_dlogp = pm_model.compile_logp(), pm_model.compile_dlogp()
    f_prior = pm_model.compile_logp(vars=pm_model.free_RVs)
    import pytensor

    prior_logp = pm_model.logp(vars=pm_model.free_RVs)
    f_dprior = pm_model.compile_fn(
        pytensor.tensor.concatenate([pytensor.grad(prior_logp, v).ravel()
                                     for v in pm_model.value_vars]),
        point_fn=True)
    free = names[:n_dim]
    order = [v.name for v in pm_model.value_vars]
    rng = np.random.default_rng(1)
    start = pm_model.initial_point()
    for _ in range(8):
        x = np.array([start[n] for n in free]) + rng.normal(0, 1.0, n_dim)
        point = dict(zip(free, x, strict=True))
        lp, grad = logp_fn(x, *data)
        prior, prior_grad = logp_fn(x, *no_weights)
        expect = sum(_scipy_log_prior(model.priors_[n[:-len("_log__")]], point[n])
                     for n in free)
        assert prior == pytest.approx(expect, rel=1e-12, abs=1e-12)
        # PyTensor folds prior constants exactly representable in float32 (2.0, 3.0) in
        # float32 (a Gamma's 1/beta, ln sigma): PyMC's priors are off by ~1e-7 relative
        assert prior == pytest.approx(float(f_prior(point)), rel=1e-6)
        # the likelihood: PyMC's to the summation order (~1e-11)
        assert lp - prior == pytest.approx(float(f_logp(point) - f_prior(point)), rel=1e-10)
        ref = f_dlogp(point) - f_dprior(point)  # in the order of the value variables
        ref = np.array([ref[order.index(n)] for n in free])
        np.testing.assert_allclose(grad - prior_grad, ref, rtol=1e-9,
                                   atol=1e-9 * np.abs(ref).max())
        for j in range(n_dim):  # the priors' gradient: finite differences
            h = 1e-6
            up, down = x.copy(), x.copy()
            up[j] += h
            down[j] -= h
            fd = (logp_fn(up, *no_weights)[0] - logp_fn(down, *no_weights)[0]) / (2 * h)
            assert prior_grad[j] == pytest.approx(fd, rel=1e-6, abs=1e-7)
        (trace,) = expand_fn(x)
        for name, sl in zip(names, slices, strict=True):
            value = x[free.index(name)] if name in free else np.exp(point[f"{name}_log__"])
            assert trace[sl.start] == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("priors", [
    {"r": {"dist": "Normal", "mu": 1.0, "sigma": 1.0}},
    {"r": {"dist": "Gamma", "mu": 1.0, "sigma": 1.0}},
    {"a": {"dist": "LogNormal", "mu": 0.0, "tau": 1.0}},
    {"b": {"dist": "HalfCauchy", "beta": 1.0}},
])
def test_direct_compile_declines_other_priors(priors: dict) -> None:
    """Priors outside PRIOR_KINDS (or in another parametrisation) keep PyTensor's compile of
    the fused model: no direct recipe, and the fit still samples."""
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
    from clvmodels.models.bg_fused import direct_compile

    model = BayesianBetaGeo(priors=priors)
    rows = model._rows(_data(8, n=200), fitting=True)
    full = validate_priors(priors, model._default_priors(rows))
    assert direct_compile(full, ["d"] * 7, modified=False) is None
    if "Normal" in str(priors):  # one end-to-end fit through the fallback
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit(_data(8, n=200), draws=100, tune=100, chains=1, random_seed=1,
                            log_likelihood=False)
        assert np.isfinite(fit.params_["r"])


def test_direct_compile_refuses_invalid_prior_parameters() -> None:
    from clvmodels.models.bg_fused import direct_compile

    base = {n: {"dist": "LogNormal", "mu": 0.0, "sigma": 1.0} for n in ("r", "alpha", "a", "b")}
    assert direct_compile(base, ["d"] * 7, modified=False) is not None
    for bad in ({"dist": "LogNormal", "mu": 0.0, "sigma": 0.0},
                {"dist": "Gamma", "alpha": -1.0, "beta": 1.0},
                {"dist": "Exponential", "lam": float("nan")}):
        assert direct_compile({**base, "a": bad}, ["d"] * 7, modified=False) is None


def test_cache_off_compiles_the_fused_node_with_pytensor(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """CLVMODELS_COMPILE_CACHE=0: nutpie's own compile of the model (PyTensor's numba
    backend, the fused node through its numba registration) samples the same posterior
    as the direct compile, to Monte Carlo error."""
    from clvmodels.models import compiled
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    data = _data(9, n=500)
    compiled.clear_session_cache()
    kw = dict(draws=300, tune=300, chains=2, random_seed=4, log_likelihood=False)
    fits = []
    for setting in ("1", "0"):
        monkeypatch.setenv("CLVMODELS_COMPILE_CACHE", setting)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(BayesianBetaGeo().fit(data, **kw))
    info = compiled.cache_info()
    # only the first fit went through the cache (a miss, or a disk hit of an earlier test)
    assert info["size"] == 1 and info["misses"] + info["disk_hits"] == 1
    sd = fits[0].idata_.posterior[["r", "alpha", "a", "b"]].std()
    for k in ("r", "alpha", "a", "b"):
        assert abs(fits[0].params_[k] - fits[1].params_[k]) < 0.5 * float(sd[k])
    compiled.clear_session_cache()


@pytest.mark.parametrize("priors", [None, {"r": {"dist": "Normal", "mu": 1.0, "sigma": 1.0}}])
def test_structure_key_follows_the_compiled_code(priors: dict | None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Any change of this module's code (its digest, taken at import) changes the structure
    key — with the direct compile and with PyTensor's compile of the fused node alike — so
    an on-disk sampler of older code is never loaded."""
    from clvmodels.models import bg_fused, compiled
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    def key() -> str:
        model = BayesianBetaGeo(priors=priors)
        rows = model._rows(_data(10, n=100), fitting=True)
        model.priors_ = validate_priors(model.priors, model._default_priors(rows))
        pm_model = model._build_model(rows)
        assert (pm_model in compiled._DIRECT) == (priors is None)
        return compiled.structure_key(pm_model, compiled._INPUTS[pm_model])

    before = key()
    assert key() == before
    monkeypatch.setattr(bg_fused, "_DIGEST", "0" * 64)
    assert key() != before


def test_digest_covers_the_module_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest is of the loaded code: stable across processes (hash seeds) and changed by
    a change in any function or method of the module."""
    import subprocess
    import sys

    from clvmodels.models import bg_fused

    code = "import clvmodels.models.bg_fused as b; print(b._DIGEST)"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed},
                           check=True).stdout.strip() for seed in ("1", "2")}
    assert seen == {bg_fused._DIGEST}
    assert bg_fused._module_digest() == bg_fused._DIGEST

    def factored_columns(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> dict:
        return {"changed": x}

    factored_columns.__module__ = bg_fused.__name__
    with monkeypatch.context() as m:
        m.setattr(bg_fused, "factored_columns", factored_columns)
        assert bg_fused._module_digest() != bg_fused._DIGEST

    def expand_inner(self: object, *args: object) -> None:
        return None

    with monkeypatch.context() as m:
        m.setattr(bg_fused.DirectCompile, "expand_inner", expand_inner)
        assert bg_fused._module_digest() != bg_fused._DIGEST


@pytest.mark.parametrize("parametrization", ["non_centered", "auto"])
def test_hierarchical_fused_model_equals_factored_graph(parametrization: str) -> None:
    """Hierarchical BG/NBD (one parameter set per segment): the model with the fused node
    has the factored graph's logp and gradient at random points (C backend and numba), with
    a fraction of its nodes; no direct compile (its priors are the hierarchy's)."""

    from clvmodels.models import compiled
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    data = _data(12, n=600)
    data = data.assign(segment=np.array(["s1", "s2", "s3"])[np.arange(len(data)) % 3])
    model = BayesianBetaGeo(segment_col="segment", parametrization=parametrization)
    rows = model._rows(data, fitting=True)
    model.priors_ = validate_priors(None, model._default_hyperpriors(rows))
    model.centering_ = model._choose_centering(data)
    fused, factored = model._build_model(rows), model._build_model(rows, fused=False)
    assert fused not in compiled._DIRECT and not fused.observed_RVs
    start = fused.initial_point()
    names = [v.name for v in fused.value_vars]
    assert names == [v.name for v in factored.value_vars]
    rng = np.random.default_rng(2)
    points = [[start[n] + rng.normal(0, 0.5, np.shape(start[n])) for n in names]
              for _ in range(5)]
    for mode in ("FAST_RUN", "NUMBA"):
        funcs, sizes = _logp_dlogp(mode, fused, factored)
        assert sizes[0] * 2 < sizes[1], sizes
        for point in points:
            (lp_f, g_f), (lp_r, g_r) = (f(*point) for f in funcs)
            assert lp_f == pytest.approx(lp_r, rel=1e-12)
            np.testing.assert_allclose(g_f, g_r, rtol=1e-8, atol=1e-8 * np.abs(g_r).max())
