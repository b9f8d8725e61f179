"""Bayesian and hierarchical models from the command line: ``fit --method bayes
--segment-col``, ``forecast --method bayes``, ``compare`` with a Bayesian model and
``--strict``, and ``score`` with the saved hierarchical model.

Samples are tiny (200 customers, 2 chains of at most 60 draws): these tests check the
command line, not the posteriors (tests/test_bayes*.py do). Compiling the models is most of
the time, so every Bayesian fit here is fitted on the same calibration data (the RFM summary
to ``CAL``, which is also what ``compare --calibration-end CAL`` fits on, with the same three
channels): one hierarchical structure and one flat structure are compiled, once each, and
every other fit reuses the compiled sampler (:mod:`clvmodels.models.compiled`, keyed on the
model's structure: family, priors, segments, covariate layout).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import clvmodels as cm
from clvmodels.cli import EXIT_BAD_INPUT, app
from clvmodels.cli._app import EXIT_CONVERGENCE
from clvmodels.datasets import DATASETS

runner = CliRunner()
CAL = "1997-06-30"  # every Bayesian fit's data: the summary to this day
OBS_END = "1997-09-30"
TINY = ["--draws", "60", "--tune", "60", "--chains", "2"]
PROBLEMS = ("R-hat", "effective sample size", "divergent")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bayes")
    tx = DATASETS["cdnow"][1]()
    ids = tx["customer_id"].unique()[:200]
    tx = tx[tx["customer_id"].isin(ids)].reset_index(drop=True)
    channels = pd.DataFrame({"customer_id": ids,
                             "channel": np.resize(["web", "shop", "app"], len(ids))})
    channels.to_csv(d / "customers.csv", index=False)
    odd = channels.copy()
    odd.loc[0, "channel"] = "phone"  # a segment the model never saw
    odd.to_csv(d / "customers_odd.csv", index=False)
    tx.merge(channels, on="customer_id").to_csv(d / "tx.csv", index=False)
    cm.rfm_summary(tx, time_unit="W", observation_end=CAL).to_parquet(d / "rfm.parquet")
    return {p.name: p for p in d.iterdir()}


def _problem_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(p in line for p in PROBLEMS)]


@pytest.fixture(scope="module")
def hierarchical(data: dict[str, Path]) -> tuple[object, Path]:
    """``fit --method bayes --segment-col channel`` (the segments from --customers)."""
    out = data["rfm.parquet"].parent / "hier.nc"
    result = runner.invoke(app, [
        "fit", str(data["rfm.parquet"]), "--model", "bgnbd", "--method", "bayes",
        "--segment-col", "channel", "--customers", str(data["customers.csv"]), *TINY,
        "--seed", "1", "--target-accept", "0.9", "--out", str(out)])
    return result, out


def test_fit_method_bayes_hierarchical(hierarchical: tuple[object, Path]) -> None:
    result, out = hierarchical
    assert result.exit_code == 0, result.output
    model = cm.load_model(out)
    assert type(model) is cm.BayesianBetaGeo
    assert model.segment_col == "channel" and model.hierarchical
    assert sorted(map(str, model.segment_labels_)) == ["app", "shop", "web"]
    assert model.time_unit_ == "W" and model.n_customers_ == 200
    assert model.n_draws == 120
    assert "bayes-bgnbd" in result.stdout and "R-hat" in result.stdout  # the parameter table
    # each sampling problem (if any, at these sizes) is one warning line of its own
    for line in _problem_lines(result.stderr):
        assert line.startswith("Warning: bayes-bgnbd: "), line
        assert sum(p in line for p in PROBLEMS) == 1, line
    assert "Traceback" not in result.output


def test_score_with_the_hierarchical_model(data: dict[str, Path],
                                           hierarchical: tuple[object, Path],
                                           tmp_path: Path) -> None:
    _, model = hierarchical

    def score(out: str, *extra: str) -> tuple[object, Path]:
        target = tmp_path / out
        result = runner.invoke(app, ["score", str(model), str(data["tx.csv"]), "--out",
                                     str(target), "--observation-end", OBS_END,
                                     "--interval", "0.8", *extra])
        return result, target

    # the segments from the attribute table
    ok, out = score("ok.parquet", "--customers", str(data["customers.csv"]))
    assert ok.exit_code == 0, ok.output
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["customer_id", "frequency", "recency", "T",
                                    "expected_purchases", "probability_alive", "clv",
                                    "clv_lower", "clv_upper", "value_tier"]
    assert (scored["clv_lower"] <= scored["clv"]).all()
    assert (scored["clv"] <= scored["clv_upper"]).all()
    # ... or from each customer's first transaction (tx.csv carries the channel too)
    from_tx, out_tx = score("tx.parquet")
    assert from_tx.exit_code == 0, from_tx.output
    pd.testing.assert_frame_equal(pd.read_parquet(out_tx), scored)
    # a segment the model never saw is refused, naming it; nothing written
    unseen, out_unseen = score("unseen.parquet", "--customers",
                               str(data["customers_odd.csv"]))
    assert unseen.exit_code == EXIT_BAD_INPUT, unseen.output
    assert "phone" in unseen.stderr and "Traceback" not in unseen.output
    assert not out_unseen.exists()


def test_score_refuses_data_without_the_segment_column(data: dict[str, Path],
                                                       hierarchical: tuple[object, Path],
                                                       tmp_path: Path) -> None:
    _, model = hierarchical
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", str(model), str(data["rfm.parquet"]), "--out",
                                 str(out)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "'channel'" in result.stderr and result.stderr.count("Error:") == 1
    assert not out.exists()


def test_forecast_method_bayes_writes_means_and_intervals(data: dict[str, Path],
                                                          tmp_path: Path) -> None:
    out = tmp_path / "forecast.parquet"
    result = runner.invoke(app, [
        "forecast", str(data["tx.csv"]), "--model", "bgnbd", "--method", "bayes", *TINY,
        "--seed", "2", "--observation-end", CAL, "--margin", "0.3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fc = pd.read_parquet(out)
    for col in ("expected_purchases", "probability_alive", "clv", "clv_lower", "clv_upper"):
        assert np.isfinite(fc[col].to_numpy(dtype=float)).all(), col
    assert (fc["clv_lower"] <= fc["clv"]).all() and (fc["clv"] <= fc["clv_upper"]).all()
    assert (fc["clv_upper"] > fc["clv_lower"]).any()
    for line in _problem_lines(result.stderr):
        assert line.startswith("Warning: bayes-bgnbd: "), line


def _compare(data: dict[str, Path], out: Path, *options: str):
    """``compare --models bgnbd,bayes-bgnbd --segment-col channel`` calibrated to CAL: the
    Bayesian BG/NBD is hierarchical over the channel (read from the transactions), fitted on
    the data the ``hierarchical`` fixture was fitted on (its compiled sampler is reused)."""
    return runner.invoke(app, [
        "compare", str(data["tx.csv"]), "--models", "bgnbd,bayes-bgnbd", "--segment-col",
        "channel", "--calibration-end", CAL, "--observation-end", OBS_END, "--chains", "2",
        "--spend", "none", *options, "--out", str(out)])


def test_compare_bayesian_hierarchical_report(data: dict[str, Path],
                                              hierarchical: tuple[object, Path],
                                              tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _compare(data, out, "--draws", "60", "--tune", "60", "--seed", "5")
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert {"bgnbd", "bayes-bgnbd"} <= set(metrics.index)
    assert np.isfinite(metrics.loc["bayes-bgnbd", "mae"])
    assert "bayes-bgnbd" in result.stdout  # the printed metrics table
    # the report's per-segment table: the hierarchical model's rows, one per channel
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="segments">'):]
    section = section[:section.index("</section>")]
    rows = re.findall(r'<tr><td class="left">([^<]+)</td><td class="left">([^<]+)</td>',
                      section)
    assert {s for m, s in rows if m == "bayes-bgnbd"} == {"app", "shop", "web"}
    assert {s for m, s in rows if m == "bgnbd"} == {"app", "shop", "web"}
    for line in _problem_lines(result.stderr):  # warnings only, one line each
        assert line.startswith("Warning: bayes-bgnbd: "), line


def test_compare_strict_exits_2_and_writes_nothing(data: dict[str, Path],
                                                   hierarchical: tuple[object, Path],
                                                   tmp_path: Path) -> None:
    """20 draws after 5 tuning steps per chain cannot reach an ESS of 200 (nor, after so
    little tuning, mix): --strict refuses, one line per problem, nothing written."""
    out = tmp_path / "report"
    result = _compare(data, out, "--draws", "20", "--tune", "5", "--seed", "3", "--strict")
    assert result.exit_code == EXIT_CONVERGENCE, result.output
    lines = _problem_lines(result.stderr)
    warned = [line for line in lines if not line.startswith("Error:")]
    assert any("effective sample size" in line for line in warned), result.stderr
    for line in warned:  # one clear line per problem, naming the model
        assert line.startswith("Warning: bayes-bgnbd: "), line
        assert sum(p in line for p in PROBLEMS) == 1, line
    assert len(warned) == len(set(warned))
    assert result.stderr.count("Error: --strict") == 1 and "Traceback" not in result.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left


def test_fit_strict_exits_2_and_writes_nothing(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "models" / "bgnbd.nc"
    result = runner.invoke(app, [
        "fit", str(data["rfm.parquet"]), "--model", "bgnbd", "--method", "bayes", "--draws",
        "15", "--tune", "15", "--chains", "2", "--seed", "4", "--strict", "--out", str(out)])
    assert result.exit_code == EXIT_CONVERGENCE, result.output
    warned = [line for line in _problem_lines(result.stderr) if line.startswith("Warning:")]
    assert warned and all(line.startswith("Warning: bayes-bgnbd: ") for line in warned)
    assert result.stderr.count("Error: --strict") == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # not even the folder


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "bayes-bgnbd", "--method", "mle"], "is a Bayesian model"),
    (["--model", "bgnbd", "--segment-col", "channel"], "hierarchical models are Bayesian"),
    (["--model", "bgnbd", "--method", "bayes", "--target-accept", "1.5"],
     "--target-accept must be between 0 and 1"),
])
def test_bad_bayesian_options_exit_1_before_sampling(data: dict[str, Path], tmp_path: Path,
                                                     args: list[str], message: str) -> None:
    out = tmp_path / ("m.nc" if "bayes" in " ".join(args) else "m.json")
    result = runner.invoke(app, ["fit", str(data["rfm.parquet"]), *args, "--out", str(out)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.stderr and "Fitting" not in result.stderr
    assert not out.exists()


def test_method_bayes_refused_for_a_family_without_a_bayesian_twin(
        data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin is looked up in the registry (a Bayesian class whose ``_mle_class`` is the
    family's); every family has one now, so here none does."""
    from clvmodels.models import registry

    for name in registry.model_names(bayesian=True):
        monkeypatch.setattr(registry.get_model(name), "_mle_class", None)
    out = tmp_path / "m.nc"
    result = runner.invoke(app, ["fit", str(data["rfm.parquet"]), "--model", "pnbd",
                                 "--method", "bayes", "--out", str(out)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "pnbd has no Bayesian variant" in result.stderr and "Fitting" not in result.stderr
    assert not out.exists()
