"""Covariates in the contractual comparison (issue 11): ``compare_contractual`` with covariate
sBG models and a customer table, each subscriber predicted with their own attributes; the
survival and projection tables of a covariate model; the report's covariates section; the
``compare`` command with --dropout-covariates / --customers; the BG/BB P(alive) table of a
covariate model (one profile, or refused)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clvmodels import ValidationError
from clvmodels.cli import app
from clvmodels.diagnostics_discrete import (
    cohort_expected_lifetime,
    probability_alive_table,
    retention_curve_table,
    survival_projection_table,
)
from clvmodels.evaluation import compare_contractual
from clvmodels.models.bgbb import BetaGeoBetaBinom
from clvmodels.models.sbg import BayesianShiftedBetaGeo, ShiftedBetaGeo
from clvmodels.report import write_report

CAL_END, OBS_END = "2022-06-30", "2023-06-30"


def simulate_subscriptions(n: int, alpha: float, beta: float, *, seed: int,
                           id_offset: int = 0) -> pd.DataFrame:
    """Monthly sBG subscriptions started in 2020-2021: theta ~ Beta(alpha, beta), T periods
    paid ~ shifted geometric (capped at 1,000: no end far past pandas' dates); the
    subscription ends on the T-th monthly anniversary, empty after 2023-06-30."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 731, n), unit="D")
    life = np.minimum(rng.geometric(np.maximum(rng.beta(alpha, beta, n), 1e-9)), 1000)
    end = pd.Series([s + pd.DateOffset(months=int(t)) for s, t in zip(start, life,
                                                                     strict=True)])
    return pd.DataFrame({"customer_id": np.arange(n) + id_offset, "start": start,
                         "end": end.where(end <= pd.Timestamp(OBS_END))})


def plan_subscriptions(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly subscriptions of two plans that churn differently — the sBG's covariate link
    with beta = 3: annual churn probabilities Beta(0.6, 3), monthly Beta(0.6 e^1.2, 3) — and
    the customer table (id column ``cid``)."""
    a = simulate_subscriptions(n, 0.6, 3.0, seed=seed)
    b = simulate_subscriptions(n, 0.6 * math.exp(1.2), 3.0, seed=seed + 1, id_offset=10_000)
    subs = pd.concat([a, b], ignore_index=True)
    plan = np.where(subs["customer_id"] < 10_000, "annual", "monthly")
    return subs, pd.DataFrame({"cid": subs["customer_id"], "plan": plan})


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return plan_subscriptions()


@pytest.fixture(scope="module")
def comparison(data):
    subs, customers = data
    return compare_contractual(
        subs, calibration_end=CAL_END, observation_end=OBS_END,
        models={"sbg": "sbg", "sbg+cov": ShiftedBetaGeo(dropout_covariates=["plan"])},
        customers=customers, customers_id_col="cid")


def _base(model: ShiftedBetaGeo, linked: float = 0.0) -> ShiftedBetaGeo:
    """The plain sBG with the covariate model's base parameters, alpha times exp(linked)."""
    return ShiftedBetaGeo.from_params(alpha=float(model.params_["alpha"]) * math.exp(linked),
                                      beta=float(model.params_["beta"]), time_unit="M")


def _paying_at_end(model, active: pd.DataFrame, k: np.ndarray) -> np.ndarray:
    out = np.empty(len(active))
    for kv in np.unique(k):
        sel = k == kv
        out[sel] = model.conditional_survival(active.loc[sel], int(kv)).to_numpy()
    return out


# --------------------------------------------------------------------------------------
# compare_contractual
# --------------------------------------------------------------------------------------


def test_each_subscriber_predicted_with_their_own_plan(comparison) -> None:
    model = comparison.models["sbg+cov"]
    assert model.coefficient_names_ == ["dropout:plan[monthly]"]
    g = float(model.params_["dropout:plan[monthly]"])
    assert g > 0.3  # monthly subscribers churn more (positive dropout coefficient)
    assert "plan" in comparison.calibration.columns
    assert comparison.settings["covariates"] == {"sbg+cov": {"dropout": ["plan"]}}
    holdout = comparison.holdout
    active = comparison.calibration.loc[holdout.index]
    k = holdout["decisions"].to_numpy()
    pred = comparison.predictions["sbg+cov"]
    annual = (active["plan"] == "annual").to_numpy()
    # the reference level (annual) is the plain sBG at the base parameters; monthly has
    # alpha exp(g) (links equation (1))
    for sel, linked in ((annual, 0.0), (~annual, g)):
        expected = _paying_at_end(_base(model, linked), active.loc[sel], k[sel])
        np.testing.assert_allclose(pred["expected_paying_at_end"].to_numpy()[sel], expected,
                                   rtol=1e-10)
    # same history, different plan: different forecasts
    both = active.assign(k=k).groupby(["periods", "k"])["plan"].nunique()
    periods, kk = both[both == 2].index[0]
    same = ((active["periods"] == periods) & (k == kk)).to_numpy()
    values = pred.loc[same, "expected_renewals"].groupby(active.loc[same, "plan"]).mean()
    assert values["annual"] > values["monthly"] + 0.05
    # the covariate model beats the plain one on the holdout when plans differ this much
    m = comparison.metrics
    assert m.at["sbg+cov", "holdout_log_likelihood"] > m.at["sbg", "holdout_log_likelihood"]
    assert m.at["sbg+cov", "log_likelihood"] > m.at["sbg", "log_likelihood"]


def test_survival_table_is_the_cohorts_mean_curve(comparison) -> None:
    model = comparison.models["sbg+cov"]
    g = float(model.params_["dropout:plan[monthly]"])
    table = comparison.tables["sbg+cov"]["survival"]
    t = table.index.to_numpy()
    share = float((comparison.calibration["plan"] == "monthly").mean())
    expected = ((1 - share) * _base(model).survival(t)
                + share * _base(model, g).survival(t))
    np.testing.assert_allclose(table["model"].to_numpy(), expected, rtol=1e-12)
    # one profile: exactly that profile's curve
    one = retention_curve_table(model, comparison.final, covariates={"plan": "monthly"},
                                interval=None)
    np.testing.assert_allclose(one["model"].to_numpy(), _base(model, g).survival(t),
                               rtol=1e-12)


def test_projection_table_for_a_profile_and_a_cohort(comparison) -> None:
    model = comparison.models["sbg+cov"]
    g = float(model.params_["dropout:plan[monthly]"])
    plain = _base(model, g)
    table = survival_projection_table(model, 12, covariates={"plan": "monthly"})
    t = np.arange(1, 13)
    np.testing.assert_allclose(table["survival"].to_numpy(), plain.survival(np.arange(13)),
                               rtol=1e-12)
    np.testing.assert_allclose(table["retention_rate"].to_numpy()[1:],
                               plain.retention_rate(t), rtol=1e-10)
    np.testing.assert_allclose(table["churn_probability"].to_numpy()[1:],
                               plain.churn_probability(t), rtol=1e-9)
    assert table.attrs["expected_lifetime"] == pytest.approx(float(plain.expected_lifetime()),
                                                             rel=1e-12)
    cohort = cohort_expected_lifetime(model, covariates=comparison.calibration)
    share = float((comparison.calibration["plan"] == "monthly").mean())
    lives = [float(_base(model, x).expected_lifetime()) for x in (0.0, g)]
    assert cohort == pytest.approx((1 - share) * lives[0] + share * lives[1], rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda m, c: survival_projection_table(m, 6),
    lambda m, c: retention_curve_table(m, c.final),
    lambda m, c: cohort_expected_lifetime(m),
    lambda m, c: m.survival(3),
    lambda m, c: m.expected_lifetime(),
])
def test_new_customer_curves_refuse_without_a_profile(comparison, call) -> None:
    with pytest.raises(ValueError, match="plan"):
        call(comparison.models["sbg+cov"], comparison)


def test_plain_models_refuse_covariates(comparison) -> None:
    with pytest.raises(ValueError, match="no covariates"):
        survival_projection_table(comparison.models["sbg"], 6, covariates={"plan": "annual"})
    with pytest.raises(ValueError, match="no covariates"):
        retention_curve_table(comparison.baselines["constant-churn"], comparison.final,
                              covariates=comparison.calibration)


def test_covariate_read_from_the_subscriptions(data) -> None:
    subs, customers = data
    with_plan = subs.merge(customers, left_on="customer_id", right_on="cid").drop(columns="cid")
    res = compare_contractual(with_plan, calibration_end=CAL_END, observation_end=OBS_END,
                              models={"cov": ShiftedBetaGeo(dropout_covariates=["plan"])},
                              baselines=False)
    ref = compare_contractual(subs, calibration_end=CAL_END, observation_end=OBS_END,
                              models={"cov": ShiftedBetaGeo(dropout_covariates=["plan"])},
                              baselines=False, customers=customers, customers_id_col="cid")
    np.testing.assert_allclose(res.models["cov"].params_.to_numpy(),
                               ref.models["cov"].params_.to_numpy(), rtol=1e-8)


def test_refusals(data) -> None:
    subs, customers = data
    common = dict(calibration_end=CAL_END, observation_end=OBS_END, baselines=False)
    with pytest.raises(ValueError, match="none of the models has covariates"):
        compare_contractual(subs, models=["sbg"], customers=customers,
                            customers_id_col="cid", **common)
    with pytest.raises(ValidationError, match="'plan'"):  # found nowhere
        compare_contractual(subs, models={"c": ShiftedBetaGeo(dropout_covariates=["plan"])},
                            **common)
    with pytest.raises(ValidationError, match="no row for"):  # customers missing
        compare_contractual(subs, models={"c": ShiftedBetaGeo(dropout_covariates=["plan"])},
                            customers=customers.iloc[:50], customers_id_col="cid", **common)
    with pytest.raises(ValueError, match="clash"):
        compare_contractual(subs.assign(cohort=1),
                            models={"c": ShiftedBetaGeo(dropout_covariates=["cohort"])},
                            **common)


def test_report_shows_the_coefficients(comparison, tmp_path: Path) -> None:
    written = write_report(comparison, tmp_path / "r")
    assert "figure:coefficients" in written and "coefficients" in written
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="covariates"' in page and "plan[monthly]" in page
    assert "Likelihood-ratio tests" in page  # sbg nested in sbg+cov
    coefs = pd.read_csv(tmp_path / "r" / "coefficients.csv")
    assert coefs["coefficient"].tolist() == ["dropout:plan[monthly]"]
    # a comparison without covariates has no such section
    plain = compare_contractual(plan_subscriptions(150, seed=5)[0], calibration_end=CAL_END,
                                observation_end=OBS_END, models=["sbg"])
    written = write_report(plain, tmp_path / "p")
    assert "coefficients" not in written
    assert 'id="covariates"' not in (tmp_path / "p" / "report.html").read_text()


# --------------------------------------------------------------------------------------
# Bayesian twin
# --------------------------------------------------------------------------------------


def test_bayesian_sbg_with_covariates_in_the_comparison(tmp_path: Path) -> None:
    subs, customers = plan_subscriptions(150, seed=3)
    res = compare_contractual(
        subs, calibration_end=CAL_END, observation_end=OBS_END,
        models={"bcov": BayesianShiftedBetaGeo(dropout_covariates=["plan"])},
        customers=customers, customers_id_col="cid", baselines=False,
        bayes_kwargs={"draws": 100, "tune": 100, "chains": 2, "random_seed": 1})
    model = res.models["bcov"]
    assert np.isfinite(res.metrics.at["bcov", "holdout_log_likelihood"])
    # the survival table: the mean over the calibration customers of each profile's
    # posterior-mean curve
    profiles = pd.DataFrame({"plan": ["annual", "monthly"]})
    t = np.arange(5)
    curves = model.survival(t, covariates=profiles).to_numpy().reshape(2, 5)
    share = float((res.calibration["plan"] == "monthly").mean())
    table = res.tables["bcov"]["survival"]
    np.testing.assert_allclose(table["model"].to_numpy()[:5],
                               (1 - share) * curves[0] + share * curves[1], rtol=1e-12)
    # per profile: the posterior mean over draws of the linked parameters
    draws = model.coefficient_draws()["dropout:plan[monthly]"].to_numpy()
    post = model.idata_.posterior
    a = post["alpha"].to_numpy().reshape(-1)
    b = post["beta"].to_numpy().reshape(-1)
    plain = ShiftedBetaGeo.from_params(alpha=1.0, beta=1.0, time_unit="M")
    want = np.mean([plain._survival({"alpha": ai * math.exp(gi), "beta": bi}, 3.0)
                    for ai, bi, gi in zip(a, b, draws, strict=True)])
    assert curves[1, 3] == pytest.approx(want, rel=1e-10)
    # intervals per profile; a model with covariates refuses the population curve
    frame = model.retention_rate([1, 2], interval=0.9, covariates=profiles)
    assert frame.index.nlevels == 2 and len(frame) == 4
    assert (frame["retention_rate_lower"] <= frame["retention_rate_upper"]).all()
    with pytest.raises(ValueError, match="plan"):
        model.survival(3)
    lives = model.expected_lifetime(covariates=profiles)
    assert lives.shape == (2,)
    value = model.discounted_expected_lifetime(0.1, covariates=profiles)
    assert value.shape == (2,) and value[0] > value[1]  # annual subscribers stay longer
    bands = model.discounted_expected_lifetime(0.1, 0.9, covariates=profiles)
    np.testing.assert_allclose(bands["del"].to_numpy(), value, rtol=1e-12)
    assert (bands["del_lower"] < bands["del_upper"]).all()
    pred = res.predictions["bcov"]
    active = res.calibration.loc[res.holdout.index]
    one = (active["periods"] == active["periods"].mode()[0]).to_numpy()
    by_plan = pred.loc[one, "expected_paying_at_end"].groupby(active.loc[one, "plan"]).mean()
    assert by_plan["annual"] > by_plan["monthly"]
    # the report: posterior coefficient table and forest plot, curves of the cohort
    written = write_report(res, tmp_path / "r")
    assert "figure:coefficients" in written
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="covariates"' in page and "posterior mean" in page


# --------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------


def test_cli_compare_contractual_with_covariates(data, tmp_path: Path) -> None:
    subs, customers = data
    subs_path, cust_path = tmp_path / "subs.csv", tmp_path / "customers.csv"
    subs.to_csv(subs_path, index=False)
    customers.to_csv(cust_path, index=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "compare", str(subs_path), "--calibration-end", CAL_END, "--observation-end", OBS_END,
        "--out", str(out), "--models", "sbg", "--dropout-covariates", "plan",
        "--customers", str(cust_path), "--customers-id", "cid"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert {"sbg", "sbg+cov", "constant-churn"} <= set(metrics.index)
    assert "LR test sbg vs sbg+cov" in result.output
    assert (out / "coefficients.csv").exists()
    assert 'id="covariates"' in (out / "report.html").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--purchase-covariates", "plan"], "--dropout-covariates"),
    (["--spend-covariates", "plan"], "no spend model"),
    (["--dropout-covariates", "plan", "--customers-id", "cid"], "--customers"),
])
def test_cli_compare_contractual_refusals(data, tmp_path: Path, extra, message) -> None:
    subs, _ = data
    subs_path = tmp_path / "subs.csv"
    subs.iloc[:50].to_csv(subs_path, index=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "compare", str(subs_path), "--calibration-end", CAL_END, "--observation-end", OBS_END,
        "--out", str(out), "--models", "sbg", *extra])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not out.exists()


