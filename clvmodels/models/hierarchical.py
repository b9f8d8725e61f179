"""Hierarchical pooling across segments: segment codes, centring weights and the partially
non-centred parametrisation.

With ``segment_col`` every segment ``s`` has its own parameters, partially pooled on
unconstrained scales: for each latent ``u`` (e.g. ``log r``), ``u_s ~ Normal(mu_u, sigma_u)``.
How ``u_s`` is *sampled* changes only the sampler's geometry, not the model: non-centred
(``u_s = mu_u + sigma_u z_s``) where a segment's own data say little, centred where they pin
``u_s`` down, and in general partially centred with a weight ``w`` per segment and latent
(Gorinova, Moore & Hoffman 2020, "Automatic reparameterisation of probabilistic programs"):

    u_s = mu + sigma^(1-w) (t_s - w mu),   t_s ~ Normal(w mu, sigma^w),

which is ``Normal(mu, sigma)`` for every ``w`` in [0, 1]. The weights come from quick
maximum-likelihood fits of each segment alone: ``w = tau^2 / (tau^2 + se_s^2)``, with ``se_s``
the segment's standard error of ``u`` and ``tau^2`` the between-segment variance
(DerSimonian & Laird 1986).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError
from clvmodels.models.priors import PriorSpec, prior_rv

__all__ = [
    "MIN_SEGMENT_FOR_MLE",
    "between_variance",
    "centring_weights",
    "declare_segment_latents",
    "plain_label",
    "segment_codes",
    "segment_mle_latents",
]

#: segments smaller than this are not fitted alone for the centring weights (their latents
#: are sampled non-centred: the population dominates their posterior anyway)
MIN_SEGMENT_FOR_MLE = 50


# --------------------------------------------------------------------------------------
# segments as integer codes
# --------------------------------------------------------------------------------------


def plain_label(value: Any) -> Any:
    """A segment label as a JSON-friendly Python scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def segment_codes(frame: pd.DataFrame, col: str, labels: Sequence[Any] | None, *,
                  unseen: Literal["raise", "population"] = "raise"
                  ) -> tuple[np.ndarray, list[Any]]:
    """Integer code of each row's segment in ``frame[col]``, and the labels coded.

    ``labels=None`` (fitting) takes the sorted distinct labels of the column. Labels not
    among ``labels`` raise, or get code ``-1`` with ``unseen="population"`` (predicted from
    the population level, a new segment drawn from the hyperdistribution).
    """
    if col not in frame.columns:
        raise ValidationError(f"column {col!r} (segment_col) is missing from the RFM frame")
    values = frame[col]
    if values.isna().any():
        bad = frame.loc[values.isna(), [col]].head(5)
        raise ValidationError(f"column {col!r}: missing segment labels in rows\n"
                              f"{bad.to_string()}")
    if labels is None:
        labels = [plain_label(v) for v in pd.Index(pd.unique(values)).sort_values()]
    labels = list(labels)
    codes = pd.Index(labels).get_indexer(values.map(plain_label))
    if np.any(codes < 0) and unseen != "population":
        unseen_labels = sorted({str(v) for v in values[codes < 0].unique()})
        raise ValueError(
            f"segment(s) {unseen_labels[:10]} in column {col!r} were not seen when the "
            f"model was fitted (known: {[str(s) for s in labels][:20]}); "
            "pass unseen_segments='population' to predict them from the population "
            "level (a new segment drawn from the fitted hyperdistribution)"
        )
    return codes.astype(np.int64), labels


# --------------------------------------------------------------------------------------
# centring weights
# --------------------------------------------------------------------------------------


def between_variance(est: np.ndarray, se: np.ndarray) -> float:
    """Between-segment variance tau^2 of estimates with standard errors ``se``: the
    DerSimonian-Laird (1986) moment estimator, max(0, (Q - (k-1)) / (S1 - S2 / S1)) with
    precision weights w = 1/se^2, Q = sum w (est - weighted mean)^2, S1 = sum w,
    S2 = sum w^2. Unlike the plain variance of the estimates minus their mean squared error,
    a noisy small segment does not inflate it."""
    w = 1.0 / se**2
    s1 = w.sum()
    mean = float(np.sum(w * est) / s1)
    q = float(np.sum(w * (est - mean) ** 2))
    denom = s1 - float(np.sum(w**2)) / s1
    return max(0.0, (q - (len(est) - 1)) / denom) if denom > 0 else 0.0


