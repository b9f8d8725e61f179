"""Compile once: a Bayesian model's data enter its PyMC graph as inputs, and the compiled
sampler is reused for every fit of the same *structure*, in a session and across processes.

Why the data must be inputs
---------------------------
:meth:`~clvmodels.models.bayes.BayesianModel._build_model` evaluates the likelihood on the
distinct values of the data columns (:mod:`clvmodels.models.factored`): the distinct values,
the index arrays that gather them to rows, the row weights, the covariate patterns and the
partial-centring weights of a hierarchical model. Were they constants, every new data set
would be a new program (and PyTensor's on-disk numba cache, keyed on the graph including its
constants, would never hit across data sets — and would hold the data inside the compiled
code). :class:`DataInputs` makes each of them a named PyTensor shared variable with no static
shape, so the graph depends on the data only through

* the model class, its priors and sampler variable names (default priors that are
  resolved against the data — Gamma-Gamma's spend scale — make a new structure per data
  set; the BG family's depend on the time unit only),
* the hierarchical layout (number of segments, which latents are centred, non-centred or
  partially centred) and covariate layout (coefficients per group),
* the names of the data columns: which groupings of the factored evaluation are kept is
  decided by the columns alone (:class:`~clvmodels.models.factored.RowSpace`), so data
  sets of any size, resamples included, share one structure.

Cache key
---------
:func:`structure_key` hashes (sha256) the printed logp and deterministics graph (shared
variables appear by name only, never by value) with the dimension lengths of the free
parameters. Equal keys mean the same compiled program; the data are swapped in through
nutpie's ``CompiledPyMCModel.with_data``. So a cache hit — in the session or from disk —
gives exactly the draws a fresh compile would give with the same seed
(tests/test_bayes_compile_cache.py checks this).

Two levels
----------
* **In the session**: :data:`_SESSION`, the last :data:`SESSION_SIZE` compiled samplers by
  key (:func:`cache_info` counts hits; :func:`clear_session_cache` empties it).
* **Across processes, by the structure key**: nutpie's two C callbacks (logp-and-gradient,
  and the expansion to the trace) are generated here as cacheable source and stored in
  numba's on-disk cache under the structure key, with a small JSON manifest of the layout
  (:func:`_compile_numba_cached`). A new process that builds a model of the same structure
  finds the manifest, generates the same callbacks and numba loads them — nothing of
  PyTensor is rewritten or compiled (:func:`_load_by_key`; ``cache_info()["disk_hits"]``).
  numba stores a callback with the functions it calls linked in, so the two cache entries
  are the whole sampler's compiled code. The key is ours, not PyTensor's: PyTensor's key of
  the rewritten graph differs between processes for one model (its rewrites name the fused
  loops' temporaries and choose which of two equal-length index arrays gives a shape in an
  order that depends on object ids), so a lookup by it missed in some processes.
* **Direct compile, on a miss**: a model registered with :func:`register_direct` (the
  Bayesian BG/NBD and MBG/NBD without segments or covariates, whose likelihood is one fused
  node and whose priors are of the kinds :mod:`clvmodels.models.bg_fused` writes out) gets
  its two callbacks' inner functions from that recipe — its compiled kernel and priors, and
  ``theta = e^u`` for the trace — instead of PyTensor's numba compile of the logp graph
  (a cold CDNOW compile 2.6 s instead of 7–14 s; bench/compile_measurements.md). Cached
  and loaded like any other structure; the recipe's version is part of the key.
* **Below that, on a miss**: PyTensor compiles the logp-and-gradient graph with numba and
  caches each op's machine code on disk keyed on the op (which, with the data as inputs,
  no longer contains the data). ``psi`` (the gradient of ``gammaln``) calls scipy through
  a function pointer numba will not cache, and one uncacheable op makes the callbacks
  uncacheable, so inside our compiles it is :func:`_digamma`.

:func:`disk_cache` directs the cache, for our compiles only, to :func:`cache_dir`:
``$CLVMODELS_CACHE_DIR`` or ``$XDG_CACHE_HOME/clvmodels/numba`` (default
``~/.cache/clvmodels/numba``). What is stored: numba's cache files — ``*.nbi`` (an index:
the function's type signature and target) and ``*.nbc`` (the compiled object code and its
type metadata, in numba's own serialised format) — and one ``clvmodels-<key>.json`` per
structure (the trace's variable names, slices and shapes; the shared variables' names,
dtypes and ranks). No data (tests/test_bayes_compile_cache.py checks that the data's values
are in no file), no model, no pickle of ours; deleting the directory at any time only costs
a recompile (a manifest whose callbacks went missing is compiled again). A cache entry
compiled for another CPU is not loaded (numba's index records the target), nor one of
other library versions (part of the key). ``CLVMODELS_COMPILE_CACHE=0`` turns every level
off (every fit compiles afresh, with nutpie's own compile).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pymc as pm

__all__ = [
    "SESSION_SIZE",
    "DataInputs",
    "cache_dir",
    "cache_enabled",
    "cache_info",
    "clear_session_cache",
    "compile_nutpie",
    "disk_cache",
    "register_direct",
    "structure_key",
]

#: compiled samplers kept in the session (least recently used dropped first)
SESSION_SIZE = 8
_SESSION: OrderedDict[str, Any] = OrderedDict()
_STATS = {"hits": 0, "disk_hits": 0, "misses": 0}
_LOCK = threading.RLock()
#: the data inputs of each PyMC model built by BayesianModel._build_model
_INPUTS: weakref.WeakKeyDictionary[Any, DataInputs] = weakref.WeakKeyDictionary()
#: models whose sampler callbacks are compiled directly (e.g. bg_fused.DirectCompile)
_DIRECT: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def register_direct(model: pm.Model, recipe: Any) -> None:
    """Compile ``model``'s sampler callbacks with ``recipe`` instead of PyTensor's numba
    backend (:func:`_direct_functions`). ``recipe`` has ``version`` (part of the structure
    key), ``data_names`` (the shared variables its logp reads, in order),
    ``logp_inner(free_names, n_dim)`` and ``expand_inner(names, slices, n_dim,
    n_expanded)`` — each a numba function registered for caching, or None to fall back."""
    _DIRECT[model] = recipe


def cache_enabled() -> bool:
    """Whether compiled samplers are reused (``CLVMODELS_COMPILE_CACHE`` not ``0``)."""
    return os.environ.get("CLVMODELS_COMPILE_CACHE", "1").strip().lower() not in (
        "0", "false", "no", "off")


def cache_dir() -> Path:
    """Where the on-disk compiled code goes: ``$CLVMODELS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/clvmodels/numba`` (``~/.cache/clvmodels/numba``)."""
    env = os.environ.get("CLVMODELS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "clvmodels" / "numba"


def cache_info() -> dict[str, int]:
    """Counters of :func:`compile_nutpie`: ``hits`` (this session's sampler reused),
    ``disk_hits`` (loaded from the on-disk cache), ``misses`` (compiled) and ``size``
    (samplers kept in the session)."""
    return {**_STATS, "size": len(_SESSION)}


def clear_session_cache() -> None:
    """Forget the compiled samplers of this session and reset the counters."""
    with _LOCK:
        _SESSION.clear()
        _STATS.update(hits=0, disk_hits=0, misses=0)


class DataInputs:
    """The data of one PyMC model as named shared variables (no static shape).

    Names are given in creation order (``clvdata_<n>_<hint>``); the model is built by the
    same code for the same structure, so the same input gets the same name in every build.
    PyMC traces a CustomDist's ``logp`` each time it derives the model's logp: an input
    asked for again with the same hint and content is the same variable.
    """

    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}
        self._seen: dict[tuple[str, str], Any] = {}

    def add(self, values: Any, hint: str) -> Any:
        """A shared variable holding ``values`` (float64, or int64 for index arrays)."""
        import pytensor

        arr = np.ascontiguousarray(values)
        arr = arr.astype(np.int64 if arr.dtype.kind in "biu" else np.float64, copy=False)
        digest = hashlib.sha1(arr.tobytes(), usedforsecurity=False)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        seen = (hint, digest.hexdigest())
        if seen in self._seen:
            return self._seen[seen]
        name = f"clvdata_{len(self.variables)}_{hint}"
        var = pytensor.shared(arr, name=name, shape=(None,) * arr.ndim)
        self.variables[name] = var
        self._seen[seen] = var
        return var

    def index(self, values: np.ndarray) -> Any:
        """An index array (RowSpace gathers, segment codes, covariate patterns)."""
        return self.add(np.asarray(values, dtype=np.int64), "index")

    def values(self) -> dict[str, np.ndarray]:
        """Current value of every input, by name."""
        return {name: var.get_value(borrow=True) for name, var in self.variables.items()}

    def register(self, model: pm.Model) -> None:
        """Remember these as ``model``'s data inputs (see :func:`compile_nutpie`)."""
        _INPUTS[model] = self


def structure_key(model: pm.Model, inputs: DataInputs) -> str:
    """sha256 of what the compiled sampler depends on: the logp and deterministics graph
    as printed (constants by value, shared variables by name only), the lengths of the
    dimensions of the free parameters, the inputs' names and ranks, and the versions of
    PyMC, PyTensor, nutpie and of our digamma and alloc (:data:`_DIGAMMA_VERSION`,
    :data:`_ALLOC_VERSION`: the printed graph shows ``Psi`` and ``Alloc`` whatever computes
    them), and PyTensor's ``numba__fastmath`` flag."""
    import nutpie
    import pymc
    import pytensor
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors
    from pytensor.printing import debugprint

    outputs = [model.logp(), *model.deterministics]
    buf = io.StringIO()
    debugprint(outputs, file=buf, print_type=True)
    # random generators (in the deterministics' graph) print with their memory address
    h = hashlib.sha256(re.sub(r" at 0x[0-9A-Fa-f]+", "", buf.getvalue()).encode())
    for var in ancestors(outputs):  # the printout abbreviates large constants: hash them
        if isinstance(var, Constant):
            data = np.asarray(var.data)
            if data.dtype.kind not in "biuf":
                continue
            h.update(f"{data.dtype.str}{data.shape}".encode())
            h.update(np.ascontiguousarray(data).tobytes())
    dims = {name: len(vals) for name, vals in model.coords.items()
            if vals is not None and name != "row"}
    h.update(repr(sorted(dims.items())).encode())
    h.update(repr([(n, v.ndim, str(v.dtype)) for n, v in inputs.variables.items()]).encode())
    h.update(repr([v.name for v in model.free_RVs]).encode())
    direct = _DIRECT.get(model)
    if direct is not None:
        h.update(f"|{direct.version}".encode())
    h.update(f"{pymc.__version__}|{pytensor.__version__}|{nutpie.__version__}|"
             f"{_DIGAMMA_VERSION}|{_ALLOC_VERSION}|fastmath={pytensor.config.numba__fastmath}".encode())
    return h.hexdigest()


def _digamma(x: float) -> float:
    """psi(x) = d ln Gamma(x) / dx (scipy.special.psi's values to ~1e-14 absolute): the
    recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then the asymptotic series
    ln x - 1/(2x) - sum_k B_2k / (2k x^2k) (Abramowitz & Stegun 6.3.5, 6.3.18); the
    reflection psi(1 - x) - pi cot(pi x) for x < 0."""
    if math.isnan(x) or x == -math.inf:
        return math.nan
    if x == math.inf:
        return math.inf
    if x <= 0.0 and x == math.floor(x):
        return -math.inf if x == 0.0 else math.nan
    result = 0.0
    if x < 0.0:
        result = -math.pi / math.tan(math.pi * x)
        x = 1.0 - x
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (
        -1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))))
    return result + math.log(x) - 0.5 / x + t


