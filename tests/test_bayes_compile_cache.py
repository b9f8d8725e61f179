"""Compile once (clvmodels.models.compiled): a refit on new data of the same structure reuses
the compiled sampler (data are graph inputs), gives exactly the draws a fresh compile gives
with the same seed, and the cache key changes with the priors and the structure; the
on-disk cache goes where CLVMODELS_CACHE_DIR says and holds compiled code only."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("nutpie")
pytest.importorskip("pymc")

from clvmodels.models import compiled
from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
from clvmodels.models.priors import validate_priors
from clvmodels.simulate import simulate_bgnbd, uniform_observation_lengths

FIT = {"draws": 100, "tune": 100, "chains": 2, "random_seed": 7, "log_likelihood": False}


def _data(seed: int, n: int = 300) -> pd.DataFrame:
    T = uniform_observation_lengths(n, 52.0, resolution=1 / 7, random_seed=seed)
    return simulate_bgnbd(n, r=0.24, alpha=4.4, a=0.79, b=2.43, T=T, resolution=1 / 7,
                          random_seed=seed + 100)


def _key(model: BayesianBetaGeo, data: pd.DataFrame) -> str:
    rows = model._rows(data, fitting=True)
    defaults = (model._default_hyperpriors(rows) if model.hierarchical
                else model._default_priors(rows))
    model.priors_ = validate_priors(model.priors, defaults)
    if model.hierarchical:
        model.centering_ = model._choose_centering(data)
    pm_model = model._build_model(rows)
    return compiled.structure_key(pm_model, compiled._INPUTS[pm_model])


def _fit(data: pd.DataFrame) -> BayesianBetaGeo:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: convergence warnings are expected
        return BayesianBetaGeo().fit(data, **FIT)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "clv-cache"
    monkeypatch.setenv("CLVMODELS_CACHE_DIR", str(path))
    monkeypatch.delenv("CLVMODELS_COMPILE_CACHE", raising=False)
    compiled.clear_session_cache()
    yield path
    compiled.clear_session_cache()


def test_data_are_inputs_not_constants() -> None:
    """No data array of the model is a constant of its logp graph."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    data = _data(1)
    model = BayesianBetaGeo()
    rows = model._rows(data, fitting=True)
    model.priors_ = validate_priors(None, model._default_priors(rows))
    pm_model = model._build_model(rows)
    big = [v for v in ancestors([pm_model.logp()])
           if isinstance(v, Constant) and np.asarray(v.data).size > 8]
    assert big == []
    names = set(compiled._INPUTS[pm_model].variables)
    assert any(n.endswith("_weights") for n in names)
    assert any(n.endswith("_T") for n in names)


def test_key_same_structure_and_invalidation() -> None:
    a, b = _data(1), _data(2)
    assert not a[["frequency", "recency", "T"]].equals(b[["frequency", "recency", "T"]])
    key_a = _key(BayesianBetaGeo(), a)
    assert _key(BayesianBetaGeo(), b) == key_a  # new data, same structure
    # a bootstrap resample (ties everywhere) and a small subset: still the same structure,
    # though the share of distinct (x, T) and (x, t_x) among the rows differs a lot
    boot = a.sample(frac=1.0, replace=True, random_state=5).reset_index(drop=True)
    assert _key(BayesianBetaGeo(), boot) == key_a
    assert _key(BayesianBetaGeo(), a.iloc[:25]) == key_a
    other_prior = {"r": {"dist": "Gamma", "alpha": 2.0, "beta": 4.0}}
    assert _key(BayesianBetaGeo(priors=other_prior), a) != key_a  # priors
    seg = a.assign(segment=np.where(np.arange(len(a)) % 2, "s1", "s2"))
    hier = _key(BayesianBetaGeo(segment_col="segment", parametrization="non_centered"), seg)
    assert hier != key_a  # hierarchical layout
    # built again (its graph holds random generators, printed with their addresses): same key
    assert _key(BayesianBetaGeo(segment_col="segment", parametrization="non_centered"),
                seg) == hier
    seg3 = a.assign(segment=np.array(["s1", "s2", "s3"])[np.arange(len(a)) % 3])
    hier3 = _key(BayesianBetaGeo(segment_col="segment", parametrization="non_centered"), seg3)
    assert hier3 != hier  # number of segments


