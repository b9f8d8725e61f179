"""Subscription KPIs: hand-computed examples, F&H 2007's cohort, agreement with the sBG on
simulated data, and the naive LTV's bias (F&H 2010)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodels import subscription_kpis as k
from clvmodels._validation import ValidationError
from clvmodels.contract import contract_summary
from clvmodels.models import sbg


@pytest.fixture
def small() -> pd.DataFrame:
    """Six customers (monthly). Decisions seen: a left at 1; b none yet; c renewed at 1,
    left at 2; d renewed at 1, 2; e renewed at 1, 2, left at 3; f none yet."""
    frame = pd.DataFrame(
        {"periods": [1, 1, 2, 3, 3, 1],
         "churned": [True, False, True, False, True, False],
         "cohort": ["2024-01", "2024-01", "2024-01", "2024-02", "2024-02", "2024-03"]},
        index=pd.Index(list("abcdef"), name="customer_id"))
    frame.attrs["period"] = "M"
    return frame


def test_renewal_table_by_hand(small: pd.DataFrame) -> None:
    table = k.renewal_table(small)
    assert table.index.tolist() == [1, 2, 3] and table.index.name == "renewal"
    assert table["at_risk"].tolist() == [4, 3, 1]
    assert table["churned"].tolist() == [1, 1, 1]
    assert table["renewed"].tolist() == [3, 2, 0]
    np.testing.assert_allclose(table["retention_rate"], [3 / 4, 2 / 3, 0])
    np.testing.assert_allclose(table["churn_rate"], [1 / 4, 1 / 3, 1])
    np.testing.assert_allclose(table["survival"], [3 / 4, 1 / 2, 0])


def test_cohort_tables_by_hand(small: pd.DataFrame) -> None:
    long = k.renewal_table(small, by_cohort=True)
    assert long.index.names == ["cohort", "renewal"]
    assert long.loc[("2024-01", 1), "at_risk"] == 2 and long.loc[("2024-01", 1), "churned"] == 1
    assert long.loc[("2024-02", 3), "churned"] == 1
    wide = k.cohort_retention_matrix(small)
    expected = pd.DataFrame([[0.5, 0.0, np.nan], [1.0, 1.0, 0.0], [np.nan] * 3],
                            index=pd.Index(["2024-01", "2024-02", "2024-03"], name="cohort"),
                            columns=pd.Index([1, 2, 3], name="renewal"))
    pd.testing.assert_frame_equal(wide, expected, check_index_type=False)
    at_risk = k.cohort_retention_matrix(small, value="at_risk")
    assert at_risk.loc["2024-02"].tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="value must be"):
        k.cohort_retention_matrix(small, value="nope")


def test_pooled_rates_by_hand(small: pd.DataFrame) -> None:
    # 3 churns in 1 + 2 + 2 + 3 = 8 decisions
    assert k.churn_rate(small) == pytest.approx(3 / 8)
    assert k.retention_rate(small) == pytest.approx(5 / 8)
    by = k.churn_rate(small, by="cohort")
    np.testing.assert_allclose(by.to_numpy(), [2 / 3, 1 / 5, np.nan])
    assert by.index.tolist() == ["2024-01", "2024-02", "2024-03"]
    np.testing.assert_allclose(k.retention_rate(small, by="cohort").to_numpy()[:2],
                               [1 / 3, 4 / 5])
    first_period_only = small.assign(periods=1, churned=False)
    assert np.isnan(k.churn_rate(first_period_only))


def test_calendar_churn_table_by_hand(small: pd.DataFrame) -> None:
    table = k.calendar_churn_table(small)
    assert table.index.tolist() == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    assert table["paying"].tolist() == [3, 3, 3, 2, 0]
    assert table["new"].tolist() == [3, 2, 1, 0, 0]
    assert table["at_risk"].tolist() == [0, 2, 3, 2, 1]
    assert table["churned"].tolist() == [0, 1, 1, 0, 1]
    np.testing.assert_allclose(table["churn_rate"], [np.nan, 1 / 2, 1 / 3, 0, 1])
    # the decisions per calendar period add up to those per renewal
    assert table["at_risk"].sum() == k.renewal_table(small)["at_risk"].sum()


def test_calendar_table_from_subscriptions() -> None:
    subs = pd.DataFrame({
        "customer_id": [1, 2, 3, 4],
        "start": ["2023-12-31", "2024-01-15", "2024-01-20", "2024-02-29"],
        "end": ["2024-03-31", None, "2024-02-20", None],
    })
    summary = contract_summary(subs, observation_end="2024-04-10", period="M")
    # 1: paid Dec, Jan, Feb (Jan 31, Feb 29 renewals), left at the Mar 31 renewal (3 paid)
    # 2: Jan, Feb, Mar, Apr (Apr 15 > obs: 3 paid); 3: left at Feb 20; 4: Feb 29, Mar 29
    assert summary["periods"].tolist() == [3, 3, 1, 2]
    table = k.calendar_churn_table(summary)
    assert table.index.tolist() == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert table["paying"].tolist() == [1, 3, 3, 2]
    assert table["at_risk"].tolist() == [0, 1, 3, 3]
    assert table["churned"].tolist() == [0, 0, 1, 1]
    yearly = contract_summary(subs, observation_end="2026-04-10", period="Y")
    assert k.calendar_churn_table(yearly).index[0] == "2023"
    weekly = contract_summary(subs.iloc[:3], observation_end="2024-02-10", period="W")
    weeks = k.calendar_churn_table(weekly)
    assert weeks.index[0] == "2023-W52" and weeks["new"].sum() == 3
    daily = contract_summary(subs.iloc[:2], observation_end="2024-01-20", period="D")
    days = k.calendar_churn_table(daily)
    assert days.index[0] == "2023-12-31" and days["paying"].iloc[-1] == 2


def test_fh2007_cohort_survival_is_the_published_table() -> None:
    """F&H 2007's regular cohort as a contract summary: the Kaplan-Meier survival is the
    published % active, year by year (all 1,000 customers seen for 7 renewals)."""
    pct = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1]
    alive = np.round(np.asarray(pct) * 10).astype(int)
    lost = alive[:-1] - alive[1:]
    periods = np.r_[np.repeat(np.arange(1, 8), lost), np.full(alive[-1], 8)]
    churned = np.r_[np.ones(lost.sum(), bool), np.zeros(alive[-1], bool)]
    summary = pd.DataFrame({"periods": periods, "churned": churned})
    table = k.renewal_table(summary)
    np.testing.assert_allclose(100 * table["survival"], pct[1:], atol=1e-9)
    assert table["at_risk"].tolist() == alive[:-1].tolist()


def test_survival_matches_the_sbg_on_simulated_cohorts() -> None:
    a, b = 0.704, 1.182
    sim = sbg.simulate_sbg_cohorts([3000] * 8, alpha=a, beta=b, random_seed=9)
    table = k.renewal_table(sim)
    s = sbg.survival(a, b, table.index.to_numpy())
    se = np.sqrt(s * (1 - s) / table["at_risk"].to_numpy())
    assert np.all(np.abs(table["survival"].to_numpy() - s) < 4 * se + 1e-12)
    r = sbg.retention_rate(a, b, table.index.to_numpy())
    se_r = np.sqrt(r * (1 - r) / table["at_risk"].to_numpy())
    assert np.all(np.abs(table["retention_rate"].to_numpy() - r) < 4 * se_r)


def test_arpu(small: pd.DataFrame) -> None:
    # 11 customer-periods paid
    assert k.arpu(small, 110.0) == pytest.approx(10.0)
    revenue = pd.Series([10, 10, 30, 30, 30, 0], index=small.index, dtype=float)
    assert k.arpu(small, revenue) == pytest.approx(110 / 11)
    assert k.arpu(small.assign(rev=revenue), "rev") == pytest.approx(10.0)
    per = k.arpu(small, revenue.iloc[::-1], per_customer=True)  # aligned by customer
    np.testing.assert_allclose(per.to_numpy(), [10, 10, 15, 10, 10, 0])
    with pytest.raises(ValidationError, match="one value per customer"):
        k.arpu(small, revenue.iloc[:3])
    with pytest.raises(ValidationError, match="revenue"):
        k.arpu(small, revenue.where(revenue > 0, -1.0))
    with pytest.raises(ValueError, match="per_customer"):
        k.arpu(small, 5.0, per_customer=True)


def test_naive_ltv_by_hand(small: pd.DataFrame) -> None:
    # c = 3/8: 1/c = 8/3 payments
    assert k.naive_ltv(small, arpu=10.0) == pytest.approx(10 * 8 / 3)
    assert k.naive_ltv(arpu=10.0, churn=0.25, margin=0.4) == pytest.approx(0.4 * 10 * 4)
    # discounted: sum_t (1-c)^t / (1+d)^t = (1+d)/(d+c)
    c, d = 0.25, 0.01
    direct = sum((1 - c) ** t / (1 + d) ** t for t in range(5000))
    assert k.naive_ltv(arpu=1.0, churn=c, discount_rate=d) == pytest.approx(direct, rel=1e-12)
    per = k.naive_ltv(small, arpu=pd.Series(1.0, index=small.index) * 3, churn=0.5)
    assert per.name == "naive_ltv" and (per == 6.0).all()
    assert k.naive_ltv(arpu=5.0, churn=0.0) == np.inf
    with pytest.raises(ValueError, match="margin"):
        k.naive_ltv(arpu=5.0, churn=0.1, margin=1.5)
    with pytest.raises(ValueError, match="churn rate"):
        k.naive_ltv(arpu=5.0)
    with pytest.raises(ValueError, match="per customer needs"):
        k.naive_ltv(arpu="rev", churn=0.1)


def test_naive_ltv_understates_the_residual_value() -> None:
    """F&H 2010's point on F&H 2007's regular cohort after 7 years, d = 10%: the naive
    residual value of a survivor, (1+d)/(d+c) with the cohort's pooled churn c, is far below
    the sBG's DERL -- the survivors are the low-churn customers."""
    pct = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1]
    alive = np.round(np.asarray(pct) * 10).astype(int)
    lost = alive[:-1] - alive[1:]
    summary = pd.DataFrame({
        "periods": np.r_[np.repeat(np.arange(1, 8), lost), np.full(alive[-1], 8)],
        "churned": np.r_[np.ones(lost.sum(), bool), np.zeros(alive[-1], bool)]})
    c = k.churn_rate(summary)  # 759 churns in 1,671 + 241 x 7 = 3,358 decisions
    assert c == pytest.approx(759 / 3358)
    naive = k.naive_ltv(summary, arpu=1.0, discount_rate=0.1)
    derl = sbg.discounted_expected_residual_lifetime(0.704, 1.182, 8, False, 0.1)
    # DERL counts the payments after the next renewal decision; the naive value counts the
    # current one too -- compare like with like: (1 + d) / (d + c) - 1 future payments
    assert naive == pytest.approx(1.1 / (0.1 + c))
    assert derl > 2 * (naive - 1)


