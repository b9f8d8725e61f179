"""The numba kernels clvmodels substitutes inside its own compiles (compiled.disk_cache)
compute what PyTensor's own implementations compute."""

from __future__ import annotations

import numpy as np
import pytest

pytensor = pytest.importorskip("pytensor")
pytest.importorskip("numba")

import pytensor.tensor as pt  # noqa: E402

from clvmodels.models import compiled  # noqa: E402


def _alloc_graphs() -> tuple[list, list]:
    n = pt.lscalar("n")
    m = pt.lscalar("m")
    v = pt.dvector("v")
    s = pt.dscalar("s")
    outs = [
        pt.alloc(pt.constant(np.array([0.0])), n),  # the gradient-of-gather zeros
        pt.alloc(s, n, m),  # a 0-d value, 2-d result
        pt.alloc(pt.constant(np.array([[2.5]])), n, m),
        pt.alloc(v, m, n),  # not a single value: PyTensor's own implementation
    ]
    return [n, m, v, s], outs


def test_single_value_alloc_matches_pytensor(tmp_path) -> None:
    inputs, outs = _alloc_graphs()
    args = [3, 4, np.arange(3.0) - 1.5, -0.75]
    reference = pytensor.function(inputs, outs, mode="NUMBA", on_unused_input="ignore")(*args)
    with compiled.disk_cache(tmp_path):
        inputs, outs = _alloc_graphs()
        fn = pytensor.function(inputs, outs, mode="NUMBA", on_unused_input="ignore")
        ours = fn(*args)
    kinds = {type(node.op).__name__ for node in fn.maker.fgraph.apply_nodes}
    assert "Alloc" in kinds
    assert [o.shape for o in ours] == [(3,), (3, 4), (3, 4), (4, 3)]
    for got, want in zip(ours, reference, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert np.all(ours[1] == -0.75) and np.all(ours[2] == 2.5)


def test_single_value_alloc_used_only_inside_disk_cache(tmp_path) -> None:
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    _, outs = _alloc_graphs()
    node = outs[0].owner
    with compiled.disk_cache(tmp_path):
        _, key_inside = numba_funcify_and_cache_key(node.op, node=node)
    _, key_outside = numba_funcify_and_cache_key(node.op, node=node)
    assert key_inside != key_outside  # ours inside, PyTensor's outside
