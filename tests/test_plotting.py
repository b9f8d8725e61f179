"""Diagnostic plots: the tables behind them against CDNOW's published numbers and independent
computations, and every plot runs, is labelled, draws what it should and accepts an ``ax``.

Maximum-likelihood models are fitted on the full CDNOW sample (weeks, calibration to
1997-09-30, holdout to 1998-06-30); the Bayesian ones on a 300-customer subset with one short
chain, once per module (they are skipped only when the Bayesian modules cannot be imported).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvmodels import BetaGeo, GammaGamma, ParetoNBD, customer_lifetime_value
from clvmodels import plotting as P

matplotlib.use("Agg")

CAL_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
#: REFERENCE.md: BG/NBD expected calibration histogram and the actual one (x = 0..6, 7+)
PUBLISHED_EXPECTED = [1407.7, 460.3, 192.5, 101.2, 59.8, 38.1, 25.5, 71.9]
PUBLISHED_ACTUAL = [1411, 439, 214, 100, 62, 38, 29, 64]


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def mle(_cdnow_transactions: pd.DataFrame, _cdnow_split: pd.DataFrame) -> SimpleNamespace:
    """MLE models on the CDNOW split, its transactions, a 39-week CLV and holdout revenue."""
    split = _cdnow_split
    bg = BetaGeo().fit(split)
    gg = GammaGamma().fit(split)
    clv = customer_lifetime_value(bg, gg, split, horizon=39, discount_rate=0.1)
    revenue = split["frequency_holdout"] * split["monetary_value_holdout"]
    return SimpleNamespace(tx=_cdnow_transactions, split=split, bg=bg, pnbd=ParetoNBD().fit(split),
                           gg=gg, clv=clv, revenue=revenue)


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------


def test_calibration_histogram_table_matches_published(mle: SimpleNamespace) -> None:
    table = P.calibration_histogram_table(mle.bg, mle.split)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    np.testing.assert_array_equal(table["actual"], PUBLISHED_ACTUAL)
    np.testing.assert_allclose(table["expected"], PUBLISHED_EXPECTED, atol=0.051)
    assert table["expected"].sum() == pytest.approx(2357)
    assert "expected_lower" not in table  # a point estimate has no interval
    # chi-square from the published (rounded) numbers, 8 cells - 1 - 4 parameters
    o, e = np.array(PUBLISHED_ACTUAL, float), np.array(PUBLISHED_EXPECTED)
    assert table.attrs["chi_square"] == pytest.approx(np.sum((o - e) ** 2 / e), abs=0.02)
    assert table.attrs["dof"] == 3
    assert table.attrs["p_value"] == pytest.approx(stats.chi2.sf(table.attrs["chi_square"], 3))
    assert table.attrs["n_customers"] == 2357


def test_calibration_histogram_max_frequency(mle: SimpleNamespace) -> None:
    table = P.calibration_histogram_table(mle.pnbd, mle.split, max_frequency=3)
    np.testing.assert_array_equal(table["actual"], [1411, 439, 214, 293])
    assert table["expected"].sum() == pytest.approx(2357)
    assert table.attrs["dof"] == 4 - 1 - 4 and np.isnan(table.attrs["p_value"])
    with pytest.raises(ValueError, match="max_frequency"):
        P.calibration_histogram_table(mle.bg, mle.split, max_frequency=0)


def test_conditional_expectation_table(mle: SimpleNamespace) -> None:
    table = P.conditional_expectation_table(mle.bg, mle.split)
    assert table["n_customers"].tolist() == PUBLISHED_ACTUAL
    # frequency 0, independently from the raw transactions: customers with a single purchase
    # day up to the calibration end; their mean number of purchase days in the holdout
    days = mle.tx.assign(day=mle.tx["date"].dt.normalize())[["customer_id", "day"]]
    days = days.drop_duplicates()
    cal = days.loc[days["day"] <= CAL_END]
    one_day = cal.groupby("customer_id").size().loc[lambda s: s == 1].index
    hold = days.loc[(days["day"] > CAL_END) & (days["day"] <= HOLDOUT_END)]
    per_customer = hold.groupby("customer_id").size().reindex(one_day, fill_value=0)
    assert len(one_day) == 1411
    assert table.loc["0", "actual"] == pytest.approx(per_customer.mean())
    zero = mle.split.loc[mle.split["frequency"] == 0]
    assert table.loc["0", "expected"] == pytest.approx(
        mle.bg.expected_purchases(zero, 39.0).mean())
    assert table.attrs["duration"] == pytest.approx(39.0)
    # the model over all customers reproduces the total holdout forecast
    total = (table["expected"] * table["n_customers"]).sum()
    assert total == pytest.approx(mle.bg.expected_purchases(mle.split, 39.0).sum())


def test_tracking_table(mle: SimpleNamespace) -> None:
    table = P.tracking_table(mle.bg, mle.tx, CAL_END, HOLDOUT_END, "W")
    assert len(table) == 78  # 1997-01-01 .. 1998-06-30 is exactly 78 weeks
    assert table["period_start"].iloc[0] == pd.Timestamp("1997-01-01")
    assert table["period_end"].iloc[-1] == pd.Timestamp(HOLDOUT_END)
    assert table.loc[39, "period_end"] == pd.Timestamp(CAL_END)
    assert table["actual_cumulative"].iloc[-1] == 2457 + 1882
    assert table.loc[39, "actual_cumulative"] == 2457
    assert not table.loc[39, "in_holdout"] and table.loc[40, "in_holdout"]
    a = table.attrs
    assert (a["calibration_actual"], a["holdout_actual"], a["n_customers"]) == (2457, 1882, 2357)
    # the vectorised expectation equals sum_i E[X(T_i)] at the calibration end
    direct = mle.bg.expected_purchases_new_customer(mle.split["T"].to_numpy()).sum()
    assert table.loc[39, "expected_cumulative"] == pytest.approx(direct, rel=1e-12)
    assert a["calibration_expected"] == pytest.approx(direct, rel=1e-12)
    np.testing.assert_allclose(table["expected"].cumsum(), table["expected_cumulative"])
    np.testing.assert_allclose(table["actual"].cumsum(), table["actual_cumulative"])
    assert a["holdout_percent_error"] == pytest.approx(
        100 * (a["holdout_expected"] / 1882 - 1))
    # a coarser period: same totals
    monthly = P.tracking_table(mle.pnbd, mle.tx, CAL_END, HOLDOUT_END, "M")
    assert monthly["actual"].sum() == 4339 and len(monthly) == 18


def test_frequency_recency_table(mle: SimpleNamespace) -> None:
    table = P.frequency_recency_table(mle.bg, mle.split, kind="probability_alive", T=38.86,
                                      max_frequency=5, n_recency=11)
    assert table.shape == (6, 11)
    assert table.loc[0, 0.0] == 1.0 and table.loc[0].iloc[1:].isna().all()
    assert table.loc[1:, 0.0].isna().all()
    rec = table.columns[5]
    one = pd.DataFrame({"frequency": [3.0], "recency": [rec], "T": [38.86]})
    one.attrs["time_unit"] = "W"
    assert table.loc[3, rec] == pytest.approx(mle.bg.probability_alive(one).iloc[0])
    purchases = P.frequency_recency_table(mle.bg, mle.split, t=10, max_frequency=5)
    assert purchases.loc[3].iloc[-1] == pytest.approx(
        mle.bg.expected_purchases(one.assign(recency=purchases.attrs["T"],
                                             T=purchases.attrs["T"]), 10).iloc[0])


def test_probability_alive_history(mle: SimpleNamespace) -> None:
    # customer 1: purchases 1997-01-01, 01-18, 08-02, 12-12; at the calibration end
    # x = 2, t_x = 30.43, T = 38.86 weeks: P(alive) = 0.7266 (REFERENCE.md)
    hist = P.probability_alive_history(mle.bg, mle.tx, HOLDOUT_END, customer_id=1)
    row = hist.loc[CAL_END]
    assert (row["frequency"], round(row["recency"], 2), round(row["T"], 2)) == (2, 30.43, 38.86)
    assert row["probability_alive"] == pytest.approx(0.7266, abs=1e-4)
    assert hist["is_purchase"].sum() == 4 and hist.index[0] == pd.Timestamp("1997-01-01")
    assert hist.index[-1] == pd.Timestamp(HOLDOUT_END)
    dates = mle.tx.loc[mle.tx["customer_id"] == 1, "date"].tolist()
    weekly = P.probability_alive_history(mle.bg, dates, HOLDOUT_END, freq="W")
    assert weekly["is_purchase"].sum() == 4 and len(weekly) < len(hist)
    pd.testing.assert_series_equal(weekly["probability_alive"],
                                   hist.loc[weekly.index, "probability_alive"])
    with pytest.raises(ValueError, match="customer_id"):
        P.probability_alive_history(mle.bg, mle.tx, HOLDOUT_END)


def test_spend_density_table(mle: SimpleNamespace) -> None:
    table = P.spend_density_table(mle.gg, mle.split, n_points=400)
    a = table.attrs
    assert a["n_customers"] == 946
    assert a["observed_mean"] == pytest.approx(35.08, abs=0.01)
    assert a["model_mean"] == pytest.approx(35.17, abs=0.01)
    # a density: it integrates to (almost) 1 over the grid, which covers the 99th percentile
    mass = np.trapezoid(np.r_[0.0, table["density"]], np.r_[0.0, table.index])
    assert 0.97 < mass < 1.0
    with pytest.raises(TypeError, match="Gamma-Gamma"):
        P.spend_density_table(mle.bg, mle.split)


def test_lorenz_table() -> None:
    equal = P.lorenz_table(np.full(50, 3.0))
    grid = equal.index.to_numpy()
    np.testing.assert_allclose(equal["lorenz"], grid, atol=1e-12)
    np.testing.assert_allclose(equal["top_share"], grid, atol=1e-12)
    assert equal.attrs["gini"] == pytest.approx(0.0, abs=1e-12)
    # the Gini coefficient equals the mean-absolute-difference formula
    values = np.random.default_rng(3).lognormal(2.0, 1.2, 400)
    table = P.lorenz_table(values)
    mad = np.abs(values[:, None] - values[None, :]).sum() / (2 * len(values) ** 2 * values.mean())
    assert table.attrs["gini"] == pytest.approx(mad, rel=1e-10)
    top = np.sort(values)[::-1]
    assert table.attrs["top_10_share"] == pytest.approx(top[:40].sum() / values.sum())
    # one customer holds everything
    assert P.lorenz_table([0, 0, 0, 10]).attrs["gini"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="non-negative"):
        P.lorenz_table([1.0, -1.0])


def test_gains_table() -> None:
    rng = np.random.default_rng(7)
    actual = rng.gamma(0.5, 100.0, 1000) * (rng.random(1000) < 0.4)
    perfect = P.gains_table(actual, actual)
    noisy = P.gains_table(actual * rng.lognormal(0, 1.0, 1000), actual)
    random = P.gains_table(rng.random(1000), actual)
    np.testing.assert_allclose(perfect["model"], perfect["perfect"])
    assert np.all(perfect["model"] >= noisy["model"] - 1e-12)
    assert np.all(noisy["model"] >= random["model"] - 0.05)
    assert perfect.attrs["top_decile_capture"] > noisy.attrs["top_decile_capture"]
    assert noisy.attrs["top_decile_capture"] > random.attrs["top_decile_capture"]
    assert perfect.attrs["normalized_gini"] == pytest.approx(1.0)
    assert abs(random.attrs["gini"]) < 0.1
    # tied predictions share their actual value evenly: a constant ranks like the diagonal
    flat = P.gains_table(np.ones(1000), actual)
    np.testing.assert_allclose(flat["model"], flat["random"], atol=1e-12)
    # Series are aligned on their index
    s_act = pd.Series(actual, index=np.arange(1000))
    shuffled = s_act.sample(frac=1.0, random_state=1)
    assert P.gains_table(shuffled, s_act).attrs["normalized_gini"] == pytest.approx(1.0)


def test_posterior_predictive_histogram_table_mle(mle: SimpleNamespace) -> None:
    table = P.posterior_predictive_histogram_table(mle.bg, mle.split, n_replicates=100)
    np.testing.assert_array_equal(table["actual"], PUBLISHED_ACTUAL)
    np.testing.assert_allclose(table["replicated_mean"], PUBLISHED_EXPECTED, rtol=0.05)
    assert np.all(table["replicated_lower"] <= table["replicated_upper"])
    assert 0.05 < table.attrs["p_value"] <= 1.0  # the BG/NBD fits CDNOW's histogram


# --------------------------------------------------------------------------------------
# plots (maximum likelihood)
# --------------------------------------------------------------------------------------

PlotCase = tuple[str, Callable[[SimpleNamespace, Any], Any], dict[str, int]]

MLE_PLOTS: list[PlotCase] = [
    ("calibration_histogram", lambda m, ax: P.plot_calibration_histogram(m.bg, m.split, ax=ax),
     {"patches": 16, "legend": 2}),
    ("conditional_expectation",
     lambda m, ax: P.plot_conditional_expectation(m.pnbd, m.split, ax=ax),
     {"lines": 2, "legend": 2}),
    ("tracking_cumulative",
     lambda m, ax: P.plot_tracking(m.bg, m.tx, CAL_END, HOLDOUT_END, ax=ax),
     {"lines": 3, "legend": 2}),
    ("tracking_incremental",
     lambda m, ax: P.plot_tracking(m.pnbd, m.tx, CAL_END, HOLDOUT_END, kind="incremental",
                                   ax=ax),
     {"lines": 3, "legend": 2}),
    ("frequency_recency",
     lambda m, ax: P.plot_frequency_recency_matrix(m.bg, m.split, t=4, ax=ax),
     {"collections": 1}),
    ("probability_alive_matrix",
     lambda m, ax: P.plot_probability_alive_matrix(m.pnbd, m.split, ax=ax),
     {"collections": 1}),
    ("probability_alive_history",
     lambda m, ax: P.plot_probability_alive_history(m.bg, m.tx, HOLDOUT_END, customer_id=1,
                                                    calibration_end=CAL_END, ax=ax),
     {"lines": 3, "collections": 1, "legend": 2}),
    ("spend_density",
     lambda m, ax: P.plot_spend_density(m.gg, m.split, bins=30, currency="$", ax=ax),
     {"patches": 30, "lines": 3, "legend": 4}),
    ("clv_distribution", lambda m, ax: P.plot_clv_distribution(m.clv, bins=25, ax=ax),
     {"patches": 25, "lines": 2, "legend": 3}),
    ("lorenz", lambda m, ax: P.plot_lorenz(m.clv, ax=ax), {"lines": 3, "legend": 2}),
    ("gains", lambda m, ax: P.plot_gains(m.clv["clv"], m.revenue, ax=ax),
     {"lines": 4, "legend": 3}),
    ("predictive_check",
     lambda m, ax: P.plot_posterior_predictive_histogram(m.bg, m.split, n_replicates=50, ax=ax),
     {"patches": 8, "legend": 2}),
]


def _check_axes(ax: Any, expected: dict[str, int]) -> None:
    assert ax.get_title(), "every plot has a title"
    assert ax.get_xlabel() and ax.get_ylabel(), "and labelled axes"
    for what, n in expected.items():
        if what == "legend":
            assert ax.get_legend() is not None
            assert len(ax.get_legend().get_texts()) == n
        else:
            assert len(getattr(ax, what)) == n, what


@pytest.mark.parametrize(("name", "draw", "expected"), MLE_PLOTS, ids=[c[0] for c in MLE_PLOTS])
def test_mle_plots(mle: SimpleNamespace, name: str,
                   draw: Callable[[SimpleNamespace, Any], Any], expected: dict[str, int]) -> None:
    ax = draw(mle, None)
    _check_axes(ax, expected)
    _, given = plt.subplots()
    assert draw(mle, given) is given


def test_plot_labels(mle: SimpleNamespace) -> None:
    ax = P.plot_calibration_histogram(mle.bg, mle.split)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == "Actual" and "BG/NBD" in texts[1] and "χ² = 4.8" in texts[1]
    assert ax.yaxis.get_major_formatter()(1400, 0) == "1,400"  # thousands separators
    ax = P.plot_conditional_expectation(mle.bg, mle.split)
    assert "39 weeks" in ax.get_ylabel()
    assert ax.lines[0].get_color() == P.ACTUAL_COLOR and ax.lines[1].get_color() == P.MODEL_COLOR
    ax = P.plot_tracking(mle.bg, mle.tx, CAL_END, HOLDOUT_END, kind="incremental")
    assert "per week" in ax.get_title()
    assert "holdout tracking error" in ax.get_legend().get_texts()[1].get_text()
    ax = P.plot_frequency_recency_matrix(mle.bg, mle.split, t=4)
    assert "weeks" in ax.get_xlabel() and "next 4 weeks" in ax.get_title()


def test_tracking_scales_a_partial_last_week(mle: SimpleNamespace) -> None:
    """Data ending mid-week (issue 9): the last week covers 3 of 7 days; the per-week chart
    plots rates per full week for actual and model alike, so neither curve plunges."""
    end = "1998-06-26"  # 1997-01-01 + 77 weeks + 3 days
    table = P.tracking_table(mle.bg, mle.tx, CAL_END, end, "W")
    assert table["days"].iloc[-1] == 3 and not table["complete"].iloc[-1]
    assert table["complete"].iloc[:-1].all() and (table["days"].iloc[:-1] == 7).all()
    assert table.attrs["period_days"] == 7
    # the raw counts of the stub week are a fraction of a week's: the "plunge"
    assert table["expected"].iloc[-1] < 0.5 * table["expected"].iloc[-2]
    ax = P.plot_tracking(mle.bg, mle.tx, CAL_END, end, kind="incremental")
    actual, expected = (ax.lines[i].get_ydata() for i in (0, 1))
    np.testing.assert_allclose(actual[-1], table["actual"].iloc[-1] * 7 / 3)
    np.testing.assert_allclose(expected[-1], table["expected"].iloc[-1] * 7 / 3)
    np.testing.assert_allclose(actual[:-1], table["actual"].iloc[:-1])  # full weeks as they are
    # the model's weekly rate is smooth: the scaled stub continues the curve
    assert expected[-1] == pytest.approx(expected[-2], rel=0.05)
    assert 0.4 < actual[-1] / np.mean(actual[-6:-1]) < 2.0
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("partial (3 of 7 days)" in t for t in texts)
    # whole weeks only: nothing scaled, nothing marked
    full = P.plot_tracking(mle.bg, mle.tx, CAL_END, HOLDOUT_END, kind="incremental")
    whole = P.tracking_table(mle.bg, mle.tx, CAL_END, HOLDOUT_END, "W")
    np.testing.assert_allclose(full.lines[0].get_ydata(), whole["actual"])
    assert not any("partial" in t.get_text() for t in full.get_legend().get_texts())
    # the cumulative chart needs no scaling: it ends on the true total
    cum = P.plot_tracking(mle.bg, mle.tx, CAL_END, end, kind="cumulative")
    assert cum.lines[0].get_ydata()[-1] == table["actual_cumulative"].iloc[-1]


def _label_boxes(ax: Any, text: str) -> list[Any]:
    """Window extents of the texts of ``ax`` reading ``text`` (after a draw)."""
    renderer = ax.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.texts if t.get_text() == text]


def test_calibration_label_clear_of_the_legend(mle: SimpleNamespace) -> None:
    """Issue 9: the "end of calibration" label never overlaps the legend (checked on the
    drawn figure with the Agg renderer), with long legend texts and in small panels."""
    long = "A model with a rather long name for the legend of this chart"
    for kind in ("cumulative", "incremental"):
        for label, size in ((None, (9.0, 4.8)), (long, (9.0, 4.8)), (None, (6.5, 2.4))):
            _, ax = plt.subplots(figsize=size, layout="constrained")
            P.plot_tracking(mle.bg, mle.tx, CAL_END, "1998-06-26", kind=kind, label=label,
                            ax=ax)
            ax.figure.canvas.draw()
            boxes = _label_boxes(ax, "end of calibration")
            legend = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
            # clear of it, not merely touching (4 px: the old layout left 1 px in a short panel)
            assert len(boxes) == 1 and not boxes[0].overlaps(legend.padded(4)), (kind, label)
    # one customer's P(alive): calibration ends early on the axis, where a legend would sit
    first = mle.tx.loc[mle.tx["customer_id"] == mle.tx["customer_id"].iloc[0]]
    ax = P.plot_probability_alive_history(mle.bg, first["date"], HOLDOUT_END,
                                          calibration_end="1997-02-01")
    ax.figure.canvas.draw()
    boxes = _label_boxes(ax, "end of calibration")
    legend = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    assert len(boxes) == 1 and not boxes[0].overlaps(legend.padded(4))


def test_counts_are_named_by_the_data_kind(mle: SimpleNamespace) -> None:
    """A discrete-time model's histogram and conditional expectation speak of transactions
    at opportunities; a continuous-time model's of repeat purchases."""
    from clvmodels.models.bgbb import BetaGeoBetaBinom, simulate_bgbb

    donors = simulate_bgbb(300, 6, alpha=1.2, beta=0.75, gamma=0.66, delta=2.8, holdout=5,
                           random_seed=1)
    bgbb = BetaGeoBetaBinom().fit(donors)
    for ax in (P.plot_calibration_histogram(bgbb, donors),
               P.plot_conditional_expectation(bgbb, donors)):
        words = " ".join([ax.get_title(), ax.get_xlabel(), ax.get_ylabel()])
        assert "repeat" not in words.lower() and "purchases" not in words
        assert "transactions" in words.lower() and "opportunities" in ax.get_xlabel()
    assert "5 opportunities" in ax.get_ylabel()
    ax = P.plot_calibration_histogram(mle.bg, mle.split)
    assert ax.get_xlabel() == "Repeat purchases in the calibration period"