#: version of :func:`_digamma` (its numba cache key, and part of :func:`structure_key`: the
#: printed graph shows ``Psi`` whatever computes it; change it with the function)
_DIGAMMA_VERSION = "clvmodels.models.compiled._digamma v1"

#: version of the single-value ``Alloc`` below (part of :func:`structure_key`)
_ALLOC_VERSION = "clvmodels.models.compiled alloc-fill v1"

_PSI_ACTIVE = [False]
_PSI_REGISTERED = [False]


def _alloc_fill(op: Any, node: Any) -> tuple[Any, str] | None:
    """numba code for an ``Alloc`` of a single value (every static dimension of the value
    is 1, e.g. the zeros PyTensor allocates for the gradient of a gather): ``np.empty`` of
    the shape, filled with the value. The same array as PyTensor's own implementation,
    which assigns the value with a broadcasting ``res[...] = val``: numba compiles that
    assignment with a shape-mismatch error whose message is formatted in compiled code —
    about half of a cold BG/NBD compile, measured (bench/compile_measurements.md). None for
    any other ``Alloc`` (PyTensor's implementation is used)."""
    from pytensor.link.numba.cache import compile_numba_function_src
    from pytensor.link.numba.dispatch import basic as nbasic

    value = node.inputs[0]
    if any(dim != 1 for dim in value.type.shape):
        return None
    dtype = np.dtype(node.outputs[0].type.dtype)
    shapes = [f"sh{i}" for i in range(len(node.inputs) - 1)]
    items = ", ".join(f"{name}.item()" for name in shapes)
    src = (f"def alloc_fill(val, {', '.join(shapes)}):\n"
           f"    res = np.empty(({items}{',' if len(shapes) == 1 else ''}), dtype=dtype)\n"
           f"    res.fill(val.item())\n"
           f"    return res\n")
    fn = compile_numba_function_src(src, "alloc_fill", {"np": np, "dtype": dtype})
    key = hashlib.sha256(f"{_ALLOC_VERSION}|{dtype.str}|{value.type.ndim}|"
                         f"{len(shapes)}|{src}".encode()).hexdigest()
    return nbasic.numba_njit(fn), key