# --------------------------------------------------------------------------------------
# BG/BB: the P(alive) table of a covariate model
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bgbb_cov() -> tuple[BetaGeoBetaBinom, pd.DataFrame]:
    from clvmodels.models.bgbb import simulate_bgbb

    parts = []
    for i, (level, gamma) in enumerate((("a", 0.6), ("b", 2.5))):
        d = simulate_bgbb(800, 6, alpha=1.2, beta=0.8, gamma=gamma, delta=2.0,
                          random_seed=10 + i)
        parts.append(d.assign(channel=level))
    data = pd.concat(parts, ignore_index=True)
    model = BetaGeoBetaBinom(dropout_covariates=["channel"]).fit(data)
    return model, data


def test_probability_alive_table_per_profile(bgbb_cov) -> None:
    model, data = bgbb_cov
    with pytest.raises(ValueError, match="channel"):
        probability_alive_table(model, 6)
    with pytest.raises(ValueError, match="channel"):
        probability_alive_table(model, 6, covariates={"region": "x"})
    tables = {lv: probability_alive_table(model, 6, covariates={"channel": lv}, data=data)
              for lv in ("a", "b")}
    p = model.params_
    g = float(p["dropout:channel[b]"])
    for level, linked in (("a", 0.0), ("b", g)):
        plain = BetaGeoBetaBinom.from_params(
            alpha=p["alpha"], beta=p["beta"], gamma=p["gamma"] * math.exp(linked),
            delta=p["delta"], time_unit=model.time_unit_)
        want = probability_alive_table(plain, 6)
        np.testing.assert_allclose(tables[level].to_numpy(), want.to_numpy(), rtol=1e-10,
                                   equal_nan=True)
        assert tables[level].attrs["covariates"] == {"channel": level}
        counts = tables[level].attrs["customers"].to_numpy().sum()
        assert counts == int((data["channel"] == level).sum())
    assert not np.allclose(tables["a"].to_numpy(), tables["b"].to_numpy(), equal_nan=True)