def test_plots_save_to_png(mle: SimpleNamespace, tmp_path: Path) -> None:
    for name, draw, _ in MLE_PLOTS:
        ax = draw(mle, None)
        path = tmp_path / f"{name}.png"
        ax.figure.savefig(path, dpi=60)
        assert path.stat().st_size > 5_000
        plt.close(ax.figure)


def test_bayesian_only_plots_refuse_mle(mle: SimpleNamespace) -> None:
    for fn in (P.plot_trace, P.plot_prior_posterior, P.plot_segment_forest):
        with pytest.raises(TypeError, match="Bayesian"):
            fn(mle.bg)


# --------------------------------------------------------------------------------------
# Bayesian models: posterior mean with a band, and the MCMC diagnostics
# --------------------------------------------------------------------------------------

BAYES_AVAILABLE = all(importlib.util.find_spec(m) is not None
                      for m in ("pymc", "arviz", "clvmodels.models.bayes_bgnbd"))


@pytest.fixture(scope="module")
def bayes(_cdnow_transactions: pd.DataFrame, _cdnow_split: pd.DataFrame) -> SimpleNamespace:
    """Tiny fits (one chain, 50 draws) on 300 customers: plain and hierarchical BG/NBD and a
    Gamma-Gamma."""
    try:
        from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
        from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
    except ImportError as exc:  # pragma: no cover - only without the Bayesian stack
        pytest.skip(f"Bayesian models not importable: {exc}")
    sub = _cdnow_split.iloc[:300].copy()
    sub["half"] = np.where(sub.index % 2 == 0, "even", "odd")
    tx = _cdnow_transactions.loc[_cdnow_transactions["customer_id"].isin(sub.index)]
    kw: dict[str, Any] = dict(draws=50, tune=50, chains=1, random_seed=1, sampler="pymc",
                              cores=1, log_likelihood=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BayesianBetaGeo().fit(sub, **kw)
        hier = BayesianBetaGeo(segment_col="half").fit(sub, **kw)
        gg = BayesianGammaGamma().fit(sub, **kw)
    return SimpleNamespace(split=sub, tx=tx, bg=bg, hier=hier, gg=gg)


needs_bayes = pytest.mark.skipif(not BAYES_AVAILABLE,
                                      reason="Bayesian modules (pymc/arviz) not importable")


@needs_bayes
def test_bayesian_tables_have_bands(bayes: SimpleNamespace) -> None:
    hist = P.calibration_histogram_table(bayes.bg, bayes.split)
    assert hist["actual"].sum() == 300 and hist["expected"].sum() == pytest.approx(300)
    assert np.all(hist["expected_lower"] <= hist["expected"])
    assert np.all(hist["expected"] <= hist["expected_upper"])
    # the posterior mean of the histogram is the mean over the thinned draws of the pmf
    post = bayes.bg.idata_.posterior
    from clvmodels.models.bgnbd import purchase_count_probability

    draws = {n: post[n].to_numpy().reshape(-1, 1) for n in ("r", "alpha", "a", "b")}
    T = bayes.split["T"].to_numpy()
    p0 = purchase_count_probability(*draws.values(), 0.0, T[None, :]).sum(axis=1).mean()
    assert hist.loc["0", "expected"] == pytest.approx(p0, rel=1e-10)
    assert P.calibration_histogram_table(bayes.bg, bayes.split, interval=None).shape[1] == 2

    cond = P.conditional_expectation_table(bayes.bg, bayes.split)
    assert np.all(cond["expected_lower"] <= cond["expected_upper"])
    mean_all = bayes.bg.expected_purchases(bayes.split, 39.0)
    zero = bayes.split["frequency"] == 0
    assert cond.loc["0", "expected"] == pytest.approx(mean_all[zero].mean(), rel=1e-10)

    track = P.tracking_table(bayes.bg, bayes.tx, CAL_END, HOLDOUT_END)
    assert track["actual_cumulative"].iloc[-1] == bayes.split["frequency"].sum() + \
        bayes.split["frequency_holdout"].sum()
    assert np.all(track["expected_cumulative_lower"] <= track["expected_cumulative_upper"])
    direct = bayes.bg.expected_purchases_new_customer(bayes.split["T"].to_numpy()).sum()
    assert track.loc[39, "expected_cumulative"] == pytest.approx(direct, rel=1e-10)

    # hierarchical: each customer's own segment, one evaluation per segment
    seg = P.tracking_table(bayes.hier, bayes.tx, CAL_END, HOLDOUT_END,
                           segments=bayes.split["half"])
    direct = sum(bayes.hier.expected_purchases_new_customer(part["T"].to_numpy(),
                                                            segment=label).sum()
                 for label, part in bayes.split.groupby("half"))
    assert seg.attrs["calibration_expected"] == pytest.approx(direct, rel=1e-10)

    hier = P.calibration_histogram_table(bayes.hier, bayes.split)
    assert hier["expected"].sum() == pytest.approx(300)
    spend = P.spend_density_table(bayes.gg, bayes.split)
    assert np.all(spend["density_lower"] <= spend["density_upper"])


BAYES_PLOTS: list[PlotCase] = [
    ("calibration_histogram",
     lambda b, ax: P.plot_calibration_histogram(b.bg, b.split, ax=ax),
     {"patches": 16, "containers": 3, "legend": 3}),
    ("conditional_expectation",
     lambda b, ax: P.plot_conditional_expectation(b.bg, b.split, ax=ax),
     {"lines": 2, "collections": 1, "legend": 3}),
    ("tracking", lambda b, ax: P.plot_tracking(b.bg, b.tx, CAL_END, HOLDOUT_END, ax=ax),
     {"lines": 3, "collections": 1, "legend": 3}),
    ("tracking_hierarchical",
     lambda b, ax: P.plot_tracking(b.hier, b.tx, CAL_END, HOLDOUT_END, kind="incremental",
                                   segments=b.split["half"], ax=ax),
     {"lines": 3, "collections": 1}),
    ("probability_alive_matrix",
     lambda b, ax: P.plot_probability_alive_matrix(b.hier, b.split, segment="odd", ax=ax),
     {"collections": 1}),
    ("probability_alive_history",
     lambda b, ax: P.plot_probability_alive_history(b.bg, b.tx, HOLDOUT_END, customer_id=1,
                                                    freq="W", ax=ax),
     {"lines": 2, "collections": 2, "legend": 3}),
    ("spend_density", lambda b, ax: P.plot_spend_density(b.gg, b.split, bins=20, ax=ax),
     {"patches": 20, "lines": 3, "collections": 1}),
    ("predictive_check",
     lambda b, ax: P.plot_posterior_predictive_histogram(b.bg, b.split, n_replicates=50, ax=ax),
     {"patches": 8, "containers": 2}),
]


@needs_bayes
@pytest.mark.parametrize(("name", "draw", "expected"), BAYES_PLOTS,
                         ids=[c[0] for c in BAYES_PLOTS])
def test_bayesian_plots(bayes: SimpleNamespace, name: str,
                        draw: Callable[[SimpleNamespace, Any], Any],
                        expected: dict[str, int]) -> None:
    ax = draw(bayes, None)
    _check_axes(ax, expected)
    _, given = plt.subplots()
    assert draw(bayes, given) is given


@needs_bayes
def test_bayesian_diagnostics(bayes: SimpleNamespace, tmp_path: Path) -> None:
    axes = P.plot_trace(bayes.bg)
    assert axes.shape == (4, 2) and axes[0, 0].get_title() == "r"
    ranks = P.plot_trace(bayes.bg, ["r", "alpha"], kind="rank_bars")
    assert np.size(ranks) == 2

    axes = P.plot_prior_posterior(bayes.bg)
    assert len(axes) == 4
    assert [a.get_title().split("\n")[0] for a in axes] == ["r", "alpha", "a", "b"]
    assert all(len(a.lines) == 1 and len(a.patches) == 30 for a in axes)
    assert "LogNormal" in axes[0].get_title()
    hyper = P.plot_prior_posterior(bayes.hier)
    assert len(hyper) == 8 and hyper[0].get_title().startswith("mu_log_r")

    forest = P.plot_segment_forest(bayes.hier)
    assert len(forest) == 4 and forest[0].get_title() == "r"
    labels = [t.get_text() for t in forest[0].get_yticklabels()]
    assert sorted(labels) == ["even (n=150)", "odd (n=150)"]
    _, given = plt.subplots(1, 2)
    assert list(P.plot_segment_forest(bayes.hier, ["r", "a"], ax=given)) == list(given)
    with pytest.raises(TypeError, match="hierarchical"):
        P.plot_segment_forest(bayes.bg)

    fig = forest[0].figure
    fig.savefig(tmp_path / "forest.png", dpi=60)
    assert (tmp_path / "forest.png").stat().st_size > 5_000
