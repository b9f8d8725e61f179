"""Predictions over posterior draws, in chunks so memory stays bounded.

:class:`PosteriorDraws` gives a fitted Bayesian model its draws — the public
:attr:`~PosteriorDraws.n_draws` and :meth:`~PosteriorDraws.parameter_draws` — and the engine
that evaluates a quantity per draw and unique data row in chunks (:data:`CHUNK_CELLS` cells
at a time), reduced to posterior means and central credible intervals or returned as
``(chain, draw, customer_id)`` DataArrays. :class:`TransactionPredictions` is the transaction
models' predictions on that engine (the model module's own functions, reached through the
same hooks the maximum-likelihood twin uses), including
:meth:`~TransactionPredictions.discounted_purchase_chunks`, the per-chunk draws that
:func:`clvmodels.valuation.customer_lifetime_value` reduces to CLV with credible intervals.
A spend model hands valuation its draws as :class:`CustomerDraws`.

Both are mixins of :class:`clvmodels.models.bayes.BayesianModel`; they read the fitted
``idata_``, ``param_names``, ``latents``, ``segment_labels_`` and the model's hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from clvmodels.models.base import check_counts, check_horizon, check_scalar_horizon
from clvmodels.models.hierarchical import plain_label
from clvmodels.models.links import row_params
from clvmodels.models.spark_hooks import is_spark_frame, spark_predict
from clvmodels.rows import UniqueRows, unique_rows

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "CHUNK_CELLS",
    "DEFAULT_INTERVAL",
    "HEAVY_CELLS",
    "CustomerDraws",
    "PosteriorDraws",
    "PurchaseChunk",
    "PurchaseChunks",
    "TransactionPredictions",
    "UnseenSegments",
    "check_draws",
]

#: Default probability mass of the central credible intervals of predictions.
DEFAULT_INTERVAL = 0.9
#: draws × rows × horizons evaluated at once by the chunked predictions (~16 MB of float64)
CHUNK_CELLS = 2_000_000
#: draws × groups × horizons handed at once to a closed-form prediction that needs special
#: functions (2F1 takes ~50 temporaries of its input's size: ~100 MB at this budget)
HEAVY_CELLS = 250_000

UnseenSegments = Literal["raise", "population"]


def check_draws(draws: np.ndarray | None, n_draws: int) -> np.ndarray | None:
    """``draws`` as a 1-D array of indices into ``n_draws`` posterior draws (None: all)."""
    if draws is None:
        return None
    out = np.asarray(draws)
    if out.ndim != 1 or len(out) == 0 or not np.issubdtype(out.dtype, np.integer) \
            or out.min() < 0 or out.max() >= n_draws:
        raise ValueError(f"draws must be a non-empty 1-D array of indices into the {n_draws} "
                         "posterior draws")
    return out.astype(np.int64)


class PosteriorDraws:
    """Posterior draws of a fitted Bayesian model and the chunked prediction engine."""

    # ---- public draws API ----------------------------------------------------------------
    @property
    def n_draws(self) -> int:
        """Number of posterior draws S (chains × draws per chain)."""
        self._check_fitted()
        post = self.idata_.posterior
        return int(post.sizes["chain"] * post.sizes["draw"])

    def segment_codes(self, data: pd.DataFrame, *,
                      unseen_segments: UnseenSegments = "raise") -> np.ndarray:
        """Each row's segment code: its position in ``segment_labels_`` (0 for every row of
        a model without segments; -1 for an unseen segment with
        ``unseen_segments="population"``, which otherwise raises)."""
        self._check_fitted()
        return self._segment_codes(data, fitting=False, unseen=unseen_segments)

    def parameter_draws(self, data: pd.DataFrame | None = None, *,
                        unseen_segments: UnseenSegments = "raise"
                        ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Posterior draws of the natural parameters, one column per group of customers.

        Returns ``(params, groups)``. ``params[name]`` is a read-only array ``(S, G)``: the
        S posterior draws (chains × draws, chain-major) for G groups — the fitted segments in
        the order of ``segment_labels_``, or one group for a model without segments.
        ``groups`` gives each row of ``data`` its column in ``params`` (an empty array
        without ``data``). With ``unseen_segments="population"``, rows of segments not seen
        in the fit get one more column: per draw, a new segment drawn from the fitted
        hyperdistribution (the same draws as the predictions use).

        Draw ``s`` of two models is not paired by construction: to pair them, select the
        same number of draws of each (e.g. evenly spaced).

        A model with covariates needs ``data`` (it raises without): the groups are then the
        distinct (segment, covariate pattern) of ``data``, each group's parameters per draw
        the base parameters times exp(sign * gamma' z) (links equation (1)); the coefficient
        draws themselves are :meth:`coefficient_draws`.
        """
        self._check_fitted()
        S = self.n_draws
        if getattr(self, "covariate_layout_", None) is not None:
            if data is None:
                raise self._no_covariates_error()
            codes = self._segment_codes(data, fitting=False, unseen=unseen_segments)
            z = self.covariate_layout_.encoding.design(data, unseen=self.unseen_levels)
            keys, inverse, _ = unique_rows([codes.astype(float), *z.T])
            p = self._row_params(keys[0].astype(np.int64) if self.hierarchical else None,
                                 z=np.column_stack(keys[1:]))
            G = len(keys[0])
            out = {}
            for n, v in p.items():
                out[n] = np.ascontiguousarray(np.broadcast_to(v, (S, G)))
                out[n].flags.writeable = False
            return out, np.asarray(inverse, dtype=np.int64)
        params = {n: v.reshape(S, -1) for n, v in self._param_draws().items()}
        if data is None:
            return params, np.zeros(0, dtype=np.int64)
        groups = self._segment_codes(data, fitting=False, unseen=unseen_segments)
        if np.any(groups < 0):
            new = self._new_segment_draws()
            n_groups = next(iter(params.values())).shape[1]
            params = {n: np.concatenate([v, new[n][:, None]], axis=1)
                      for n, v in params.items()}
            for v in params.values():
                v.flags.writeable = False
            groups = np.where(groups < 0, n_groups, groups)
        return params, np.asarray(groups, dtype=np.int64)

    # ---- draws, internally ----------------------------------------------------------------
    def _param_draws(self) -> dict[str, np.ndarray]:
        """Flattened draws: ``(S,)`` per parameter, or ``(S, n_segments)`` hierarchical."""
        cache = getattr(self, "_draws_cache", None)
        if cache is None:
            post = self.idata_.posterior
            S = self.n_draws
            cache = {}
            for n in self.param_names:
                v = np.ascontiguousarray(post[n].to_numpy().reshape(S, -1))
                if not self.hierarchical:
                    v = v.squeeze(-1)
                v.flags.writeable = False
                cache[n] = v
            self._draws_cache = cache
        return cache

    def _new_segment_draws(self, random_seed: int | None = 0) -> dict[str, np.ndarray]:
        """One draw of a new, unseen segment's parameters per posterior draw, shape (S,)."""
        post = self.idata_.posterior
        S = self.n_draws
        rng = np.random.default_rng(random_seed)
        u = {}
        for name in self.latents:
            mu = post[f"mu_{name}"].to_numpy().reshape(S)
            sigma = post[f"sigma_{name}"].to_numpy().reshape(S)
            u[name] = mu + sigma * rng.standard_normal(S)
        xp = SimpleNamespace(exp=np.exp, sigmoid=special.expit)
        return self._natural_from_latent(u, xp)

    def _coefficient_draws(self) -> np.ndarray:
        """Covariate coefficient draws ``(S, k)``, columns in ``coefficient_names`` order."""
        cache = getattr(self, "_coef_cache", None)
        if cache is None or cache.shape[0] != self.n_draws:
            post = self.idata_.posterior
            S = self.n_draws
            parts = [post[f"coef_{g}"].to_numpy().reshape(S, -1)
                     for g in self.covariate_layout_.positions]
            cache = np.ascontiguousarray(np.concatenate(parts, axis=1) if parts
                                         else np.zeros((S, 0)))
            cache.flags.writeable = False
            self._coef_cache = cache
        return cache

    def coefficient_draws(self) -> pd.DataFrame:
        """Posterior draws of the covariate coefficients: one row per draw (chains × draws,
        chain-major), one column per coefficient (``purchase:channel[web]``)."""
        self._check_fitted()
        names = self.covariate_layout_.coefficient_names if getattr(
            self, "covariate_layout_", None) is not None else []
        return pd.DataFrame(self._coefficient_draws() if names else
                            np.zeros((self.n_draws, 0)), columns=names)

    def _row_params(self, codes: np.ndarray | None, extra_axes: int = 0,
                    draws: np.ndarray | None = None, z: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
        """Parameter draws broadcastable against customers: ``(S, 1)`` or ``(S, n)``.

        ``codes`` are segment codes per customer (``-1``: a new segment, population level).
        ``extra_axes`` trailing singleton axes are appended (for horizons). ``draws`` selects
        posterior draws (all by default). ``z`` is the customers' design matrix ``(n, q)``,
        which a model with covariates needs: each draw's base parameters times
        exp(sign * gamma_draw' z_i) (links equation (1)).
        """
        out = self._base_row_params(codes, extra_axes, draws)
        if getattr(self, "covariate_layout_", None) is None:
            return out
        if z is None:
            raise self._no_covariates_error()
        coefs = self._coefficient_draws()
        if draws is not None:
            coefs = coefs[np.asarray(draws)]
        tail = (1,) * extra_axes
        eta = {g: e.reshape(*e.shape, *tail) for g, e in self._eta(z, coefs).items()}
        return row_params(out, self.covariate_links, eta)

    def _base_row_params(self, codes: np.ndarray | None, extra_axes: int = 0,
                         draws: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The base parameters' draws (the segment's, or the model's), as
        :meth:`_row_params` shapes them."""
        params = self._param_draws()
        sel: Any = slice(None) if draws is None else np.asarray(draws)
        tail = (1,) * extra_axes
        if not self.hierarchical or codes is None:
            return {n: v[sel].reshape(-1, 1, *tail) for n, v in params.items()}
        out = {}
        new = None
        if np.any(codes < 0):
            new = self._new_segment_draws()
        for n, v in params.items():
            v = v[sel]
            if new is not None:
                v = np.concatenate([v, new[n][sel][:, None]], axis=1)
            idx = np.where(codes < 0, v.shape[1] - 1, codes)
            out[n] = v[:, idx].reshape(v.shape[0], len(codes), *tail)
        return out

    # ---- the chunked engine -------------------------------------------------------------
    def _chunks(self, n: int, per_item: int) -> Iterator[slice]:
        step = max(1, CHUNK_CELLS // max(1, self.n_draws * per_item))
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    def _reduce(self, compute: Callable[[slice], np.ndarray], n: int, name: str,
                interval: float | None, index: pd.Index, per_item: int = 1
                ) -> pd.Series | pd.DataFrame:
        """Posterior mean (and central interval) of ``compute(chunk) -> (S, chunk)``."""
        if interval is not None and not 0 < interval < 1:
            raise ValueError(f"interval must be in (0, 1), got {interval!r}")
        mean = np.empty(n)
        lower = np.empty(n) if interval else None
        upper = np.empty(n) if interval else None
        for sl in self._chunks(n, per_item):
            vals = compute(sl)
            mean[sl] = vals.mean(axis=0)
            if interval:
                q = (1 - interval) / 2
                lo, hi = np.quantile(vals, [q, 1 - q], axis=0)
                lower[sl], upper[sl] = lo, hi  # type: ignore[index]
        if not interval:
            return pd.Series(mean, index=index, name=name)
        return pd.DataFrame({name: mean, f"{name}_lower": lower, f"{name}_upper": upper},
                            index=index)

    def _draws_array(self, compute: Callable[[slice], np.ndarray], n: int, index: pd.Index,
                     name: str, per_item: int = 1) -> xr.DataArray:
        """All draws of ``compute`` as a DataArray (chain, draw, customer_id)."""
        import xarray as xr

        post = self.idata_.posterior
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        out = np.empty((chains * draws, n))
        for sl in self._chunks(n, per_item):
            out[:, sl] = compute(sl)
        dim = index.name or "customer_id"
        return xr.DataArray(out.reshape(chains, draws, n), dims=("chain", "draw", "customer_id"),
                            coords={"chain": post["chain"].to_numpy(),
                                    "draw": post["draw"].to_numpy(),
                                    "customer_id": index.to_numpy()},
                            name=name, attrs={"index_name": str(dim)})

    def _expanded_draws(self, compute: Callable[[slice], np.ndarray], rows: UniqueRows,
                        name: str) -> xr.DataArray:
        """:meth:`_draws_array` over unique rows, expanded to the rows' customers."""
        unique = self._draws_array(compute, rows.n_rows, pd.RangeIndex(rows.n_rows), name)
        out = unique.isel(customer_id=rows.inverse)
        return out.assign_coords(customer_id=rows.index.to_numpy())

    def _segment_draws(self, segment: Any) -> dict[str, np.ndarray]:
        """Draws (S,) of one fitted segment's parameters, or of a new segment for ``None``
        (hierarchical); the plain draws otherwise. A model with covariates refuses: its
        customers' parameters depend on their attributes."""
        if getattr(self, "covariate_layout_", None) is not None:
            raise self._no_covariates_error()
        return self._base_segment_draws(segment)

    def _profile_params(self, segment: Any, covariates: pd.DataFrame
                        ) -> dict[str, np.ndarray]:
        """Draws ``(S, P)`` of a new customer's parameters for each of the P rows (customer
        profiles) of ``covariates``: the base draws (the model's, ``segment``'s, or a new
        segment's) times exp(sign * gamma_draw' z_p) (links equation (1))."""
        layout = self.covariate_layout_
        z = layout.encoding.design(covariates, unseen=self.unseen_levels)
        eta = self._eta(z, self._coefficient_draws())
        base = {n: np.asarray(v, dtype=float).reshape(-1, 1)
                for n, v in self._base_segment_draws(segment).items()}
        return row_params(base, self.covariate_links, eta)

    def _base_segment_draws(self, segment: Any) -> dict[str, np.ndarray]:
        """:meth:`_segment_draws` of the base parameters (before any covariate link)."""
        if not self.hierarchical:
            return self._param_draws()
        if segment is None:
            return self._new_segment_draws()
        labels = pd.Index(self.segment_labels_)
        if plain_label(segment) not in labels:
            raise ValueError(f"segment {segment!r} was not seen when the model was "
                             f"fitted (known: {[str(s) for s in labels][:20]})")
        code = labels.get_loc(plain_label(segment))
        return {n: v[:, code] for n, v in self._param_draws().items()}


class CustomerDraws:
    """Draws of a per-customer quantity, evaluated only for the customers asked for.

    ``take(customers)`` returns an array ``(n_draws, len(customers))`` for the positions
    ``customers`` (0-based rows of the frame it was made from); column ``j`` is customer
    ``customers[j]``, row ``s`` the same posterior draw in every call.
    """

    def __init__(self, compute: Callable[[np.ndarray], np.ndarray], n_draws: int,
                 n_customers: int) -> None:
        self._compute = compute
        self.n_draws = int(n_draws)
        self.n_customers = int(n_customers)

    def take(self, customers: np.ndarray) -> np.ndarray:
        """Draws ``(n_draws, len(customers))`` (a new C-ordered array) for ``customers``."""
        customers = np.asarray(customers, dtype=np.int64)
        out = np.broadcast_to(self._compute(customers), (self.n_draws, len(customers)))
        return np.ascontiguousarray(out)


@dataclass(frozen=True)
class PurchaseChunk:
    """One chunk of customers from :meth:`TransactionPredictions.discounted_purchase_chunks`.

    ``customers`` are positions (0-based rows) in the frame; ``discounted`` holds, per
    selected draw and customer, ``sum_k coef_k E[Y(t_k)]`` — shape ``(S, len(customers))``;
    ``expected_purchases`` and ``probability_alive`` are posterior means over all the
    model's draws of ``E[Y(t_K)]`` (the last time) and of P(alive).
    """

    customers: np.ndarray
    discounted: np.ndarray
    expected_purchases: np.ndarray
    probability_alive: np.ndarray


class PurchaseChunks:
    """Discounted cumulative expected purchases over posterior draws, in independent blocks.

    ``len(chunks)`` blocks of unique (segment, x, T, t_x) rows; ``chunks.block(i)`` computes
    block ``i`` and yields its customers as :class:`PurchaseChunk` s of at most
    :data:`CHUNK_CELLS` draw × customer cells. Blocks share nothing and cover every customer
    once, so they may be computed in parallel threads (numpy releases the GIL in the heavy
    loops). Never holds draws × customers × times at once.
    """

    def __init__(self, model: TransactionPredictions, rows: UniqueRows, times: np.ndarray,
                 coef: np.ndarray, draws: np.ndarray | None) -> None:
        self._model, self._rows, self._times, self._coef = model, rows, times, coef
        self._draws = draws
        S_all = model.n_draws
        self.n_draws = S_all if draws is None else len(draws)
        self.n_customers = len(rows.inverse)
        self._order = np.argsort(rows.inverse, kind="stable")
        self._starts = np.searchsorted(rows.inverse[self._order], np.arange(rows.n_rows + 1))
        self._row_step = max(1, CHUNK_CELLS // (S_all * len(times)))
        self._cust_step = max(1, CHUNK_CELLS // self.n_draws)

    def __len__(self) -> int:
        return -(-self._rows.n_rows // self._row_step)

    def block(self, i: int) -> Iterator[PurchaseChunk]:
        """Compute block ``i`` and yield its customers in chunks."""
        rows, model = self._rows, self._model
        r0 = i * self._row_step
        r1 = min(rows.n_rows, r0 + self._row_step)
        sl = slice(r0, r1)
        red = model._purchases_rows(rows, sl, self._times, self._coef)  # (S, c, 2)
        disc = red[:, :, 0] if self._draws is None else red[self._draws, :, 0]
        ep_mean = red[..., 1].mean(axis=0)
        pa_mean = model._palive_rows(rows, sl).mean(axis=0)
        del red
        stop = self._starts[r1]
        for c0 in range(self._starts[r0], stop, self._cust_step):
            cust = self._order[c0:min(stop, c0 + self._cust_step)]
            local = rows.inverse[cust] - r0
            yield PurchaseChunk(cust, disc[:, local], ep_mean[local], pa_mean[local])


class TransactionPredictions:
    """Posterior predictions of the Bayesian transaction models (BG/NBD family).

    The model supplies the same hooks as its MLE twin — ``_probability_alive(p, x, tx, T)``,
    ``_expected_purchases(p, x, tx, T, t)``, ``_expected_new(p, t)`` — evaluated with
    parameter draws shaped ``(S, n[, k])`` against customers, in chunks of unique customer
    rows so memory stays bounded (:data:`CHUNK_CELLS`). Each prediction returns the
    posterior mean; ``interval=0.9`` adds the central 90% credible interval as
    ``<name>_lower`` / ``<name>_upper`` columns; ``*_draws`` returns every draw as a
    DataArray ``(chain, draw, customer_id)``. With a hierarchical model each customer uses
    its own segment's parameters.
    """

    # ---- per-row kernels (S, chunk[, k]) -------------------------------------------------
    def _params_for(self, rows: UniqueRows, sl: slice, extra_axes: int = 0
                    ) -> dict[str, np.ndarray]:
        codes = rows.extra["codes"][sl] if self.hierarchical else None
        z = rows.extra["z"][sl] if "z" in rows.extra else None
        return self._row_params(codes, extra_axes, z=z)

    def _palive_rows(self, rows: UniqueRows, sl: slice) -> np.ndarray:
        c = rows.columns
        p = self._params_for(rows, sl)
        return np.broadcast_to(self._probability_alive(p, c["x"][sl], c["tx"][sl], c["T"][sl]),
                               (self.n_draws, sl.stop - sl.start))

    def _purchases_rows(self, rows: UniqueRows, sl: slice, times: np.ndarray,
                        coef: np.ndarray | None = None) -> np.ndarray:
        """Cumulative expected purchases at ``times`` for a chunk of rows: (S, chunk, k).

        With ``coef`` (k,), the two reductions valuation needs instead, on a last axis of 2:
        ``sum_k coef_k E[Y(t_k)]`` and ``E[Y(t_k)]`` at the last time, (S, chunk, 2).
        """
        c = rows.columns
        p = self._params_for(rows, sl, extra_axes=1)
        x, tx, T = (c[n][sl, None] for n in ("x", "tx", "T"))
        out = self._expected_purchases(p, x, tx, T, times[None, :])
        out = np.broadcast_to(out, (self.n_draws, sl.stop - sl.start, len(times)))
        if coef is not None:
            return np.stack([out @ coef, out[..., -1]], axis=-1)
        return out

    # ---- public predictions ----------------------------------------------------------
    def probability_alive(self, rfm: pd.DataFrame, interval: float | None = None, *,
                          unseen_segments: UnseenSegments = "raise"
                          ) -> pd.Series | pd.DataFrame:
        """Posterior mean of P(alive | frequency, recency, T) per customer [+ interval]
        (a Spark summary: a Spark DataFrame from at most 500 evenly thinned draws, see
        :mod:`clvmodels.models.spark_hooks`)."""
        self._check_fitted()
        if is_spark_frame(rfm):
            return spark_predict(self, "probability_alive", rfm, interval=interval,
                                 unseen_segments=unseen_segments)
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments)
        res = self._reduce(lambda sl: self._palive_rows(rows, sl), rows.n_rows,
                           "probability_alive", interval, pd.RangeIndex(rows.n_rows))
        return rows.expand(res)

    def probability_alive_draws(self, rfm: pd.DataFrame, *,
                                unseen_segments: UnseenSegments = "raise") -> xr.DataArray:
        """Every posterior draw of P(alive): DataArray (chain, draw, customer_id)."""
        self._check_fitted()
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments)
        return self._expanded_draws(lambda sl: self._palive_rows(rows, sl), rows,
                                    "probability_alive")

    def _horizon_rows(self, rfm: pd.DataFrame, t: float | np.ndarray,
                      unseen: UnseenSegments) -> tuple[UniqueRows, np.ndarray | None]:
        t_arr = check_horizon(t)
        if t_arr.ndim == 0:
            return self._rows(rfm, fitting=False, unseen=unseen), t_arr.reshape(1)
        if t_arr.shape != (len(rfm),):
            raise ValueError("t must be a scalar or have one value per customer")
        return self._rows(rfm, fitting=False, unseen=unseen, extra=t_arr), None

    def _purchases_at(self, rows: UniqueRows, times: np.ndarray | None, sl: slice) -> np.ndarray:
        if times is not None:
            return self._purchases_rows(rows, sl, times)[..., 0]
        # one horizon per row: evaluate the rows' distinct horizons, keep each row's own
        t_rows = rows.extra["t"][sl]
        uniq, pos = np.unique(t_rows, return_inverse=True)
        vals = self._purchases_rows(rows, sl, uniq)
        return np.take_along_axis(vals, pos.reshape(1, -1, 1), axis=2)[..., 0]

    def expected_purchases(self, rfm: pd.DataFrame, t: float | np.ndarray,
                           interval: float | None = None, *,
                           unseen_segments: UnseenSegments = "raise"
                           ) -> pd.Series | pd.DataFrame:
        """Posterior mean of the expected repeat purchases in (T, T + t] [+ interval].

        ``t`` is in the model's time unit: a scalar, or one value per customer (a Spark
        summary: a scalar; a Spark DataFrame from at most 500 thinned draws).
        """
        self._check_fitted()
        if is_spark_frame(rfm):
            return spark_predict(self, "expected_purchases", rfm, t=t, interval=interval,
                                 unseen_segments=unseen_segments)
        rows, times = self._horizon_rows(rfm, t, unseen_segments)
        res = self._reduce(lambda sl: self._purchases_at(rows, times, sl), rows.n_rows,
                           "expected_purchases", interval, pd.RangeIndex(rows.n_rows))
        return rows.expand(res)

    def expected_purchases_draws(self, rfm: pd.DataFrame, t: float | np.ndarray, *,
                                 unseen_segments: UnseenSegments = "raise") -> xr.DataArray:
        """Every posterior draw of the expected purchases in (T, T + t]."""
        self._check_fitted()
        rows, times = self._horizon_rows(rfm, t, unseen_segments)
        return self._expanded_draws(lambda sl: self._purchases_at(rows, times, sl), rows,
                                    "expected_purchases")

    def _new_customer_draws(self, t: float | np.ndarray, segment: Any,
                            covariates: pd.DataFrame | None = None) -> np.ndarray:
        """Draws (S, *t.shape), or with ``covariates`` (S, profiles, *t.shape)."""
        t_arr = check_horizon(t)
        tail = (1,) * t_arr.ndim
        layout = getattr(self, "covariate_layout_", None)
        if layout is None or covariates is None:
            draws = self._segment_draws(segment)
            p = {n: v.reshape(-1, *tail) for n, v in draws.items()}
            return np.broadcast_to(self._expected_new(p, t_arr[None, ...]),
                                   (self.n_draws, *t_arr.shape))
        base = self._base_segment_draws(segment)
        z = layout.encoding.design(covariates, unseen=self.unseen_levels)
        eta = {g: e.reshape(*e.shape, *tail)
               for g, e in self._eta(z, self._coefficient_draws()).items()}
        p = row_params({n: v.reshape(-1, 1, *tail) for n, v in base.items()},
                       self.covariate_links, eta)
        return np.broadcast_to(self._expected_new(p, t_arr[None, None, ...]),
                               (self.n_draws, len(z), *t_arr.shape))

    def expected_purchases_new_customer(self, t: float | np.ndarray,
                                        interval: float | None = None, *,
                                        segment: Any = None,
                                        covariates: pd.DataFrame | None = None
                                        ) -> float | np.ndarray | pd.DataFrame:
        """Posterior mean of E[X(t)], the repeat purchases of a new customer in (0, t].

        Hierarchical models: ``segment`` picks a fitted segment; ``None`` gives the
        population level (a new segment drawn from the hyperdistribution). With
        ``interval`` a DataFrame indexed by ``t`` with mean, lower and upper columns.

        A model with covariates needs ``covariates`` (a frame with the covariate columns, one
        row per customer profile): the mean then has one row per profile, shape
        ``(len(covariates), *t.shape)``, and the interval frame is indexed by
        (profile, ``t``).
        """
        self._check_fitted()
        vals = self._new_customer_draws(t, segment, covariates)
        mean = vals.mean(axis=0)
        if interval is None:
            return float(mean) if np.ndim(mean) == 0 else np.asarray(mean)
        if not 0 < interval < 1:
            raise ValueError(f"interval must be in (0, 1), got {interval!r}")
        q = (1 - interval) / 2
        lo, hi = np.quantile(vals, [q, 1 - q], axis=0)
        name = "expected_purchases_new_customer"
        t_index = pd.Index(np.atleast_1d(np.asarray(t, dtype=float)), name="t")
        index = t_index
        if covariates is not None and getattr(self, "covariate_layout_", None) is not None:
            index = pd.MultiIndex.from_product([covariates.index, t_index])
        return pd.DataFrame({name: np.ravel(mean), f"{name}_lower": np.ravel(lo),
                             f"{name}_upper": np.ravel(hi)}, index=index)

    def expected_purchases_new_customer_draws(self, t: float | np.ndarray, *,
                                              segment: Any = None) -> xr.DataArray:
        """Every posterior draw of E[X(t)]: DataArray (chain, draw[, t])."""
        self._check_fitted()
        import xarray as xr

        post = self.idata_.posterior
        vals = self._new_customer_draws(t, segment)
        shape = (int(post.sizes["chain"]), int(post.sizes["draw"]), *vals.shape[1:])
        dims = ("chain", "draw") + (("t",) if vals.ndim > 1 else ())
        coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
        if vals.ndim > 1:
            coords["t"] = np.asarray(t, dtype=float)
        return xr.DataArray(vals.reshape(shape), dims=dims, coords=coords,
                            name="expected_purchases_new_customer")

    def conditional_purchase_count_probability(self, rfm: pd.DataFrame, n: int | np.ndarray,
                                               t: float, *,
                                               unseen_segments: UnseenSegments = "raise"
                                               ) -> pd.DataFrame:
        """Posterior predictive P(Y(t) = n | history) per customer, one column per n: the
        family's conditional pmf averaged over the posterior draws (in chunks of rows)."""
        self._check_fitted()
        n_arr = check_counts(n)
        t_arr = check_scalar_horizon(t)
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments)
        c = rows.columns
        out = np.empty((rows.n_rows, len(n_arr)))
        counts = n_arr[None, :]
        for sl in self._chunks(rows.n_rows, len(n_arr)):
            p = self._params_for(rows, sl, extra_axes=1)
            x, tx, T = (c[k][sl, None] for k in ("x", "tx", "T"))
            vals = self._conditional_pmf(p, counts, x, tx, T, t_arr)
            out[sl] = np.broadcast_to(vals, (self.n_draws, sl.stop - sl.start,
                                             len(n_arr))).mean(axis=0)
        frame = pd.DataFrame(out, columns=[int(v) for v in n_arr])
        return rows.expand(frame)

    def purchase_count_probability_at(self, params: dict[str, np.ndarray], n: Any, t: Any
                                      ) -> np.ndarray:
        """P(X(t) = n), a new customer's repeat purchases in (0, t], at the given parameters.

        The family's own pmf (e.g. FHL 2005 eq. 8 for the BG/NBD), broadcasting ``params``
        (arrays keyed by :attr:`param_names`, e.g. from :meth:`parameter_draws` with trailing
        axes added) against ``n`` and ``t``. Raises ``NotImplementedError`` for a family
        without a closed-form count distribution.
        """
        pmf = getattr(self, "_pmf", None)
        if pmf is None:
            raise NotImplementedError(f"{type(self).__name__} has no purchase-count "
                                      "distribution")
        return pmf(params, n, t)

    def discounted_purchase_chunks(self, rfm: pd.DataFrame, times: np.ndarray,
                                   coef: np.ndarray, *, draws: np.ndarray | None = None,
                                   unseen_segments: UnseenSegments = "raise"
                                   ) -> PurchaseChunks:
        """Per posterior draw and customer, ``sum_k coef_k E[Y(t_k)]``, in chunks.

        ``E[Y(t)]`` is the cumulative expected number of repeat purchases in (T, T + t];
        ``times`` (K,) are horizons in the model's time unit (increasing: valuation's period
        boundaries) and ``coef`` (K,) their weights (valuation's Abel-summation coefficients
        of the discount factors). ``draws`` selects posterior draws (indices, e.g. evenly
        spaced ones to pair with another model's draws); all by default.

        Returns a :class:`PurchaseChunks`: blocks of customers, each yielding per chunk the
        customers' positions in ``rfm``, their draws ``(S, chunk)`` and the posterior means
        of ``E[Y(t_K)]`` and P(alive) — so CLV draws can be reduced chunk by chunk without
        ever holding draws × customers × times.
        """
        self._check_fitted()
        times = check_horizon(times, "times")
        coef = np.asarray(coef, dtype=float)
        if times.ndim != 1 or len(times) == 0 or coef.shape != times.shape:
            raise ValueError("times and coef must be 1-D arrays of the same, non-zero length")
        draws = check_draws(draws, self.n_draws)
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments)
        return PurchaseChunks(self, rows, times, coef, draws)
