"""The notebooks under notebooks/ run end to end against the session's test database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gisgrid.config import PROJECT_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def _ensure_kernelspec() -> None:
    """Make the python3 kernel available, running this venv's Python."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)


def _outputs(nb):
    for cell in nb.cells:
        yield from cell.get("outputs", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, db_url, town, monkeypatch):
    _ensure_kernelspec()
    monkeypatch.setenv("GISGRID_NOTEBOOK_DATABASE_URL", db_url)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell

    outputs = list(_outputs(nb))
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no image/png output"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "hexagons per hotspot class" in text
    for cls in ("hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"):
        assert f"{cls}: " in text
    assert "recurring places" in text
