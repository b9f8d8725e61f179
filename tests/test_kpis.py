"""Business KPIs (clvmodels.kpis): hand-computed examples, CDNOW facts checked with plain
pandas, input validation and the caller's frame left untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvmodels import ValidationError, kpis, rfm_summary
from clvmodels.datasets import load_cdnow_transactions

YEAR = 365.25


# --------------------------------------------------------------------------------------
# a hand-checkable example
# --------------------------------------------------------------------------------------


@pytest.fixture
def shop() -> pd.DataFrame:
    """Four customers in 2024 (a leap year); the window is 2024-01-05 .. 2024-04-01.

    * A: Jan 5 ($10 + $5, one order), Feb 10 ($20), Apr 1 ($25) → 3 orders, $60
    * B: Jan 20 ($30) → 1 order, $30
    * C: Feb 3 ($8), Mar 15 ($12) → 2 orders, $20
    * D: Mar 31 ($30) → 1 order, $30

    7 orders, $140 → AOV $20. Inclusive days to Apr 1: A 88, B 73, C 59, D 2 (total 222).
    First→last spans: A 87 days, C 41 days, B and D 0.
    Months active: Jan {A, B}, Feb {A, C}, Mar {C, D}, Apr {A}.
    """
    return pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "C", "C", "D"],
            "date": pd.to_datetime(
                ["2024-01-05", "2024-01-05", "2024-02-10", "2024-04-01", "2024-01-20",
                 "2024-02-03", "2024-03-15", "2024-03-31"]
            ),
            "amount": [10.0, 5.0, 20.0, 25.0, 30.0, 8.0, 12.0, 30.0],
        }
    )


def test_average_order_value_merges_same_day_purchases(shop: pd.DataFrame) -> None:
    # 7 orders (A's two Jan 5 purchases are one order), $140
    assert kpis.average_order_value(shop) == pytest.approx(140 / 7)
    per = kpis.average_order_value(shop, per_customer=True)
    assert per.index.name == "customer_id"
    assert per.to_dict() == pytest.approx({"A": 20.0, "B": 30.0, "C": 10.0, "D": 30.0})


def test_purchase_frequency_overall_and_per_customer(shop: pd.DataFrame) -> None:
    # overall: orders per customer-year actually observed (inclusive days from each first
    # purchase to Apr 1), never floored -- with a floor of one year the 88-day window made
    # "per year" equal "per customer" (issue 9)
    for floor in (1.0, 0.0):
        overall = kpis.purchase_frequency(shop, min_exposure_years=floor)
        assert overall["customers"] == 4
        assert overall["orders"] == 7
        assert overall["orders_per_customer"] == pytest.approx(1.75)
        assert overall["exposure_years"] == pytest.approx(222 / YEAR)
        assert overall["orders_per_year"] == pytest.approx(7 / (222 / YEAR))
    assert overall["orders_per_year"] > 5 * overall["orders_per_customer"]

    # per customer, the default floor of one year: every exposure here is shorter, so each
    # customer's "annual" rate is their orders so far
    per = kpis.purchase_frequency(shop, per_customer=True)
    assert per["exposure_years"].tolist() == [1.0] * 4
    assert per["orders_per_year"].to_dict() == {"A": 3, "B": 1, "C": 2, "D": 1}
    # no floor: exposure = inclusive days from first purchase to Apr 1
    per = kpis.purchase_frequency(shop, per_customer=True, min_exposure_years=0)
    assert per["orders"].to_dict() == {"A": 3, "B": 1, "C": 2, "D": 1}
    expected_days = {"A": 88, "B": 73, "C": 59, "D": 2}
    for cid, days in expected_days.items():
        assert per.loc[cid, "exposure_years"] == pytest.approx(days / YEAR)
        assert per.loc[cid, "orders_per_year"] == pytest.approx(
            per.loc[cid, "orders"] / (days / YEAR)
        )


def test_repeat_rate(shop: pd.DataFrame) -> None:
    assert kpis.repeat_rate(shop) == pytest.approx(0.5)  # A and C
    one_day = shop.assign(date=pd.Timestamp("2024-01-05"))  # every purchase on one day
    assert kpis.repeat_rate(one_day) == 0.0


def test_retention_table_by_month(shop: pd.DataFrame) -> None:
    table = kpis.retention_table(shop, period="M")
    assert list(table.index.astype(str)) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert isinstance(table.index, pd.PeriodIndex)
    assert table["active_customers"].tolist() == [2, 2, 2, 1]
    assert table["new_customers"].tolist() == [2, 1, 1, 0]
    assert table["retained_customers"].tolist() == [0, 1, 1, 0]  # A in Feb, C in Mar
    assert table["returning_customers"].tolist() == [0, 0, 0, 1]  # A comes back in Apr
    np.testing.assert_allclose(table["retention_rate"], [np.nan, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(table["churn_rate"], [np.nan, 0.5, 0.5, 1.0])
    # the window starts on Jan 5 and ends on Apr 1
    assert table["complete_period"].tolist() == [False, True, True, False]


def test_retention_table_by_quarter_and_quiet_periods(shop: pd.DataFrame) -> None:
    q = kpis.retention_table(shop, period="Q")
    assert q["active_customers"].tolist() == [4, 1]
    assert q["retained_customers"].tolist() == [0, 1]
    assert q["retention_rate"].iloc[1] == pytest.approx(0.25)

    gap = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "date": ["2024-01-10", "2024-03-10", "2024-01-20"],
            "amount": [1.0, 1.0, 1.0],
        }
    )
    table = kpis.retention_table(gap)
    assert table["active_customers"].tolist() == [2, 0, 1]  # February is quiet but listed
    assert table["returning_customers"].tolist() == [0, 0, 1]
    np.testing.assert_allclose(table["retention_rate"], [np.nan, 0.0, np.nan])


def test_cohort_retention(shop: pd.DataFrame) -> None:
    shares = kpis.cohort_retention(shop, period="M")
    assert list(shares.index.astype(str)) == ["2024-01", "2024-02", "2024-03"]
    assert list(shares.columns) == [0, 1, 2, 3]
    expected = np.array(
        [
            [1.0, 0.5, 0.0, 0.5],  # Jan cohort {A, B}: A in Feb and Apr
            [1.0, 1.0, 0.0, np.nan],  # Feb cohort {C}: C in Mar; Apr+1 not observed
            [1.0, 0.0, np.nan, np.nan],  # Mar cohort {D}
        ]
    )
    np.testing.assert_allclose(shares.to_numpy(), expected)
    counts = kpis.cohort_retention(shop, period="M", normalize=False)
    np.testing.assert_allclose(counts[0].to_numpy(), [2, 1, 1])
    np.testing.assert_allclose(counts.iloc[0].to_numpy(), [2, 1, 0, 1])


def test_average_customer_lifespan(shop: pd.DataFrame) -> None:
    # monthly churn 0.5, 0.5, 1 → mean 2/3 → 1.5 months → 0.125 years
    assert kpis.average_customer_lifespan(shop, period="M") == pytest.approx(1.5 / 12)
    # quarterly churn 3/4 → 4/3 quarters → 1/3 year
    assert kpis.average_customer_lifespan(shop, period="Q") == pytest.approx(1 / 3)
    # observed spans 87, 0, 41, 0 days
    assert kpis.average_customer_lifespan(shop, method="span") == pytest.approx(32 / YEAR)
    # a single calendar year: no annual churn rate
    with pytest.warns(RuntimeWarning, match="single"):
        assert np.isnan(kpis.average_customer_lifespan(shop, period="Y"))
    # nobody ever churns → infinite lifespan
    loyal = pd.DataFrame(
        {"customer_id": [1, 1], "date": ["2024-01-01", "2024-02-01"], "amount": [1.0, 1.0]}
    )
    assert kpis.average_customer_lifespan(loyal, period="M") == np.inf
    with pytest.raises(ValueError, match="method"):
        kpis.average_customer_lifespan(shop, method="mean")  # type: ignore[arg-type]


def test_historic_clv(shop: pd.DataFrame) -> None:
    # overall: AOV 20 x 7 orders / (222 / 365.25) customer-years x 2 years x 0.5 margin
    assert kpis.historic_clv(shop, lifespan=2.0, margin=0.5) == pytest.approx(
        20 * 7 / (222 / YEAR) * 2 * 0.5)
    # per customer, exposures floored at one year
    per = kpis.historic_clv(shop, per_customer=True, lifespan=2.0, margin=0.5)
    assert per.name == "historic_clv"
    # own AOV x own orders per (one) year x 2 x 0.5 = revenue
    assert per.to_dict() == pytest.approx({"A": 60.0, "B": 30.0, "C": 20.0, "D": 30.0})

    # no floor, lifespan from quarterly churn (1/3 year)
    overall = kpis.historic_clv(shop, lifespan_period="Q", min_exposure_years=0)
    assert overall == pytest.approx(140 / (222 / YEAR) / 3)
    per = kpis.historic_clv(shop, per_customer=True, lifespan_period="Q", min_exposure_years=0)
    assert per["A"] == pytest.approx(20 * 3 / (88 / YEAR) / 3)
    assert per["D"] == pytest.approx(30 * 1 / (2 / YEAR) / 3)

    with pytest.raises(ValueError, match="margin"):
        kpis.historic_clv(shop, margin=0)
    with pytest.raises(ValueError, match="lifespan"):
        kpis.historic_clv(shop, lifespan=-1.0)


def test_kpi_summary_hand_example(shop: pd.DataFrame) -> None:
    s = kpis.kpi_summary(shop, lifespan_period="Q", margin=0.5)
    v = s["value"]
    assert list(s.columns) == ["value", "unit", "definition"]
    assert v["customers"] == 4
    assert v["orders"] == 7
    assert v["revenue"] == pytest.approx(140.0)
    assert v["observation_years"] == pytest.approx(88 / YEAR)
    assert v["average_order_value"] == pytest.approx(20.0)
    assert v["orders_per_customer"] == pytest.approx(1.75)
    # orders per customer-year: 222 customer-days observed in all (no floor)
    assert v["customer_years"] == pytest.approx(222 / YEAR)
    assert v["purchase_frequency_per_year"] == pytest.approx(7 / (222 / YEAR))
    assert v["repeat_rate"] == pytest.approx(0.5)
    assert v["mean_monthly_retention"] == pytest.approx(1 / 3)
    assert v["mean_monthly_churn"] == pytest.approx(2 / 3)
    assert v["average_lifespan_years"] == pytest.approx(1 / 3)
    assert v["historic_clv"] == pytest.approx(20 * 7 / (222 / YEAR) / 3 * 0.5)
    assert "no floor" in s.loc["purchase_frequency_per_year", "definition"]
    assert s.attrs["first_day"] == "2024-01-05"
    assert s.attrs["last_day"] == "2024-04-01"


# --------------------------------------------------------------------------------------
# value tiers and CLV / CAC
# --------------------------------------------------------------------------------------


@pytest.fixture
def tier_values() -> pd.Series:
    """Ten customers; sorted by value then id: 3, 2, 4, 5, 6, 7, 8, 1, 9, 10."""
    values = [5.0, 90.0, 100.0, 90.0, 50.0, 50.0, 50.0, 50.0, 1.0, 0.0]
    return pd.Series(values, index=pd.Index(range(1, 11), name="customer_id"), name="clv")


def test_value_tiers_boundaries_and_ties(tier_values: pd.Series) -> None:
    labels, summary = kpis.value_tiers(tier_values)
    # ties at 90 and 50 are split by id: 2 before 4, 5 and 6 before 7 and 8
    assert labels.name == "tier"
    assert labels.to_dict() == {
        3: "top", 2: "top",
        4: "middle", 5: "middle", 6: "middle",
        7: "low", 8: "low", 1: "low", 9: "low", 10: "low",
    }
    assert labels.cat.ordered
    assert list(labels.cat.categories) == ["low", "middle", "top"]
    assert (labels > "middle").sum() == 2

    assert list(summary.index) == ["top", "middle", "low"]
    assert summary["customers"].tolist() == [2, 3, 5]
    np.testing.assert_allclose(summary["share_of_customers"], [0.2, 0.3, 0.5])
    np.testing.assert_allclose(summary["total_value"], [190.0, 190.0, 106.0])
    np.testing.assert_allclose(summary["share_of_value"], np.array([190, 190, 106]) / 486)
    np.testing.assert_allclose(summary["mean_value"], [95.0, 190 / 3, 21.2])
    np.testing.assert_allclose(summary["min_value"], [90.0, 50.0, 0.0])
    np.testing.assert_allclose(summary["max_value"], [100.0, 90.0, 50.0])
    assert summary["share_of_customers"].sum() == pytest.approx(1.0)
    assert summary["share_of_value"].sum() == pytest.approx(1.0)


def test_value_tiers_deterministic_under_reordering(tier_values: pd.Series) -> None:
    labels = kpis.value_tiers(tier_values).labels
    shuffled = tier_values.sample(frac=1.0, random_state=3)
    again = kpis.value_tiers(shuffled).labels
    pd.testing.assert_series_equal(again.sort_index(), labels.sort_index())
    assert again.index.equals(shuffled.index)  # labels keep the caller's order


def test_value_tiers_custom_tiers_and_rounding() -> None:
    values = pd.Series([5.0, 4.0, 3.0, 2.0, 1.0], index=list("abcde"))
    labels, summary = kpis.value_tiers(values, tiers=(("high", 0.5), ("rest", 0.5)))
    # 2.5 customers rounds up to 3
    assert summary["customers"].tolist() == [3, 2]
    assert labels.tolist() == ["high", "high", "high", "rest", "rest"]
    # one customer: cumulative boundaries round(0.2) = 0, round(0.5) = 1, so the top tier is
    # empty and the customer is "middle"; empty tiers get 0 customers and NaN statistics
    one = pd.Series([1.0], index=["x"])
    labels, summary = kpis.value_tiers(one)
    assert labels.tolist() == ["middle"]
    assert summary["customers"].tolist() == [0, 1, 0]
    assert summary[["mean_value", "min_value", "max_value"]].loc[["top", "low"]].isna().all().all()


def test_value_tiers_validation(tier_values: pd.Series) -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        kpis.value_tiers(tier_values, tiers=(("a", 0.5), ("b", 0.4)))
    with pytest.raises(ValueError, match="> 0"):
        kpis.value_tiers(tier_values, tiers=(("a", 1.2), ("b", -0.2)))
    with pytest.raises(ValueError, match="unique"):
        kpis.value_tiers(tier_values, tiers=(("a", 0.5), ("a", 0.5)))
    with pytest.raises(ValidationError, match="'clv'"):
        kpis.value_tiers(tier_values.where(tier_values > 1))  # NaN values
    with pytest.raises(ValidationError, match="not unique"):
        kpis.value_tiers(pd.Series([1.0, 2.0], index=[1, 1]))
    with pytest.raises(ValidationError, match="no customers"):
        kpis.value_tiers(pd.Series([], dtype=float))
    with pytest.raises(TypeError):
        kpis.value_tiers([1.0, 2.0])  # type: ignore[arg-type]


def test_clv_to_cac() -> None:
    assert kpis.clv_to_cac(300.0, 100) == pytest.approx(3.0)
    clv = pd.Series([300.0, 50.0, 0.0], index=pd.Index(["a", "b", "c"], name="customer_id"))
    ratio = kpis.clv_to_cac(clv, 50.0)
    assert ratio.name == "clv_to_cac"
    assert ratio.tolist() == pytest.approx([6.0, 1.0, 0.0])
    assert kpis.clv_to_cac(100.0, pd.Series([50.0, 25.0], index=["x", "y"])).tolist() == [2, 4]
    # aligned on customer id, in clv's order
    cost = pd.Series([10.0, 100.0, 25.0], index=["c", "a", "b"])
    ratio = kpis.clv_to_cac(clv, cost)
    assert ratio.index.tolist() == ["a", "b", "c"]
    assert ratio.tolist() == pytest.approx([3.0, 2.0, 0.0])


def test_clv_to_cac_errors() -> None:
    clv = pd.Series([300.0, 50.0], index=["a", "b"])
    with pytest.raises(ValidationError, match=r"only in clv.*'b'.*only in acquisition_cost.*'z'"):
        kpis.clv_to_cac(clv, pd.Series([1.0, 1.0], index=["a", "z"]))
    with pytest.raises(ValidationError, match="acquisition_cost"):
        kpis.clv_to_cac(clv, pd.Series([1.0, 0.0], index=["a", "b"]))
    with pytest.raises(ValidationError, match="acquisition_cost"):
        kpis.clv_to_cac(clv, -5.0)
    with pytest.raises(ValidationError, match="acquisition_cost"):
        kpis.clv_to_cac(100.0, 0)
    with pytest.raises(ValidationError, match="'clv'"):
        kpis.clv_to_cac(pd.Series([np.nan], index=["a"], name="clv"), 1.0)
    with pytest.raises(ValidationError, match="not unique"):
        kpis.clv_to_cac(pd.Series([1.0, 2.0], index=["a", "a"]), 1.0)
    with pytest.raises(TypeError):
        kpis.clv_to_cac("100", 1.0)  # type: ignore[call-overload]


# --------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------


ALL_KPIS = [
    lambda t, **kw: kpis.average_order_value(t, **kw),
    lambda t, **kw: kpis.average_order_value(t, per_customer=True, **kw),
    lambda t, **kw: kpis.purchase_frequency(t, **kw),
    lambda t, **kw: kpis.purchase_frequency(t, per_customer=True, **kw),
    lambda t, **kw: kpis.repeat_rate(t, **kw),
    lambda t, **kw: kpis.retention_table(t, **kw),
    lambda t, **kw: kpis.cohort_retention(t, **kw),
    lambda t, **kw: kpis.average_customer_lifespan(t, period="M", **kw),
    lambda t, **kw: kpis.historic_clv(t, lifespan=1.0, **kw),
    lambda t, **kw: kpis.historic_clv(t, per_customer=True, lifespan_period="M", **kw),
    lambda t, **kw: kpis.kpi_summary(t, lifespan_period="M", **kw),
]


def test_callers_frame_is_not_mutated(shop: pd.DataFrame) -> None:
    raw = shop.assign(date=shop["date"].dt.strftime("%Y-%m-%d"))  # strings to be parsed
    raw.index = pd.Index([10, 11, 12, 13, 14, 15, 16, 17], name="row")
    before = raw.copy(deep=True)
    for kpi in ALL_KPIS:
        kpi(raw)
        pd.testing.assert_frame_equal(raw, before)


def test_custom_column_names_and_string_dates(shop: pd.DataFrame) -> None:
    renamed = shop.rename(columns={"customer_id": "who", "date": "when", "amount": "paid"})
    renamed["when"] = renamed["when"].dt.strftime("%d %b %Y")
    keywords = {"customer_id_col": "who", "datetime_col": "when", "monetary_value_col": "paid"}
    assert kpis.average_order_value(renamed, **keywords) == pytest.approx(20.0)
    per = kpis.historic_clv(renamed, per_customer=True, lifespan=1.0, **keywords)
    assert per.index.name == "who"


def test_file_input(shop: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "tx.csv"
    shop.to_csv(path, index=False)
    assert kpis.repeat_rate(path) == pytest.approx(0.5)


def test_counts_without_amounts(shop: pd.DataFrame) -> None:
    no_amounts = shop.drop(columns="amount")
    assert kpis.repeat_rate(no_amounts, monetary_value_col=None) == pytest.approx(0.5)
    table = kpis.retention_table(no_amounts, monetary_value_col=None)
    assert table["active_customers"].tolist() == [2, 2, 2, 1]
    with pytest.raises(ValueError, match="monetary_value_col"):
        kpis.average_order_value(no_amounts, monetary_value_col=None)  # type: ignore[call-overload]


@pytest.mark.parametrize("kpi", ALL_KPIS)
def test_bad_input_raises_validation_error_naming_the_column(
    kpi, shop: pd.DataFrame
) -> None:
    with pytest.raises(ValidationError, match=r"missing column.*'amount'"):
        kpi(shop.drop(columns="amount"))
    bad_amount = shop.astype({"amount": object})
    bad_amount.loc[2, "amount"] = "twenty"
    with pytest.raises(ValidationError, match=r"column 'amount'.*not numbers"):
        kpi(bad_amount)
    bad_date = shop.astype({"date": object})
    bad_date.loc[3, "date"] = "not a date"
    with pytest.raises(ValidationError, match="column 'date'"):
        kpi(bad_date)
    no_id = shop.astype({"customer_id": object})
    no_id.loc[0, "customer_id"] = None
    with pytest.raises(ValidationError, match="column 'customer_id'"):
        kpi(no_id)
    with pytest.raises(ValidationError, match=r"column 'amount'.*negative"):
        kpi(shop.assign(amount=-shop["amount"]))
    with pytest.raises(ValidationError, match="empty"):
        kpi(shop.iloc[:0])


def test_negative_amounts_can_be_dropped(shop: pd.DataFrame) -> None:
    refunds = pd.concat(
        [shop, pd.DataFrame({"customer_id": ["B"], "date": [pd.Timestamp("2024-02-01")],
                             "amount": [-30.0]})],
        ignore_index=True,
    )
    assert kpis.average_order_value(refunds, negative_amounts="drop") == pytest.approx(20.0)


def test_bad_period_and_arguments(shop: pd.DataFrame) -> None:
    for period in ["ME", "month", "2M"]:
        with pytest.raises(ValueError, match="period"):
            kpis.retention_table(shop, period=period)
    with pytest.raises(ValueError, match="period"):
        kpis.cohort_retention(shop, period="bogus")
    with pytest.raises(ValueError, match="min_exposure_years"):
        kpis.purchase_frequency(shop, min_exposure_years=-1)
    with pytest.raises(ValueError, match="margin"):
        kpis.kpi_summary(shop, margin=1.5)


# --------------------------------------------------------------------------------------
# CDNOW: facts checked independently with plain pandas
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_transactions(sample=True)


@pytest.fixture(scope="module")
def cdnow_orders(cdnow: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and purchase day, amounts summed (plain pandas)."""
    return cdnow.groupby(["customer_id", "date"], as_index=False)["amount"].sum()