def _register_psi() -> None:
    """Give PyTensor's ``psi`` (the gradient of ``gammaln``) a numba implementation it can
    cache on disk, and a single-value ``Alloc`` one that compiles faster
    (:func:`_alloc_fill`), for our compiles only.

    PyTensor's numba backend calls scipy's Cython ``psi`` through a function pointer, which
    numba refuses to cache, and one uncacheable node makes the whole logp-and-gradient
    graph uncacheable. Inside :func:`disk_cache` (float64 in and out) ``psi`` is
    :func:`_digamma` compiled by numba instead, with its own cache key; elsewhere PyTensor's
    own implementations are used unchanged.
    """
    if _PSI_REGISTERED[0]:
        return
    from pytensor.link.numba.dispatch import basic as nbasic
    from pytensor.link.numba.dispatch import scalar as nscalar
    from pytensor.link.numba.dispatch import tensor_basic as ntensor
    from pytensor.scalar.math import Psi
    from pytensor.tensor.basic import Alloc

    digamma = nbasic.numba_njit(_digamma)
    key = hashlib.sha256(_DIGAMMA_VERSION.encode()).hexdigest()
    pytensor_alloc = ntensor.numba_funcify_Alloc

    @nbasic.register_funcify_and_cache_key(Psi)
    def _numba_psi(op: Any, node: Any, **kwargs: Any) -> tuple[Any, str | None]:
        dtypes = {v.type.dtype for v in (*node.inputs, *node.outputs)}
        if not _PSI_ACTIVE[0] or dtypes != {"float64"}:
            return nscalar.numba_funcify_ScalarOp(op, node=node, **kwargs)
        return digamma, key

    @nbasic.register_funcify_and_cache_key(Alloc)
    def _numba_alloc(op: Any, node: Any, **kwargs: Any) -> tuple[Any, str | None]:
        filled = _alloc_fill(op, node) if _PSI_ACTIVE[0] else None
        return filled if filled is not None else pytensor_alloc(op, node, **kwargs)

    _PSI_REGISTERED[0] = True