def centring_weights(est: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Centring weight ``w = tau^2 / (tau^2 + se^2)`` per (segment, latent).

    ``est``, ``se``: (segments, latents) per-segment estimates of each latent and their
    standard errors (NaN where a segment was not fitted: weight 0, non-centred). A latent
    with fewer than two usable segments is non-centred everywhere. Weights within 0.01 of
    0 or 1 are snapped there (the pure forms have the simpler graph) and the rest rounded to
    three decimals.
    """
    ok = np.isfinite(est) & np.isfinite(se)
    w = np.zeros(est.shape)
    for j in range(est.shape[1]):
        k = ok[:, j] & (se[:, j] > 0)
        if k.sum() < 2:
            continue  # the spread of the segments cannot be estimated: non-centred
        tau2 = between_variance(est[k, j], se[k, j])
        w[k, j] = tau2 / (tau2 + se[k, j] ** 2) if tau2 > 0 else 0.0
    return np.where(w > 0.99, 1.0, np.where(w < 0.01, 0.0, np.round(w, 3)))


def segment_mle_latents(
    frame: pd.DataFrame,
    codes: np.ndarray,
    n_segments: int,
    mle_class: Callable[[], Any],
    param_names: Sequence[str],
    latents: Sequence[str],
    latent_from_natural: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: the maximum-likelihood twin's latents and their standard errors.

    Each segment of at least :data:`MIN_SEGMENT_FOR_MLE` rows is fitted alone with
    ``mle_class``; the standard errors come from the delta method on the MLE's covariance of
    log-parameters (central differences of ``latent_from_natural``). Returns
    ``(est, se)``, both (segments, latents), NaN where a segment's fit fails or does not
    converge.
    """
    names = list(param_names)
    n_lat = len(latents)
    est, se = np.full((n_segments, n_lat), np.nan), np.full((n_segments, n_lat), np.nan)

    def to_latents(log_theta: np.ndarray) -> np.ndarray:
        nat = dict(zip(names, np.exp(log_theta), strict=True))
        lat = latent_from_natural(nat)
        return np.array([float(lat[u]) for u in latents])

    for s_ in range(n_segments):
        part = frame[codes == s_]
        if len(part) < MIN_SEGMENT_FOR_MLE:
            continue
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                mle = mle_class().fit(part, weights=None if weights is None
                                      else weights[codes == s_])
        except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError):
            continue  # no usable fit: this segment is sampled non-centred
        if not getattr(mle, "converged_", False):
            continue
        theta = mle.params_[names].to_numpy(float)
        cov = mle.covariance_.loc[names, names].to_numpy(float) / np.outer(theta, theta)
        lt = np.log(theta)
        with np.errstate(all="ignore"):
            g0 = to_latents(lt)
            h = 1e-6
            jac = np.empty((n_lat, len(names)))
            for i in range(len(names)):
                step = np.zeros(len(names))
                step[i] = h
                jac[:, i] = (to_latents(lt + step) - to_latents(lt - step)) / (2 * h)
            var = np.einsum("ij,jk,ik->i", jac, cov, jac)
        est[s_] = g0
        se[s_] = np.where(var >= 0, np.sqrt(np.abs(var)), np.nan)
    return est, se


# --------------------------------------------------------------------------------------
# the parametrisation, in PyMC
# --------------------------------------------------------------------------------------


def declare_segment_latents(latents: Sequence[str], priors: Mapping[str, PriorSpec],
                            centering: pd.DataFrame,
                            as_input: Callable[[np.ndarray, str], Any] | None = None
                            ) -> dict[str, Any]:
    """Declare ``mu_<u>``, ``sigma_<u>`` and the per-segment latents ``u_s`` (dims
    ``segment``) inside the current PyMC model; returns ``{u: u_s}``.

    ``centering`` holds the weight ``w`` per segment (rows) and latent (columns): all ones
    gives the centred ``u_s ~ Normal(mu, sigma)``, all zeros the non-centred
    ``u_s = mu + sigma z_s``, and otherwise the partially centred form of the module
    docstring. ``as_input(w, name)`` turns the partial weights into a graph input (a shared
    variable, so that a refit reuses the compiled model; constants by default).
    """
    import pymc as pm

    out = {}
    for u in latents:
        mu = prior_rv(f"mu_{u}", priors[f"mu_{u}"])
        sigma = prior_rv(f"sigma_{u}", priors[f"sigma_{u}"])
        w = centering[u].to_numpy(float)
        if np.all(w == 1.0):  # centred
            out[u] = pm.Normal(u, mu, sigma, dims="segment")
        elif np.all(w == 0.0):  # non-centred
            z = pm.Normal(f"z_{u}", 0.0, 1.0, dims="segment")
            out[u] = mu + sigma * z
        else:  # partially centred: u_s = mu + sigma^(1-w) (t_s - w mu) ~ Normal(mu, sigma)
            w = w if as_input is None else as_input(w, f"w_{u}")
            t = pm.Normal(f"t_{u}", w * mu, sigma ** w, dims="segment")
            out[u] = mu + sigma ** (1.0 - w) * (t - w * mu)
    return out