def test_cdnow_headline_counts(cdnow: pd.DataFrame, cdnow_orders: pd.DataFrame) -> None:
    s = kpis.kpi_summary(cdnow)["value"]
    assert s["customers"] == cdnow["customer_id"].nunique() == 2357
    assert s["orders"] == len(cdnow_orders) == 6696
    assert s["revenue"] == pytest.approx(cdnow["amount"].sum())
    assert s["average_order_value"] == pytest.approx(cdnow["amount"].sum() / len(cdnow_orders))
    days_per_customer = cdnow.groupby("customer_id")["date"].nunique()
    assert s["repeat_rate"] == pytest.approx((days_per_customer > 1).mean())
    # the same facts through the RFM summary: orders = repeat transactions + 1
    rfm = rfm_summary(cdnow, time_unit="D")
    assert s["orders"] == (rfm["frequency"] + 1).sum()
    assert s["repeat_rate"] == pytest.approx((rfm["frequency"] > 0).mean())


def test_frequency_per_year_over_a_window_shorter_than_a_year(cdnow: pd.DataFrame) -> None:
    """The comparison report's KPIs come from the 39-week calibration period: every customer
    is observed for less than a year, so a floored exposure made "purchase frequency per
    year" equal "orders per customer" (issue 9). It is orders per customer-year observed."""
    calib = cdnow.loc[cdnow["date"] <= "1997-09-30"]
    s = kpis.kpi_summary(calib, lifespan_period="M")["value"]  # no whole year to churn over
    orders = calib.groupby(["customer_id", "date"]).size().groupby("customer_id").size()
    first = calib.groupby("customer_id")["date"].min()
    days = (calib["date"].max() - first).dt.days + 1
    assert days.max() < YEAR  # the case: nobody is observed for a year
    assert s["customer_years"] == pytest.approx(days.sum() / YEAR)
    assert s["purchase_frequency_per_year"] == pytest.approx(orders.sum() / (days.sum() / YEAR))
    assert s["orders_per_customer"] == pytest.approx(orders.sum() / len(orders))
    # per year exceeds per customer by the mean exposure (< 1 year), far beyond rounding
    ratio = s["purchase_frequency_per_year"] / s["orders_per_customer"]
    assert ratio == pytest.approx(YEAR / days.mean()) and ratio > 1.3
    assert s["historic_clv"] == pytest.approx(
        s["average_order_value"] * s["purchase_frequency_per_year"] * s["average_lifespan_years"])