@contextlib.contextmanager
def disk_cache(path: Path | None = None) -> Iterator[Path | None]:
    """Direct PyTensor's on-disk numba cache to ``path`` (default :func:`cache_dir`) for
    the compiles inside the block; yields the directory (None if it cannot be used: the
    compile then goes to PyTensor's own cache directory)."""
    path = cache_dir() if path is None else Path(path)
    try:
        import pytensor.link.numba.cache as ncache

        path.mkdir(parents=True, exist_ok=True)
        if not hasattr(ncache, "NUMBA_CACHE_PATH"):
            raise AttributeError("NUMBA_CACHE_PATH")
    except (ImportError, OSError, AttributeError):
        yield None
        return
    with _LOCK:
        _register_psi()
        old = ncache.NUMBA_CACHE_PATH
        ncache.NUMBA_CACHE_PATH = path
        _PSI_ACTIVE[0] = True
        try:
            yield path
        finally:
            ncache.NUMBA_CACHE_PATH = old
            _PSI_ACTIVE[0] = False


def compile_nutpie(model: pm.Model) -> tuple[Any, str]:
    """nutpie's compiled sampler for ``model``: ``(compiled, status)``, status ``"hit"``
    (this session's sampler of the same structure), ``"disk"`` (loaded from the on-disk
    cache by the structure key, nothing compiled), ``"miss"`` (compiled) or ``"off"``.

    A model built with :class:`DataInputs` (registered) is looked up by
    :func:`structure_key`: on a session hit the session's compiled sampler gets this
    model's data (``with_data``) and its coordinates; else, when the on-disk cache holds the
    structure (:func:`_load_by_key`), its C callbacks are loaded without building or
    rewriting any PyTensor graph; otherwise it is compiled (numba backend), stored on disk
    under the key, and kept for the next fit.
    """
    import nutpie

    inputs = _INPUTS.get(model)
    if inputs is None or not cache_enabled():
        return nutpie.compile_pymc_model(model, backend="numba"), "off"
    key = structure_key(model, inputs)
    with _LOCK:
        cached = _SESSION.get(key)
        if cached is not None:
            _SESSION.move_to_end(key)
    if cached is not None:
        swapped = _with_data(cached, model, inputs)
        if swapped is not None:
            _STATS["hits"] += 1
            return swapped, "hit"
    status = "miss"
    with disk_cache() as where:
        compiled = None
        if where is not None:
            try:
                compiled = _load_by_key(model, inputs, key, where)
            except Exception:
                compiled = None
            if compiled is not None:
                status = "disk"
            else:
                try:
                    compiled = _compile_numba_cached(model, key, where)
                except Exception:
                    compiled = None
        if compiled is None:
            compiled = nutpie.compile_pymc_model(model, backend="numba")
    with _LOCK:
        _STATS["disk_hits" if status == "disk" else "misses"] += 1
        _SESSION[key] = compiled
        while len(_SESSION) > SESSION_SIZE:
            _SESSION.popitem(last=False)
    return compiled, status


