"""Every public prediction, diagnostic and valuation entry point, called with a model that has
covariates, in the six covariate families (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma, BG/BB,
sBG; maximum likelihood and Bayesian): it either predicts each customer with their own
attributes — equal, for a customer of the reference level, to the plain model at the base
parameters (``from_params``), and for another level to the plain model at that level's linked
parameters (links equation (1)), so customers of different levels differ — or refuses
clearly, naming the covariate column. Never the population parameters in silence (issue 11).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvmodels import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from clvmodels import diagnostics as dg
from clvmodels import diagnostics_discrete as dd
from clvmodels.models.bgbb import BetaGeoBetaBinom
from clvmodels.models.links import row_params
from clvmodels.models.sbg import ShiftedBetaGeo
from clvmodels.valuation import customer_lifetime_value

LEVELS = ("store", "web")  # "store": the reference level (first in order)
PROFILES = pd.DataFrame({"channel": list(LEVELS)})

FAMILIES: dict[str, tuple[type, dict[str, float], dict[str, float], str]] = {
    # class, base parameters, coefficients, time unit
    "bgnbd": (BetaGeo, dict(r=0.8, alpha=4.0, a=0.8, b=2.5),
              {"purchase:channel[web]": 0.5, "dropout:channel[web]": -0.4}, "W"),
    "mbgnbd": (ModifiedBetaGeo, dict(r=0.8, alpha=4.0, a=0.8, b=2.5),
               {"purchase:channel[web]": 0.5, "dropout:channel[web]": -0.4}, "W"),
    "pnbd": (ParetoNBD, dict(r=0.8, alpha=4.0, s=0.8, beta=10.0),
             {"purchase:channel[web]": 0.5, "dropout:channel[web]": -0.4}, "W"),
    "bgbb": (BetaGeoBetaBinom, dict(alpha=1.2, beta=0.8, gamma=0.6, delta=2.0),
             {"purchase:channel[web]": 0.5, "dropout:channel[web]": -0.4}, "Y"),
    "gammagamma": (GammaGamma, dict(p=4.0, q=3.0, v=15.0), {"spend:channel[web]": 0.5}, "W"),
    "sbg": (ShiftedBetaGeo, dict(alpha=1.0, beta=3.0), {"dropout:channel[web]": 0.7}, "M"),
}
TRANSACTION = ("bgnbd", "mbgnbd", "pnbd", "bgbb")
CONTINUOUS = ("bgnbd", "mbgnbd", "pnbd")


def _frame(rows: dict[str, list[Any]], unit: str) -> pd.DataFrame:
    """Each history twice, once per level (rows 0, 2, 4 … store; 1, 3, 5 … web)."""
    out = pd.DataFrame({k: np.repeat(v, 2) for k, v in rows.items()})
    out["channel"] = list(LEVELS) * (len(out) // 2)
    out.index = pd.Index([f"c{i}" for i in range(len(out))], name="customer_id")
    out.attrs["time_unit"] = unit
    return out


DATA = {
    "continuous": _frame({"frequency": [2.0, 0.0, 5.0, 1.0], "recency": [10.0, 0.0, 30.0, 3.0],
                          "T": [40.0, 40.0, 40.0, 20.0],
                          "monetary_value": [20.0, 0.0, 30.0, 12.0]}, "W"),
    "discrete": _frame({"frequency": [2, 0, 4, 1], "recency": [3, 0, 5, 1], "T": [6, 6, 6, 4]},
                       "Y"),
    "contractual": _frame({"periods": [3, 1, 8, 2], "churned": [False, True, False, False]},
                          "M"),
}
STORE = np.arange(len(DATA["continuous"])) % 2 == 0


def data_of(family: str) -> pd.DataFrame:
    return DATA["discrete" if family == "bgbb" else
                "contractual" if family == "sbg" else "continuous"]


def models(family: str) -> tuple[Any, Any, Any]:
    """(covariate model, plain model at the base parameters, plain model at web's linked
    parameters)."""
    cls, base, coefs, unit = FAMILIES[family]
    cov = cls.from_params(time_unit=unit, covariates=PROFILES, **base, **coefs)
    groups: dict[str, float] = {}
    for name, value in coefs.items():
        groups[name.split(":")[0]] = value
    web = row_params(base, cls.covariate_links, groups)
    return (cov, cls.from_params(time_unit=unit, **base),
            cls.from_params(time_unit=unit, **{k: float(v) for k, v in web.items()}))


def _values(out: Any) -> np.ndarray:
    if isinstance(out, pd.DataFrame) and "clv" in out:
        out = out["clv"]
    return np.asarray(out, dtype=float)


# --------------------------------------------------------------------------------------
# per-customer entry points: (name, families, call(model, data) -> one value (row) each)
# --------------------------------------------------------------------------------------

PER_CUSTOMER: list[tuple[str, tuple[str, ...], Callable[[Any, pd.DataFrame], Any]]] = [
    ("probability_alive", TRANSACTION, lambda m, d: m.probability_alive(d)),
    ("expected_purchases", TRANSACTION, lambda m, d: m.expected_purchases(d, 3)),
    ("cumulative_expected_purchases", TRANSACTION,
     lambda m, d: m.cumulative_expected_purchases(d, np.array([1.0, 4.0]))),
    ("conditional_purchase_count_probability", TRANSACTION,
     lambda m, d: m.conditional_purchase_count_probability(d, [0, 1, 2], 3)),
    ("expected_discounted_transactions", ("pnbd", "bgbb"),
     lambda m, d: m.expected_discounted_transactions(d, 0.1)),
    ("customer_lifetime_value", TRANSACTION,
     lambda m, d: customer_lifetime_value(m, 10.0, d, horizon=6, discount_rate=0.1)),
    ("customer_lifetime_value dert", ("bgbb",),
     lambda m, d: customer_lifetime_value(m, 10.0, d, horizon=np.inf, discount_rate=0.1)),
    ("expected_spend", ("gammagamma",), lambda m, d: m.expected_spend(d)),
    ("customer_lifetime_value spend", ("gammagamma",),
     lambda m, d: customer_lifetime_value(BetaGeo.from_params(r=0.8, alpha=4.0, a=0.8,
                                                              b=2.5, time_unit="W"),
                                          m, d, horizon=6, discount_rate=0.1)),
    ("conditional_survival", ("sbg",), lambda m, d: m.conditional_survival(d, 3)),
    ("expected_renewals", ("sbg",), lambda m, d: m.expected_renewals(d, 4)),
    ("discounted_expected_residual_lifetime", ("sbg",),
     lambda m, d: m.discounted_expected_residual_lifetime(d, 0.1)),
    ("discounted_expected_residual_lifetime horizon", ("sbg",),
     lambda m, d: m.discounted_expected_residual_lifetime(d, 0.1, horizon=5)),
    ("customer_lifetime_value contract", ("sbg",),
     lambda m, d: customer_lifetime_value(m, 10.0, d, horizon=6, discount_rate=0.1)),
    ("customer_lifetime_value contract inf", ("sbg",),
     lambda m, d: customer_lifetime_value(m, 10.0, d, horizon=np.inf, discount_rate=0.1)),
]


@pytest.mark.parametrize("family, name, call", [
    pytest.param(f, n, c, id=f"{f}-{n}") for n, fams, c in PER_CUSTOMER for f in fams])
def test_each_customer_with_their_own_attributes(family: str, name: str, call: Callable
                                                 ) -> None:
    cov, base, web = models(family)
    data = data_of(family)
    got = _values(call(cov, data))
    want = np.where(STORE.reshape(-1, *(1,) * (got.ndim - 1)), _values(call(base, data)),
                    _values(call(web, data)))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)
    # a customer's attributes change their prediction (the store row against its web twin)
    assert not np.allclose(got[STORE], got[~STORE], rtol=1e-6)
    # without the covariate column: refused, naming it
    with pytest.raises(ValueError, match="channel"):
        call(cov, data.drop(columns="channel"))


# --------------------------------------------------------------------------------------
# new-customer entry points: one row per profile with covariates=, refused without
# --------------------------------------------------------------------------------------

PER_PROFILE: list[tuple[str, tuple[str, ...], Callable[..., Any]]] = [
    ("expected_purchases_new_customer", TRANSACTION,
     lambda m, **kw: m.expected_purchases_new_customer(np.array([1.0, 5.0]), **kw)),
    ("purchase_count_probability", TRANSACTION,
     lambda m, **kw: m.purchase_count_probability(np.array([0, 1, 3]), 4.0, **kw)),
    ("population_mean_spend", ("gammagamma",), lambda m, **kw: m.population_mean_spend(**kw)),
    ("survival", ("sbg",), lambda m, **kw: m.survival(np.array([0, 1, 4]), **kw)),
    ("retention_rate", ("sbg",), lambda m, **kw: m.retention_rate(np.array([1, 4]), **kw)),
    ("churn_probability", ("sbg",),
     lambda m, **kw: m.churn_probability(np.array([1, 4]), **kw)),
    ("expected_lifetime", ("sbg",), lambda m, **kw: m.expected_lifetime(**kw)),
    ("discounted_expected_lifetime", ("sbg",),
     lambda m, **kw: m.discounted_expected_lifetime(0.1, **kw)),
]


@pytest.mark.parametrize("family, name, call", [
    pytest.param(f, n, c, id=f"{f}-{n}") for n, fams, c in PER_PROFILE for f in fams])
def test_new_customer_per_profile(family: str, name: str, call: Callable) -> None:
    cov, base, web = models(family)
    got = np.asarray(call(cov, covariates=PROFILES), dtype=float)
    assert got.shape[0] == 2
    np.testing.assert_allclose(got[0], np.asarray(call(base), dtype=float), rtol=1e-10)
    np.testing.assert_allclose(got[1], np.asarray(call(web), dtype=float), rtol=1e-10)
    assert not np.allclose(got[0], got[1], rtol=1e-6)
    with pytest.raises(ValueError, match="channel"):
        call(cov)
    with pytest.raises(ValueError, match="channel"):
        call(cov, covariates=pd.DataFrame({"region": ["x"]}))


# --------------------------------------------------------------------------------------
# tables of a constructed grid of histories: one profile, refused without
# --------------------------------------------------------------------------------------

PROFILE_TABLES: list[tuple[str, tuple[str, ...], Callable[..., Any]]] = [
    ("frequency_recency_table", (*CONTINUOUS, "bgbb"),
     lambda m, d, **kw: dg.frequency_recency_table(m, d, n_recency=5, max_frequency=3, **kw)),
    ("frequency_recency_table P(alive)", (*CONTINUOUS, "bgbb"),
     lambda m, d, **kw: dg.frequency_recency_table(m, d, kind="probability_alive",
                                                   n_recency=5, max_frequency=3, **kw)),
    ("probability_alive_history", CONTINUOUS,
     lambda m, d, **kw: dg.probability_alive_history(
         m, ["2024-01-01", "2024-02-10", "2024-03-01"], "2024-06-30", freq="W", **kw)
     [["probability_alive"]]),
    ("probability_alive_table", ("bgbb",),
     lambda m, d, **kw: dd.probability_alive_table(m, 5, **kw)),
    ("survival_projection_table", ("sbg",),
     lambda m, d, **kw: dd.survival_projection_table(m, 6, **kw)),
    ("retention_curve_table", ("sbg",),
     lambda m, d, **kw: dd.retention_curve_table(m, [100.0, 70.0, 55.0, 47.0], **kw)
     [["model"]]),
]


@pytest.mark.parametrize("family, name, call", [
    pytest.param(f, n, c, id=f"{f}-{n}") for n, fams, c in PROFILE_TABLES for f in fams])
def test_tables_of_one_profile(family: str, name: str, call: Callable) -> None:
    cov, base, web = models(family)
    data = data_of(family)
    for level, plain in zip(LEVELS, (base, web), strict=True):
        got = call(cov, data, covariates={"channel": level})
        want = call(plain, data)
        np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-9,
                                   equal_nan=True)
    with pytest.raises(ValueError, match="channel"):
        call(cov, data)
    with pytest.raises(ValueError, match="no covariates"):
        call(base, data, covariates={"channel": "web"})


# --------------------------------------------------------------------------------------
# tables summed over customers: each customer's share with their own parameters
# --------------------------------------------------------------------------------------


def _split(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return data.loc[STORE], data.loc[~STORE]


@pytest.mark.parametrize("family", TRANSACTION)
def test_calibration_histogram_sums_each_customer(family: str) -> None:
    cov, base, web = models(family)
    data = data_of(family)
    store, webs = _split(data)
    got = dg.calibration_histogram_table(cov, data, max_frequency=3)["expected"]
    want = (dg.calibration_histogram_table(base, store, max_frequency=3)["expected"]
            + dg.calibration_histogram_table(web, webs, max_frequency=3)["expected"])
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-10)
    hist = cov.expected_frequency_histogram(data, max_frequency=3)
    np.testing.assert_allclose(hist.to_numpy(), (base.expected_frequency_histogram(store, 3)
                                                 + web.expected_frequency_histogram(webs, 3)
                                                 ).to_numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="channel"):
        dg.calibration_histogram_table(cov, data.drop(columns="channel"))


@pytest.mark.parametrize("family", CONTINUOUS)
def test_conditional_expectation_table_each_customer(family: str) -> None:
    cov, base, web = models(family)
    split = DATA["continuous"].assign(frequency_holdout=[1, 0, 0, 0, 3, 1, 0, 2],
                                      duration_holdout=10.0)
    split.attrs["time_unit"] = "W"
    got = dg.conditional_expectation_table(cov, split, max_frequency=3)
    store, webs = _split(split)
    parts = [dg.conditional_expectation_table(m, d, max_frequency=3)
             for m, d in ((base, store), (web, webs))]
    total = sum(np.nan_to_num(p["expected"] * p["n_customers"]) for p in parts)
    np.testing.assert_allclose(got["expected"].fillna(0) * got["n_customers"], total,
                               rtol=1e-10)


@pytest.mark.parametrize("family", CONTINUOUS)
def test_tracking_table_each_customer(family: str) -> None:
    cov, base, web = models(family)
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(40), 3)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, len(ids)),
                                                        unit="D")
    tx = pd.DataFrame({"customer_id": ids, "date": days})
    attrs = pd.DataFrame({"channel": np.where(np.arange(40) % 2, "web", "store")},
                         index=pd.Index(np.arange(40), name="customer_id"))
    kw = dict(period="W", interval=None)
    got = dg.tracking_table(cov, tx, "2024-05-01", "2024-07-31", covariates=attrs, **kw)
    web_ids = attrs.index[attrs["channel"] == "web"]
    parts = [dg.tracking_table(m, tx.loc[sel], "2024-05-01", "2024-07-31", **kw)
             for m, sel in ((base, ~tx["customer_id"].isin(web_ids)),
                            (web, tx["customer_id"].isin(web_ids)))]
    col = next(c for c in got.columns if c.startswith("expected") or c == "model")
    np.testing.assert_allclose(got[col].to_numpy(), (parts[0][col] + parts[1][col]).to_numpy(),
                               rtol=1e-9)
    with pytest.raises(ValueError, match="channel"):
        dg.tracking_table(cov, tx, "2024-05-01", "2024-07-31", **kw)


def test_spend_density_mixes_each_customers_own_spend_distribution() -> None:
    cov, base, web = models("gammagamma")
    data = DATA["continuous"]
    store, webs = _split(data)
    rep = data["frequency"] > 0
    n_store, n_web = int((rep & STORE).sum()), int((rep & ~STORE).sum())
    got = dg.spend_density_table(cov, data, max_spend=80.0, n_points=50)
    parts = [dg.spend_density_table(m, d, max_spend=80.0, n_points=50)
             for m, d in ((base, store), (web, webs))]
    want = (n_store * parts[0]["density"] + n_web * parts[1]["density"]) / (n_store + n_web)
    np.testing.assert_allclose(got["density"].to_numpy(), want.to_numpy(), rtol=1e-10)
    assert got.attrs["model_mean"] == pytest.approx(
        (n_store * base.population_mean_spend() + n_web * web.population_mean_spend())
        / (n_store + n_web), rel=1e-12)
    with pytest.raises(ValueError, match="channel"):
        dg.spend_density_table(cov, data.drop(columns="channel"))


def test_retention_curve_of_a_cohort_is_the_mean_of_its_customers() -> None:
    cov, base, web = models("sbg")
    data = DATA["contractual"]
    got = dd.retention_curve_table(cov, data, covariates=data)
    t = got.index.to_numpy()
    np.testing.assert_allclose(got["model"].to_numpy(),
                               (base.survival(t) + web.survival(t)) / 2, rtol=1e-12)
    assert dd.cohort_expected_lifetime(cov, covariates=data) == pytest.approx(
        (base.expected_lifetime() + web.expected_lifetime()) / 2, rel=1e-12)


# --------------------------------------------------------------------------------------
# Bayesian twins (tiny fits): the same entry points over posterior draws
# --------------------------------------------------------------------------------------

BAYES_KW = dict(draws=100, tune=100, chains=2, random_seed=2)


@pytest.fixture(scope="module")
def bayes_bgnbd() -> tuple[Any, pd.DataFrame]:
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
    from clvmodels.models.registry import simulate

    n = 240
    attrs = pd.DataFrame({"channel": np.where(np.arange(n) % 2, "web", "store")})
    rfm = simulate("bgnbd", n, params=dict(r=0.8, alpha=4.0, a=0.8, b=2.5,
                                           **{"purchase:channel[web]": 0.7}),
                   covariates=attrs, T=40.0, random_seed=4)
    rng = np.random.default_rng(5)
    rfm["monetary_value"] = np.where(rfm["frequency"] > 0, rng.gamma(4.0, 10.0, n), 0.0)
    return BayesianBetaGeo(purchase_covariates=["channel"]).fit(rfm, **BAYES_KW), rfm


def _draws(model: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    post = model.idata_.posterior
    return {n: post[n].to_numpy().reshape(-1) for n in names}


def test_bayesian_transaction_entry_points(bayes_bgnbd) -> None:
    model, rfm = bayes_bgnbd
    base = _draws(model, ("r", "alpha", "a", "b"))
    g = model.coefficient_draws()["purchase:channel[web]"].to_numpy()
    rows = DATA["continuous"]
    plain = BetaGeo.from_params(r=1.0, alpha=1.0, a=1.0, b=1.0, time_unit="W")
    x, tx, T = (rows[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for level, factor in (("store", np.ones_like(g)), ("web", np.exp(-g))):
        p = {**{k: v[:, None] for k, v in base.items()}, "alpha": (base["alpha"] * factor)[:, None]}
        sel = (rows["channel"] == level).to_numpy()
        want_pa = plain._probability_alive(p, x[sel], tx[sel], T[sel]).mean(axis=0)
        np.testing.assert_allclose(model.probability_alive(rows).to_numpy()[sel], want_pa,
                                   rtol=1e-10)
        want_ep = plain._expected_purchases(p, x[sel], tx[sel], T[sel], 3.0).mean(axis=0)
        np.testing.assert_allclose(model.expected_purchases(rows, 3.0).to_numpy()[sel], want_ep,
                                   rtol=1e-10)
        new = model.expected_purchases_new_customer(5.0, covariates=pd.DataFrame(
            {"channel": [level]}))
        np.testing.assert_allclose(new, [plain._expected_new(p, 5.0).mean()], rtol=1e-10)
    values = customer_lifetime_value(model, 10.0, rows, horizon=6, discount_rate=0.1)
    assert not np.allclose(values["clv"].to_numpy()[STORE], values["clv"].to_numpy()[~STORE])
    table = dg.frequency_recency_table(model, rfm, n_recency=4, max_frequency=2,
                                       covariates={"channel": "web"})
    assert np.isfinite(table.to_numpy()[~np.isnan(table.to_numpy())]).all()
    for call in (lambda: model.expected_purchases_new_customer(5.0),
                 lambda: model.expected_purchases_new_customer_draws(5.0),
                 lambda: dg.frequency_recency_table(model, rfm),
                 lambda: model.probability_alive(rows.drop(columns="channel"))):
        with pytest.raises(ValueError, match="channel"):
            call()


def test_bayesian_spend_entry_points(bayes_bgnbd) -> None:
    from clvmodels.models.bayes_gammagamma import BayesianGammaGamma

    _, rfm = bayes_bgnbd
    rfm = rfm.assign(monetary_value=np.where(rfm["channel"] == "web", 2.0, 1.0)
                     * rfm["monetary_value"])
    model = BayesianGammaGamma(spend_covariates=["channel"]).fit(rfm, **BAYES_KW)
    base = _draws(model, ("p", "q", "v"))
    g = model.coefficient_draws()["spend:channel[web]"].to_numpy()
    plain = GammaGamma.from_params(p=1.0, q=2.0, v=1.0)
    rows = DATA["continuous"]
    got = model.expected_spend(rows).to_numpy()
    pop = model.population_mean_spend(covariates=PROFILES)
    for k, level in enumerate(LEVELS):
        v = base["v"] * (np.exp(g) if level == "web" else 1.0)
        sel = (rows["channel"] == level).to_numpy()
        from clvmodels.models.gammagamma import expected_spend, population_mean_spend

        want = expected_spend(base["p"][:, None], base["q"][:, None], v[:, None],
                              rows["frequency"].to_numpy(float)[sel],
                              rows["monetary_value"].to_numpy(float)[sel]).mean(axis=0)
        np.testing.assert_allclose(got[sel], want, rtol=1e-10)
        assert pop[k] == pytest.approx(float(np.mean(population_mean_spend(
            base["p"], base["q"], v))), rel=1e-10)
    interval = model.population_mean_spend(0.9, covariates=PROFILES)
    assert list(interval.index) == [0, 1] and (interval["lower"] < interval["upper"]).all()
    density = dg.spend_density_table(model, rfm, interval=0.9, n_points=30)
    assert np.isfinite(density["density"]).all() and density.attrs["model_mean"] > 0
    assert plain.population_mean_spend() == pytest.approx(1.0)
    for call in (lambda: model.population_mean_spend(),
                 lambda: dg.spend_density_table(model, rfm.drop(columns="channel"))):
        with pytest.raises(ValueError, match="channel"):
            call()


def test_bayesian_bgbb_probability_alive_table() -> None:
    from clvmodels.models.bgbb import BayesianBetaGeoBetaBinom, simulate_bgbb

    parts = [simulate_bgbb(120, 6, alpha=1.2, beta=0.8, gamma=g, delta=2.0, random_seed=7 + i)
             .assign(channel=level) for i, (level, g) in enumerate((("a", 0.6), ("b", 2.5)))]
    data = pd.concat(parts, ignore_index=True)
    model = BayesianBetaGeoBetaBinom(dropout_covariates=["channel"]).fit(data, **BAYES_KW)
    tables = {lv: dd.probability_alive_table(model, 6, covariates={"channel": lv})
              for lv in ("a", "b")}
    grid = pd.DataFrame({"frequency": [3], "recency": [4], "T": [6], "channel": ["b"]})
    assert tables["b"].at[4, 3] == pytest.approx(float(model.probability_alive(grid).iloc[0]),
                                                 rel=1e-12)
    assert not np.allclose(tables["a"].to_numpy(), tables["b"].to_numpy(), equal_nan=True)
    with pytest.raises(ValueError, match="channel"):
        dd.probability_alive_table(model, 6)
    assert math.isfinite(tables["a"].at[0, 0])
