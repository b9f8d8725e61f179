"""The ``score`` command: value customers with a model saved earlier (fit once, score many
times). The work is in :mod:`clvmodels.cli.scoring`, which a scheduled run shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from clvmodels._io import check_output_path, frame_format, write_files
from clvmodels.cli._app import (
    NegativeAmounts,
    TimeUnit,
    app,
    command,
    plural,
    stderr,
    stdout,
    step,
)
from clvmodels.cli.commands import (
    Customers,
    CustomersId,
    DateFormat,
    DayFirst,
    ImplausibleDates,
    ImplausibleDatesOption,
    NegativeAmountsOption,
    StripIds,
    _customer_table,
    _horizon,
    _revenue,
    _supported,
    _write_frame,
)
from clvmodels.cli.scoring import (
    INPUT_LABELS,
    load_models,
    read_score_input,
    score_frame,
)
from clvmodels.cli.tables import forecast_overview
from clvmodels.models import registry

__all__ = ["score"]

_COLUMNS_HELP = (
    "Output columns (stable; see clvmodels.cli.scoring): customer_id; transaction models: "
    "frequency, recency, T [, monetary_value], expected_purchases, probability_alive "
    "[, expected_spend], clv; contractual models: periods, churned, expected_periods, "
    "probability_active, revenue_per_period, clv; Bayesian models add clv_lower, clv_upper "
    "(--interval); then value_tier. [...]: with --spend-model.")


@app.command(epilog=_COLUMNS_HELP)
def score(
    model_file: Annotated[Path, typer.Argument(
        help="A saved model: .json (maximum likelihood) or .nc (Bayesian), from `fit`.")],
    data: Annotated[Path, typer.Argument(
        help="Customers to score (CSV or Parquet): transactions, subscription records, or a "
             "summary (RFM, discrete or contract), told apart by their columns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .parquet or .csv.")],
    spend_model: Annotated[Path | None, typer.Option(
        "--spend-model", help="A saved spend model (Gamma-Gamma) for transaction models; "
                              "without it CLV counts purchases (x margin).")] = None,
    horizon: Annotated[str, typer.Option(
        "--horizon", help="How far ahead: 12M, 52W, 1Y ... (inf: the whole lifetime).")
    ] = "12M",
    discount_rate: Annotated[float, typer.Option(
        "--discount-rate", help="Annual discount rate, e.g. 0.10.")] = 0.10,
    margin: Annotated[float, typer.Option("--margin", help="Profit margin, 0..1.")] = 1.0,
    interval: Annotated[float, typer.Option(
        "--interval", help="Bayesian models: probability of the clv_lower / clv_upper "
                           "credible interval.")] = 0.9,
    period: Annotated[TimeUnit | None, typer.Option(
        "--period", help="Discounting period of transaction models (default M; BG/BB: one "
                         "opportunity).")] = None,
    observation_end: Annotated[str | None, typer.Option(
        "--observation-end", help="Raw data: the last day observed (YYYY-MM-DD), required; "
                                  "the scores are as of that day.")] = None,
    time_unit: Annotated[TimeUnit | None, typer.Option(
        "--time-unit", help="Time unit of a CSV summary (must be the model's; Parquet "
                            "summaries record it).")] = None,
    customer_id: Annotated[str, typer.Option("--customer-id", help="Customer id column.")
                           ] = "customer_id",
    date: Annotated[str, typer.Option("--date", help="Transaction date column.")] = "date",
    amount: Annotated[str, typer.Option("--amount", help="Transaction amount column.")
                      ] = "amount",
    start: Annotated[str, typer.Option(
        "--start", help="Subscriptions: start-date column.")] = "start",
    end: Annotated[str, typer.Option(
        "--end", help="Subscriptions: end-date column (empty while active).")] = "end",
    revenue_per_period: Annotated[str | None, typer.Option(
        "--revenue-per-period", help="Contractual models: revenue per period, a number or a "
                                     "column name.")] = None,
    negative_amounts: NegativeAmountsOption = NegativeAmounts.raise_,
    date_format: DateFormat = None,
    dayfirst: DayFirst = None,
    strip_ids: StripIds = False,
    implausible_dates: ImplausibleDatesOption = ImplausibleDates.raise_,
    customers: Customers = None,
    customers_id: CustomersId = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Summary input: column counting the identical customers each row "
                          "stands for (pre-aggregated rows); kept as 'weight', and totals and "
                          "value tiers count customers.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output.")
                     ] = False,
) -> None:
    """Score customers with a saved model: per-customer CLV without refitting.

    The data must be in the model's time unit (raw data are summarised in it, up to
    --observation-end) and carry the covariate and segment columns the model was fitted with
    (from the data, the --customers table or each customer's first transaction); anything
    else is refused with exit code 1 and nothing is written.
    """
    from clvmodels.rfm import read_transactions, rfm_summary

    console = stdout()
    with command():
        frame_format(out)
        check_output_path(out, force=force)
        with step(f"Loading {model_file}"):
            model, spend = load_models(model_file, spend_model)
        with step(f"Reading {data}"):
            frame = read_transactions(data)
        table, id_col = _customer_table(customers, customers_id, customer_id)
        summary_options = dict(
            negative_amounts=negative_amounts.value,
            **_supported(rfm_summary, date_format=date_format, dayfirst=dayfirst,
                         strip_ids=strip_ids or None,
                         implausible_dates=None if implausible_dates is
                         ImplausibleDates.raise_ else implausible_dates.value))
        rows, found, revenue = read_score_input(
            frame, model, spend, source=os.fspath(data), customer_id=customer_id, date=date,
            amount=amount, start=start, end=end,
            time_unit=time_unit.value if time_unit else None, observation_end=observation_end,
            customers=table, customers_id=id_col, summary_options=summary_options,
            revenue_per_period=_revenue(revenue_per_period))
        if weights is not None and found in ("transactions", "subscriptions"):
            raise ValueError(f"--weights applies to a summary file; {INPUT_LABELS[found]} "
                             "count each customer once")
        label = registry.label_of(model)
        what = plural(len(rows), "row" if weights else "customer")
        stderr().print(Text(f"Input: {INPUT_LABELS[found]} from {data}, {what}, time unit "
                            f"{rows.attrs.get('time_unit')}"))
        with step(f"Scoring {what} with {label}"):
            result = score_frame(model, spend, rows, horizon=_horizon(horizon),
                                 discount_rate=discount_rate, margin=margin,
                                 interval=interval,
                                 period=period.value if period else None, revenue=revenue,
                                 weights=weights)
        with step(f"Writing {out}"):
            write_files({out: lambda tmp: _write_frame(result, tmp, index=False)},
                        force=force)
    console.print(forecast_overview(_Overview(result, horizon, discount_rate, margin,
                                              spend is not None),
                                    weights=result["weight"] if weights else None))
    console.print(f"Wrote {plural(len(result), 'row' if weights else 'customer')} to {out}")


class _Overview:
    """What :func:`clvmodels.cli.tables.forecast_overview` reads, for a scored frame."""

    def __init__(self, scored: Any, horizon: str, rate: float, margin: float,
                 spend: bool) -> None:
        self.forecast = scored.set_index("customer_id")
        attrs = scored.attrs
        self.settings = {"horizon": horizon, "horizon_units": attrs.get("horizon"),
                         "time_unit": attrs.get("time_unit", ""), "discount_rate": rate,
                         "margin": margin, "spend": spend}
        self.tiers = None