def test_cdnow_per_customer_values(cdnow: pd.DataFrame, cdnow_orders: pd.DataFrame) -> None:
    g = cdnow_orders.groupby("customer_id")
    aov = kpis.average_order_value(cdnow, per_customer=True)
    pd.testing.assert_series_equal(
        aov, (g["amount"].sum() / g.size()).rename("average_order_value")
    )
    end = cdnow["date"].max()
    exposure = ((end - g["date"].min()).dt.days + 1) / YEAR  # all > 1 year in CDNOW
    freq = kpis.purchase_frequency(cdnow, per_customer=True)
    np.testing.assert_allclose(freq["orders_per_year"], g.size() / exposure)
    lifespan = kpis.average_customer_lifespan(cdnow)
    clv = kpis.historic_clv(cdnow, per_customer=True)
    np.testing.assert_allclose(clv, g["amount"].sum() / exposure * lifespan)
    assert clv.index.equals(aov.index)
    overall = kpis.historic_clv(cdnow)
    assert overall == pytest.approx(cdnow["amount"].sum() / exposure.sum() * lifespan)


def test_cdnow_retention_matches_plain_pandas(
    cdnow: pd.DataFrame, cdnow_orders: pd.DataFrame
) -> None:
    active = cdnow_orders.assign(month=cdnow_orders["date"].dt.to_period("M"))[
        ["customer_id", "month"]
    ].drop_duplicates()
    shifted = active.assign(month=active["month"] + 1)
    retained = active.merge(shifted, on=["customer_id", "month"]).groupby("month").size()
    n_active = active.groupby("month").size()
    table = kpis.retention_table(cdnow)
    assert len(table) == 18  # Jan 1997 .. Jun 1998
    pd.testing.assert_series_equal(
        table["active_customers"], n_active, check_names=False, check_index_type=False
    )
    expected_rate = (retained.reindex(n_active.index, fill_value=0) / n_active.shift(1))
    np.testing.assert_allclose(table["retention_rate"], expected_rate)
    np.testing.assert_allclose(table["churn_rate"], 1 - expected_rate)
    first_month = active.groupby("customer_id")["month"].min()
    # CDNOW's cohort was acquired in the first quarter of 1997
    assert table["new_customers"].sum() == 2357
    assert table.loc["1997-01":"1997-03", "new_customers"].tolist() == (
        first_month.value_counts().sort_index().tolist()
    )
    assert (table["active_customers"] == table[
        ["new_customers", "retained_customers", "returning_customers"]
    ].sum(axis=1)).all()
    summary = kpis.kpi_summary(cdnow)["value"]
    assert summary["mean_monthly_retention"] == pytest.approx(expected_rate.mean())

    # cohorts: month of first purchase; cell = share of the cohort active k months later
    cohorts = kpis.cohort_retention(cdnow)
    assert list(cohorts.index.astype(str)) == ["1997-01", "1997-02", "1997-03"]
    assert (cohorts[0] == 1.0).all()
    jan = first_month[first_month == pd.Period("1997-01", "M")].index
    in_june = active.loc[active["month"] == pd.Period("1997-06", "M"), "customer_id"]
    assert cohorts.loc["1997-01", 5] == pytest.approx(jan.isin(in_june).mean())
    assert np.isnan(cohorts.loc["1997-03", 17])  # beyond June 1998
    assert cohorts.loc["1997-01", 17] >= 0  # June 1998 is observed for January