def _with_data(compiled: Any, model: pm.Model, inputs: DataInputs) -> Any | None:
    """``compiled`` with ``model``'s data and coordinates (None if a shared variable of the
    compiled sampler is unknown here: then it is recompiled)."""
    values = _data_values(model, inputs)
    missing = [n for n in compiled.shared_data if n not in values]
    if missing:
        return None
    out = compiled.with_data(**{n: values[n] for n in compiled.shared_data})
    try:
        from nutpie.compile_pymc import _prepare_dims_and_coords

        dims, coords = _prepare_dims_and_coords(model, compiled.shape_info)
        out = dataclasses.replace(out, dims=dims, _coords=coords)
    except (ImportError, TypeError, ValueError):
        return None
    return out


#: version of the C wrappers and of the manifest below (part of their on-disk cache key)
_WRAPPER_VERSION = "4"


def _manifest_path(where: Path, key: str) -> Path:
    return where / f"clvmodels-{key[:40]}.json"


def _data_values(model: pm.Model, inputs: DataInputs) -> dict[str, np.ndarray]:
    """The model's shared values by name: the data inputs and PyMC's dimension lengths."""
    values = inputs.values()
    for name, length in model.dim_lengths.items():
        if hasattr(length, "get_value"):
            values.setdefault(name, length.get_value())
    return values


def _wrapper_tag(key: str, record: np.dtype, n_dim: int, n_expanded: int,
                 logp_names: list[str], expand_names: list[str]) -> str:
    import nutpie

    return hashlib.sha256(
        f"{_WRAPPER_VERSION}|{nutpie.__version__}|{record.descr}|{n_dim}|{n_expanded}|"
        f"{key}|{logp_names}|{expand_names}".encode()).hexdigest()