def test_refit_reuses_compiled_sampler_and_matches_fresh_compile(
        cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _fit(_data(1))
    assert first.fit_timings_["compile_cache_hit"] == 0.0
    assert compiled.cache_info()["misses"] == 1
    b = _data(2)
    hit = _fit(b)
    assert compiled.cache_info() == {"hits": 1, "disk_hits": 0, "misses": 1, "size": 1}
    assert hit.fit_timings_["compile_cache_hit"] == 1.0
    # the refit saw its own data, not the first fit's
    assert hit.n_unique_rows_ == hit._fit_rows.n_rows != first.n_unique_rows_
    # as a new process would: loaded from the disk cache by the structure key
    compiled.clear_session_cache()
    loaded = _fit(b)
    assert compiled.cache_info() == {"hits": 0, "disk_hits": 1, "misses": 0, "size": 1}
    assert loaded.fit_timings_["compile_disk_hit"] == 1.0
    # a fresh compile (another cache directory) of the same model with the same seed: the
    # same draws, bit for bit, as the session hit and the disk load
    monkeypatch.setenv("CLVMODELS_CACHE_DIR", str(tmp_path / "other-cache"))
    compiled.clear_session_cache()
    fresh = _fit(b)
    assert compiled.cache_info() == {"hits": 0, "disk_hits": 0, "misses": 1, "size": 1}
    for name in ("r", "alpha", "a", "b"):
        expect = fresh.idata_.posterior[name].to_numpy()
        np.testing.assert_array_equal(hit.idata_.posterior[name].to_numpy(), expect)
        np.testing.assert_array_equal(loaded.idata_.posterior[name].to_numpy(), expect)
    assert not np.array_equal(first.idata_.posterior["r"].to_numpy(),
                              fresh.idata_.posterior["r"].to_numpy())

    # the on-disk cache: where CLVMODELS_CACHE_DIR says; numba's index and object code, and
    # one manifest per structure holding its layout only; the data are nowhere in it
    monkeypatch.setenv("CLVMODELS_CACHE_DIR", str(cache_dir))
    assert compiled.cache_dir() == cache_dir
    files = [p for p in cache_dir.rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} <= {".nbi", ".nbc", ".json"}
    (manifest,) = [p for p in files if p.suffix == ".json"]
    layout = json.loads(manifest.read_text())
    assert set(layout) == {"version", "key", "n_dim", "n_expanded", "names", "slices",
                           "shapes", "n_free", "shared", "shared_dtypes", "shared_ndims",
                           "logp_names", "expand_names"}
    assert layout["names"][:4] == ["r_log__", "alpha_log__", "a_log__", "b_log__"]
    t_values = np.unique(b["T"].to_numpy(float))
    needle = np.ascontiguousarray(t_values[:6]).tobytes()
    assert not any(needle in p.read_bytes() for p in files)

    # a real new process finds the structure on disk by the key alone: nothing compiled,
    # the same draws
    data_file = tmp_path / "b.npz"
    np.savez(data_file, **{c: b[c].to_numpy() for c in ("frequency", "recency", "T")})
    script = (
        "import json, sys, warnings\n"
        "import numpy as np, pandas as pd\n"
        "from clvmodels.models.bayes_bgnbd import BayesianBetaGeo\n"
        "warnings.simplefilter('ignore')\n"
        "d = pd.DataFrame(dict(np.load(sys.argv[1])))\n"
        "d.attrs['time_unit'] = 'W'\n"
        f"m = BayesianBetaGeo().fit(d, **{FIT!r})\n"
        "r = m.idata_.posterior['r'].to_numpy()\n"
        "hit = m.fit_timings_['compile_disk_hit']\n"
        "print(json.dumps({'disk': hit, 'r': r.ravel().tolist()}))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(data_file)], capture_output=True,
                          text=True, check=True, timeout=600)
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert other["disk"] == 1.0
    np.testing.assert_array_equal(np.asarray(other["r"]),
                                  fresh.idata_.posterior["r"].to_numpy().ravel())

    # a manifest whose compiled callbacks went missing: compiled again, same draws
    for p in cache_dir.glob("*clv_logp_*"):
        p.unlink()
    compiled.clear_session_cache()
    again = _fit(b)
    assert compiled.cache_info() == {"hits": 0, "disk_hits": 0, "misses": 1, "size": 1}
    np.testing.assert_array_equal(again.idata_.posterior["r"].to_numpy(),
                                  fresh.idata_.posterior["r"].to_numpy())


def test_cache_can_be_turned_off(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLVMODELS_COMPILE_CACHE=0: every fit compiles (nutpie's compile is stubbed here)."""
    import nutpie

    calls: list[object] = []
    monkeypatch.setattr(nutpie, "compile_pymc_model",
                        lambda model, **kw: calls.append(model) or "compiled")
    monkeypatch.setenv("CLVMODELS_COMPILE_CACHE", "0")
    assert not compiled.cache_enabled()
    model = BayesianBetaGeo()
    data = _data(3, n=150)
    rows = model._rows(data, fitting=True)
    model.priors_ = validate_priors(None, model._default_priors(rows))
    pm_model = model._build_model(rows)
    assert compiled.compile_nutpie(pm_model) == ("compiled", "off")
    assert compiled.compile_nutpie(pm_model) == ("compiled", "off")
    assert len(calls) == 2 and compiled.cache_info()["size"] == 0


def _pymc_log_likelihood(model: object) -> np.ndarray:
    """PyMC's pointwise log-likelihood of the fitted model's PyMC graph (chain, draw, row)."""
    import pymc as pm

    pm_model = model._pymc_model()  # the factored graph where sampling used the fused node
    assert [v.name for v in pm_model.observed_RVs] == ["likelihood"]
    ll = pm.compute_log_likelihood(model.idata_, model=pm_model,
                                   var_names=["likelihood"], extend_inferencedata=False,
                                   progressbar=False)
    if hasattr(ll, "groups"):
        ll = ll.log_likelihood
    return ll["likelihood"].to_numpy()


def _loo_equal(a: object, b: object) -> None:
    for key in ("elpd_loo", "se", "p_loo"):
        assert a[key] == pytest.approx(b[key], rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(a["loo_i"].to_numpy(), b["loo_i"].to_numpy(), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(a["pareto_k"].to_numpy(), b["pareto_k"].to_numpy(),
                               rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kind", ["plain", "hierarchical_covariates", "bgbb"])
def test_numpy_log_likelihood_equals_pymc(kind: str) -> None:
    """The pointwise log-likelihood is computed with numpy from the draws (no PyMC compile):
    equal to PyMC's compute_log_likelihood of the same model to 1e-10, and so is LOO."""
    data = _data(4, n=240)
    if kind == "plain":
        model = BayesianBetaGeo()
    elif kind == "hierarchical_covariates":
        rng = np.random.default_rng(0)
        data = data.assign(segment=np.array(["s1", "s2", "s3"])[np.arange(len(data)) % 3],
                           channel=rng.choice(["web", "shop"], len(data)))
        model = BayesianBetaGeo(segment_col="segment", parametrization="non_centered",
                                purchase_covariates=["channel"],
                                dropout_covariates=["channel"])
    else:
        from clvmodels.models.bgbb import BayesianBetaGeoBetaBinom, simulate_bgbb

        data = simulate_bgbb(200, 6, alpha=1.2, beta=0.8, gamma=0.6, delta=2.5, random_seed=3)
        model = BayesianBetaGeoBetaBinom()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data, draws=60, tune=60, chains=2, random_seed=2)
    ours = model.idata_.log_likelihood["likelihood"].to_numpy()
    assert np.all(np.isfinite(ours)) and ours.shape[-1] == model.n_unique_rows_
    reference = _pymc_log_likelihood(model)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = model.loo(pointwise=True)
        model.idata_.log_likelihood["likelihood"].values[...] = reference
        _loo_equal(loo, model.loo(pointwise=True))
