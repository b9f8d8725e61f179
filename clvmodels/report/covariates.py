"""The report's covariates section: coefficient tables, the forest plot and likelihood-ratio
tests.

For every compared model with covariates (transaction models and the spend model) a table of
its coefficients (:func:`clvmodels.diagnostics_covariates.coefficient_table`): maximum
likelihood — estimate, standard error, Wald 95% interval and p-value; Bayesian — posterior
mean, sd and central 95% interval. A coefficient acts multiplicatively on its group's rate,
``theta_i = theta * exp(sign * z_i' gamma)`` (links equation (1) in
:mod:`clvmodels.models.links`): exp(coefficient) is the factor by which that level (against
the reference level) or one unit (one standard deviation when standardised) multiplies the
purchase rate, the dropout rate or the mean spend.

Likelihood-ratio tests (:func:`clvmodels.lr_test`, Wilks 1938) are shown for every pair of
maximum-likelihood fits of one family in the comparison whose parameters are nested — e.g.
the plain Pareto/NBD against the Pareto/NBD with covariates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clvmodels.diagnostics_covariates import coefficient_table
from clvmodels.models.lr_test import lr_test
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of
from clvmodels.report.parts import num, sig

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["coefficients_figure", "covariate_models", "covariates_view", "lr_tests"]

#: the interval of the coefficient table and the forest plot
INTERVAL = 0.95


def covariate_models(comparison: Any) -> dict[str, Any]:
    """Name → fitted model for the compared models with covariates (the spend model as
    ``"spend model"``)."""
    out = {n: m for n, m in comparison.models.items()
           if getattr(m, "has_covariates", False)}
    spend = getattr(comparison, "spend_model", None)
    if spend is not None and getattr(spend, "has_covariates", False):
        out["spend model"] = spend
    return out


def _p_text(p: float) -> str:
    if p != p:  # NaN
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _table_view(name: str, model: Any) -> dict[str, Any]:
    table = coefficient_table(model, INTERVAL)
    bayes = is_posterior(model)
    if bayes:
        columns = ["group", "covariate", "posterior mean", "sd", "lower 95%", "upper 95%"]
        rows = [[r.group, r.covariate, sig(r.estimate), sig(r.sd), sig(r.lower),
                 sig(r.upper)] for r in table.itertuples()]
    else:
        columns = ["group", "covariate", "estimate", "std. error", "lower 95%", "upper 95%",
                   "p-value"]
        rows = [[r.group, r.covariate, sig(r.estimate), sig(r.se), sig(r.lower),
                 sig(r.upper), _p_text(float(r.p_value))] for r in table.itertuples()]
    groups = getattr(model, "covariate_groups", {})
    return {"name": name, "label": label_of(model),
            "kind": "Bayesian" if bayes else "maximum likelihood",
            "columns": columns, "rows": rows,
            "groups": [{"group": g, "columns": ", ".join(c)} for g, c in groups.items()]}


def lr_tests(comparison: Any) -> list[dict[str, Any]]:
    """Every nested pair (restricted, full) of maximum-likelihood fits of one family among
    the compared models, tested with :func:`clvmodels.lr_test` (pairs it refuses, e.g. a
    fit that did not converge, are left out)."""
    models = {n: m for n, m in comparison.models.items() if not is_posterior(m)}
    out = []
    for full_name, full in models.items():
        if not getattr(full, "has_covariates", False):
            continue
        for name, restricted in models.items():
            if name == full_name or type(restricted) is not type(full):
                continue
            try:
                res = lr_test(restricted, full)
            except ValueError:
                continue
            out.append({"restricted": name, "full": full_name,
                        "ll_restricted": num(res.log_likelihood_restricted, 2),
                        "ll_full": num(res.log_likelihood_full, 2),
                        "statistic": num(res.statistic, 2), "df": str(res.df),
                        "p_value": _p_text(res.p_value),
                        "extra": ", ".join(res.extra_parameters),
                        "significant": res.p_value < 0.05})
    return out


def covariates_view(comparison: Any) -> dict[str, Any] | None:
    """The covariates section's content (None when no model has covariates)."""
    models = covariate_models(comparison)
    if not models:
        return None
    return {"tables": [_table_view(n, m) for n, m in models.items()],
            "lr_tests": lr_tests(comparison)}


def coefficients_figure(comparison: Any) -> Figure | None:
    """The forest plot of every covariate model's coefficients (None without any)."""
    models = covariate_models(comparison)
    if not models:
        return None
    import clvmodels.plotting as plotting

    ax = plotting.plot_coefficients(models, interval=INTERVAL)
    return ax.figure