def test_ltv_to_cac() -> None:
    assert k.ltv_to_cac(300.0, 100.0) == pytest.approx(3.0)
    ltv = pd.Series([100.0, 50.0], index=["a", "b"])
    ratio = k.ltv_to_cac(ltv, pd.Series([50.0, 25.0], index=["b", "a"]))
    assert ratio.name == "ltv_to_cac" and ratio.tolist() == [4.0, 1.0]
    with pytest.raises(ValidationError, match="acquisition"):
        k.ltv_to_cac(100.0, 0.0)


def test_validation_and_no_mutation(small: pd.DataFrame) -> None:
    before = small.copy(deep=True)
    k.renewal_table(small, by_cohort=True)
    k.calendar_churn_table(small)
    k.arpu(small, 10.0)
    pd.testing.assert_frame_equal(small, before)
    with pytest.raises(ValidationError, match=r"missing column\(s\) \['churned'\]"):
        k.renewal_table(small.drop(columns="churned"))
    with pytest.raises(ValidationError, match="periods must be whole numbers >= 1"):
        k.churn_rate(small.assign(periods=[0, 1, 2, 3, 3, 1]))
    with pytest.raises(ValidationError, match="churned must be True/False"):
        k.churn_rate(small.assign(churned=["yes", "no", 1, 0, 1, 0]))
    assert k.churn_rate(small.assign(churned=small["churned"].astype(int))) == pytest.approx(
        3 / 8)
    with pytest.raises(ValidationError, match="missing column"):
        k.renewal_table(small.drop(columns="cohort"), by_cohort=True)
    with pytest.raises(ValidationError, match="not periods of type 'Y'"):
        k.calendar_churn_table(small, period="Y")
    no_attrs = small.copy()
    no_attrs.attrs = {}
    with pytest.raises(ValueError, match="period must be one of"):
        k.calendar_churn_table(no_attrs)
    with pytest.raises(ValidationError, match="empty"):
        k.renewal_table(small.iloc[:0])