def _compile_numba_cached(model: pm.Model, key: str, where: Path) -> Any:
    """nutpie's numba compile (``nutpie.compile_pymc_model(model, backend="numba")``, same
    initial points, functions and result) with C wrappers numba caches on disk under the
    structure ``key``, and a manifest (:func:`_load_by_key`) beside them.

    nutpie wraps the logp-and-gradient function in a C callback that reads the shared
    variables from its user data; it is built from closures numba cannot cache. Here the
    wrapper is generated as source for the model's layout (number of parameters, shared
    variables by name and rank) and registered with PyTensor's cache locator under a key
    made of :func:`structure_key` — not of PyTensor's key of the rewritten graph, which can
    differ between processes for one model — so a new process finds it by the structure
    alone. numba stores a callback's code with the functions it calls linked in, so the
    cached wrapper is the whole compiled logp-and-gradient (or expand) function. Returns
    None when PyTensor gives the wrapped function no cache key (an uncacheable op).
    """
    import nutpie.compile_pymc as nc
    from pymc.initial_point import make_initial_point_fn
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    point_fn = nc._wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point",
        jitter_rvs=set(model.free_RVs), return_transformed=True))
    direct = _direct_functions(model, point_fn)
    if direct is not None:
        (n_dim, n_expanded, logp_fn, expand_fn, initial_point_fn, shape_info, logp_names,
         expand_names, shared_vars) = direct
        logp_pt = expand_pt = None
    else:
        n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info = (
            nc._make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                               pymc_initial_point_fn=point_fn, var_names=None))
        logp_fn, expand_fn = logp_pt.vm.jit_fn, expand_pt.vm.jit_fn
        logp_names = [v.name for v in logp_pt.get_shared()]
        expand_names = [v.name for v in expand_pt.get_shared()]
        shared_vars = {}
        for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
            if var.name in shared_vars and shared_vars[var.name] is not var:
                return None
            shared_vars[var.name] = var
    if None in [CACHED_SRC_FUNCTIONS.get(f.py_func) for f in (logp_fn, expand_fn)]:
        return None
    shared_data = {name: np.array(var.get_value(), order="C", copy=True)
                   for name, var in shared_vars.items()}
    for val in shared_data.values():
        val.flags.writeable = False
    if not all(name.isidentifier() for name in shared_vars):
        return None
    user_data = nc.make_user_data(shared_vars, shared_data)
    tag = _wrapper_tag(key, user_data.dtype, n_dim, n_expanded, logp_names, expand_names)
    logp_c = _c_wrapper("logp", tag, n_dim, n_expanded, logp_fn, logp_names, shared_data,
                        user_data.dtype)
    expand_c = _c_wrapper("expand", tag, n_dim, n_expanded, expand_fn, expand_names,
                          shared_data, user_data.dtype)
    names, slices, shapes = shape_info
    manifest = {
        "version": _WRAPPER_VERSION, "key": key, "n_dim": int(n_dim),
        "n_expanded": int(n_expanded), "names": list(names),
        "slices": [[int(sl.start), int(sl.stop)] for sl in slices],
        "shapes": [[int(v) for v in shape] for shape in shapes],
        "n_free": len(model.free_RVs), "shared": list(shared_data),
        "shared_dtypes": [shared_data[n].dtype.str for n in shared_data],
        "shared_ndims": [int(shared_data[n].ndim) for n in shared_data],
        "logp_names": logp_names, "expand_names": expand_names}
    stored = [list(where.glob(f"*clv_{kind}_{tag[:16]}*.nbi")) for kind in ("logp", "expand")]
    if all(stored):  # both callbacks are in numba's cache: the structure can be loaded
        path = _manifest_path(where, key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, path)
    dims, coords = nc._prepare_dims_and_coords(model, shape_info)
    return nc.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point_fn, shared_data=shared_data, user_data=user_data,
        n_expanded=n_expanded, shape_info=shape_info, logp_func=logp_pt,
        expand_func=expand_pt)