def test_cdnow_lifespan_definitions(cdnow: pd.DataFrame, cdnow_orders: pd.DataFrame) -> None:
    # annual: 515 of the 2357 customers of 1997 bought again in 1998
    by_year = cdnow_orders.assign(year=cdnow_orders["date"].dt.year)
    in_1998 = by_year.loc[by_year["year"] == 1998, "customer_id"].nunique()
    annual_churn = 1 - in_1998 / 2357
    assert kpis.average_customer_lifespan(cdnow) == pytest.approx(1 / annual_churn)
    g = cdnow_orders.groupby("customer_id")["date"]
    span = ((g.max() - g.min()).dt.days / YEAR).mean()
    assert kpis.average_customer_lifespan(cdnow, method="span") == pytest.approx(span)


def test_cdnow_value_tiers(cdnow: pd.DataFrame) -> None:
    clv = kpis.historic_clv(cdnow, per_customer=True)
    labels, summary = kpis.value_tiers(clv)
    counts = labels.value_counts()
    # boundaries at n x cumulative share, halves rounded up: 471.4 → 471, 1178.5 → 1179
    assert counts["top"] == 471
    assert counts["top"] + counts["middle"] == 1179
    assert counts.sum() == 2357
    assert summary["total_value"].sum() == pytest.approx(clv.sum())
    assert summary["share_of_value"].sum() == pytest.approx(1.0)
    # every top customer is worth at least every middle one, and so on down
    assert clv[labels == "top"].min() >= clv[labels == "middle"].max()
    assert clv[labels == "middle"].min() >= clv[labels == "low"].max()
    # the top fifth holds far more than a fifth of the value
    assert summary.loc["top", "share_of_value"] > 0.5


def test_no_warnings_on_cdnow(cdnow: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kpis.kpi_summary(cdnow)
        kpis.cohort_retention(cdnow, period="Q")