# --------------------------------------------------------------------------------------
# the batch forecast on subscription records
# --------------------------------------------------------------------------------------


def test_forecast_reads_the_plan_from_the_records(data, tmp_path: Path) -> None:
    from clvmodels.workflow import forecast

    subs, customers = data
    records = subs.merge(customers, left_on="customer_id", right_on="cid").drop(columns="cid")
    # a customer's value is their earliest record's, whatever the rows' order
    shuffled = records.sample(frac=1.0, random_state=0)
    options = dict(model="sbg", period="M", observation_end=CAL_END, horizon="24M",
                   revenue_per_period=10.0, dropout_covariates=["plan"])
    res = forecast(shuffled, **options)
    ref = forecast(subs, customers=customers, customers_id_col="cid", **options)
    np.testing.assert_allclose(res.transaction_model.params_.to_numpy(),
                               ref.transaction_model.params_.to_numpy(), rtol=1e-8)
    out = res.forecast.loc[ref.forecast.index]
    np.testing.assert_allclose(out["clv"].to_numpy(), ref.forecast["clv"].to_numpy(),
                               rtol=1e-10)
    active = out.loc[~out["churned"] & (out["periods"] == 12)]
    by_plan = active.groupby("plan")["clv"].mean()
    assert by_plan["annual"] > by_plan["monthly"]  # the monthly plan churns more
    # a covariate group the sBG does not take is refused before any file is read
    with pytest.raises(ValueError, match="purchase_covariates"):
        forecast(tmp_path / "nothing-here.csv", model="sbg", period="M", observation_end=CAL_END,
                 purchase_covariates=["plan"])


def test_cli_score_reads_the_plan_from_the_records(data, tmp_path: Path) -> None:
    from clvmodels import contract_summary, load_model
    from clvmodels.valuation import customer_lifetime_value

    subs, customers = data
    records = subs.merge(customers, left_on="customer_id", right_on="cid").drop(columns="cid")
    summary = contract_summary(records, observation_end=CAL_END, period="M")
    summary["plan"] = customers.set_index("cid")["plan"]
    ShiftedBetaGeo(dropout_covariates=["plan"]).fit(summary).save(tmp_path / "sbg.json")
    records.to_csv(tmp_path / "records.csv", index=False)
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(app, [
        "score", str(tmp_path / "sbg.json"), str(tmp_path / "records.csv"), "--out", str(out),
        "--observation-end", CAL_END, "--horizon", "24M", "--revenue-per-period", "10"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    scored = pd.read_csv(out).set_index("customer_id")
    want = customer_lifetime_value(load_model(tmp_path / "sbg.json"), 10.0, summary,
                                   horizon="24M", discount_rate=0.1)
    np.testing.assert_allclose(scored.loc[want.index, "clv"].to_numpy(),
                               want["clv"].to_numpy(), rtol=1e-10)
