"""Every notebook runs top to bottom and shows its figures inline, as it does in Jupyter.

Each notebook is executed with nbclient in a fresh kernel whose matplotlib backend is the one
Jupyter uses (``module://matplotlib_inline.backend_inline``) — whatever ``MPLBACKEND`` the test
run itself has (``make test`` sets ``Agg`` for everything else). A notebook that forces a
non-interactive backend in its own code (``matplotlib.use("Agg")``) shows no figures in
Jupyter, and fails here: the figures are counted as the ``image/png`` outputs of its cells.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: The cells that draw a figure in each notebook (by a text each such cell contains): every
#: one must show exactly its figure. Notebooks not listed must show at least one figure.
FIGURE_CELLS: dict[str, tuple[str, ...]] = {
    "01_quickstart.ipynb": ('ax.set_title("Calibration-period fit")',
                            'ax.set_title("CLV distribution")'),
    "02_bayesian_hierarchical.ipynb": ("plotting.plot_segment_forest(hier)",
                                       "90% credible intervals"),
    "03_model_comparison.ipynb": ("plotting.plot_calibration_histogram(bgnbd, split",),
    "05_covariates.ipynb": ('fig.suptitle("True vs estimated coefficients',
                            'fig.suptitle("Pareto/NBD with covariates: per-profile',
                            'ax.set_title("CDNOW holdout: actual vs'),
}

#: Per-cell timeout: the Bayesian notebook samples for a minute or two on a busy machine.
CELL_TIMEOUT_S = 900


def _execute(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


def _images(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def _stderr(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream" and out.get("name") == "stderr")


def test_every_notebook_is_listed() -> None:
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert set(FIGURE_CELLS) <= set(found)


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs_and_shows_figures(name: str) -> None:
    path = NOTEBOOKS / name
    source = path.read_text(encoding="utf-8")
    # the notebook's own code leaves the backend to Jupyter
    assert not re.search(r"matplotlib\.use\(|%matplotlib\s+(agg|Agg)", source), name
    nb = _execute(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    total = sum(_images(c) for c in code)
    assert total > 0, f"{name} shows no figures"
    expected = FIGURE_CELLS.get(name)
    if expected is not None:
        for marker in expected:
            cells = [c for c in code if marker in c.source]
            assert len(cells) == 1, (name, marker)
            assert _images(cells[0]) == 1, f"{name}: the cell with {marker!r} shows no figure"
        assert total == len(expected), f"{name}: {total} figures, expected {len(expected)}"
    # nothing the notebook shows warns that its own results are unreliable
    for cell in code:
        assert "SamplingWarning" not in _stderr(cell), (name, cell.source[:80])
        assert "may be unreliable" not in _stderr(cell), (name, cell.source[:80])