def _direct_functions(model: pm.Model, point_fn: Any) -> tuple[Any, ...] | None:
    """What ``nutpie.compile_pymc._make_functions`` gives, for a model registered with
    :func:`register_direct`: the layout of the free values and the trace, and the
    recipe's two inner functions (no PyTensor graph is rewritten or compiled). None when
    the model has no recipe or the recipe declines this layout."""
    import nutpie.compile_pymc as nc

    recipe = _DIRECT.get(model)
    inputs = _INPUTS.get(model)
    if recipe is None or inputs is None:
        return None
    shapes = nc._compute_shapes(model)
    free = [model.rvs_to_values[v].name for v in model.free_RVs]
    rest = [v.name for v in model.unobserved_value_vars if v.name not in free]
    names, slices, layout, count = [*free, *rest], [], [], 0
    for name in names:
        shape = tuple(int(d) for d in shapes[name])
        slices.append(slice(count, count + math.prod(shape)))
        layout.append(shape)
        count += math.prod(shape)
    n_dim = slices[len(free) - 1].stop if free else 0
    logp_fn = recipe.logp_inner(free, n_dim)
    expand_fn = recipe.expand_inner(names, slices, n_dim, count)
    missing = [n for n in recipe.data_names if n not in inputs.variables]
    if logp_fn is None or expand_fn is None or missing:
        return None
    initial_point_fn = nc._rv_dict_to_flat_array_wrapper(
        point_fn, names=free, shapes=layout[:len(free)])
    shared_vars = {n: inputs.variables[n] for n in recipe.data_names}
    return (n_dim, count, logp_fn, expand_fn, initial_point_fn, (names, slices, layout),
            list(recipe.data_names), [], shared_vars)


def _load_by_key(model: pm.Model, inputs: DataInputs, key: str, where: Path) -> Any:
    """The compiled sampler of structure ``key`` from the on-disk cache, or None.

    The manifest ``clvmodels-<key>.json`` (written by :func:`_compile_numba_cached`) holds
    the layout only: the trace's variable names, slices and shapes, and the shared
    variables' names, dtypes and ranks — no data. With it the two C callbacks are generated
    again (the same source, so the same numba cache entry) and loaded from numba's cache
    without a PyTensor graph being rewritten or compiled; the callbacks' inner function is
    then never needed (it is a placeholder numba cannot compile, so a cache entry that went
    missing makes this return None and the model is compiled). The initial point function
    is PyMC's, as in nutpie's own compile, so the draws equal a fresh compile's.
    """
    import nutpie.compile_pymc as nc
    from pymc.initial_point import make_initial_point_fn

    path = _manifest_path(where, key)
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("version") != _WRAPPER_VERSION or manifest.get("key") != key:
        return None
    values = _data_values(model, inputs)
    shared_data: dict[str, np.ndarray] = {}
    for name, dtype, ndim in zip(manifest["shared"], manifest["shared_dtypes"],
                                 manifest["shared_ndims"], strict=True):
        if name not in values or np.ndim(values[name]) != ndim:
            return None
        shared_data[name] = np.array(values[name], dtype=np.dtype(dtype), order="C", copy=True)
        shared_data[name].flags.writeable = False
    user_data = nc.make_user_data(shared_data, shared_data)
    n_dim, n_expanded = int(manifest["n_dim"]), int(manifest["n_expanded"])
    logp_names, expand_names = manifest["logp_names"], manifest["expand_names"]
    tag = _wrapper_tag(key, user_data.dtype, n_dim, n_expanded, logp_names, expand_names)
    logp_c = _c_wrapper("logp", tag, n_dim, n_expanded, None, logp_names, shared_data,
                        user_data.dtype, load_only=True)
    expand_c = _c_wrapper("expand", tag, n_dim, n_expanded, None, expand_names, shared_data,
                          user_data.dtype, load_only=True)
    if logp_c is None or expand_c is None:
        return None
    names = list(manifest["names"])
    slices = [slice(a, b) for a, b in manifest["slices"]]
    shapes = [tuple(shape) for shape in manifest["shapes"]]
    free = [model.rvs_to_values[v].name for v in model.free_RVs]
    n_free = int(manifest["n_free"])
    if free != names[:n_free]:
        return None
    point_fn = nc._wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point",
        jitter_rvs=set(model.free_RVs), return_transformed=True))
    initial_point_fn = nc._rv_dict_to_flat_array_wrapper(point_fn, names=names[:n_free],
                                                         shapes=shapes[:n_free])
    shape_info = (names, slices, shapes)
    dims, coords = nc._prepare_dims_and_coords(model, shape_info)
    return nc.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes=dict(zip(names, shapes, strict=True)),
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point_fn, shared_data=shared_data, user_data=user_data,
        n_expanded=n_expanded, shape_info=shape_info, logp_func=None, expand_func=None)


def _c_wrapper(kind: str, tag: str, n_dim: int, n_expanded: int, inner: Any,
               names: list[str], shared_data: dict[str, np.ndarray], record: np.dtype,
               *, load_only: bool = False) -> Any:
    """The C callback nutpie calls (``kind`` "logp" or "expand"), as cacheable source:
    each shared variable is read from the user data by its literal field name. Its numba
    cache key is ``tag`` (the structure key and layout) and the source. ``load_only``:
    from numba's cache or None (``inner`` is then not needed)."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    lines = ["    ud = numba.carray(user_data_, (), record)"]
    args = []
    for i, name in enumerate(names):
        arr = shared_data[name]
        lines.append(f"    p{i} = address_as_void_pointer(ud['shared']['data']['{name}'][()])")
        lines.append(f"    n{i} = int(ud['shared']['size']['{name}'][()])")
        lines.append(f"    a{i} = numba.carray(p{i}, (n{i},), dtype_{i})")
        if arr.ndim != 1:
            lines.append(f"    s{i} = ud['shared']['shape']['{name}']")
            shape = ", ".join(f"int(s{i}[{j}])" for j in range(arr.ndim))
            lines.append(f"    a{i} = a{i}.reshape(({shape}{',' if arr.ndim == 1 else ''}))")
        args.append(f"a{i}")
    call = ", ".join(["x", *args])
    if kind == "logp":
        head = "def {name}(dim, x_, out_, logp_, user_data_):"
        # the try holds the one call that can raise: numba compiles every call inside a
        # try with exception checks (a try around the whole body cost 1.2 s of a cold
        # BG/NBD compile, measured)
        body = [f"    if dim != {n_dim}:", "        return -1", *lines,
                f"    x = numba.carray(x_, ({n_dim},))",
                f"    out = numba.carray(out_, ({n_dim},))",
                "    logp = numba.carray(logp_, ())",
                "    try:",
                f"        logp_val, grad = inner({call})",
                "    except Exception:",
                "        return 1",
                "    logp[()] = logp_val",
                f"    if grad.shape[0] != {n_dim}:",
                "        return 1",
                f"    for i in range({n_dim}):",  # not out[...] = grad: see _alloc_fill
                "        out[i] = grad[i]",
                "    if not np.all(np.isfinite(out)):",
                "        return 3",
                "    if not np.isfinite(logp_val):",
                "        return 4",
                "    return 0"]
        sig = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                                numba.types.CPointer(numba.types.double),
                                numba.types.CPointer(numba.types.double),
                                numba.types.voidptr)
    else:
        head = "def {name}(dim, expanded, x_, out_, user_data_):"
        body = [f"    if dim != {n_dim}:", "        return -1",
                f"    if expanded != {n_expanded}:", "        return -1", *lines,
                f"    x = numba.carray(x_, ({n_dim},))",
                f"    out = numba.carray(out_, ({n_expanded},))",
                "    try:",
                f"        (values,) = inner({call})",
                "    except Exception:",
                "        return -2",
                f"    if values.shape[0] != {n_expanded}:",
                "        return -2",
                f"    for i in range({n_expanded}):",
                "        out[i] = values[i]",
                "    return 0"]
        sig = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                numba.types.CPointer(numba.types.double),
                                numba.types.CPointer(numba.types.double),
                                numba.types.voidptr)
    fname = f"clv_{kind}_{tag[:16]}"
    src = "\n".join([head.format(name=fname), *body]) + "\n"
    env = {"__name__": __name__, "numba": numba, "np": np, "record": record, "inner": inner,
           "address_as_void_pointer": address_as_void_pointer,
           **{f"dtype_{i}": shared_data[n].dtype for i, n in enumerate(names)}}
    key = hashlib.sha256(f"{tag}|{kind}|{src}".encode()).hexdigest()
    fn = compile_numba_function_src(src, fname, env, cache_key=key)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.NumbaWarning)
        if not load_only:
            return numba.cfunc(sig, cache=True)(fn)
        try:  # ``inner`` is None: numba cannot compile this, it can only load it
            out = numba.cfunc(sig, cache=True)(fn)
        except Exception:
            return None
    return out if out._cache_hits else None
