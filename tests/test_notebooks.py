"""The notebooks in notebooks/ run top to bottom (fast mode) and are committed without outputs.

Execution uses a kernel spec written into a temp folder that points at THIS interpreter
(``sys.executable``), so the test runs the notebooks in the venv under test even when another
``python3`` kernel is registered on the machine. The notebooks are copied to a temp working
copy and write their data, run dir and bundles into a temp folder (``SCAE_NOTEBOOK_OUT``).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("01_method_walkthrough.ipynb", "02_edge_deployment.ipynb")
CELL_TIMEOUT = 600  # seconds per cell: generous for a loaded 2-core CI machine


def _read(path: Path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_valid_and_has_no_outputs(name):
    notebook = _read(NOTEBOOKS / name)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cells"
    dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert not dirty, f"{name}: cells {dirty} keep outputs or execution counts; clear them before committing"
    assert "SCAE_NOTEBOOK_FAST" in code[0].source, f"{name}: the first code cell must be the parameters cell"


def test_readme_links_both_notebooks():
    text = (NOTEBOOKS / "README.md").read_text()
    for name in NAMES:
        assert name in text


def _kernel_manager(tmp_path: Path):
    """A KernelManager whose only kernel spec runs ``sys.executable -m ipykernel_launcher``."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    name = "scae-notebook-test"
    spec_dir = Path(install(prefix=str(tmp_path / "jupyter"), kernel_name=name, display_name=name))
    assert json.loads((spec_dir / "kernel.json").read_text())["argv"][0] == sys.executable
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
    return KernelManager(kernel_name=name, kernel_spec_manager=specs)


def _outputs(notebook, output_type: str) -> list:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == output_type]


@pytest.mark.slow
def test_notebooks_execute_in_fast_mode(tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from nbclient import NotebookClient

    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work)
    out = tmp_path / "out"
    monkeypatch.setenv("SCAE_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("SCAE_NOTEBOOK_OUT", str(out))
    monkeypatch.setenv("SCAE_PROGRESS", "0")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    real = REPO.parent / "shared" / "data" / "mvtec_screw_dev"
    if (real / "train" / "good").is_dir():
        monkeypatch.setenv("SCAE_REAL_DATA", str(real))  # exercises the optional real-data cells too
    else:
        monkeypatch.delenv("SCAE_REAL_DATA", raising=False)

    executed = {}
    for name in NAMES:  # in order: 02 reuses the run dir 01 trained
        notebook = _read(work / name)
        client = NotebookClient(
            notebook,
            km=_kernel_manager(tmp_path / name),
            timeout=CELL_TIMEOUT,
            resources={"metadata": {"path": str(work)}},
        )
        try:
            client.execute()  # raises CellExecutionError (with the traceback) when a cell fails
        finally:
            nbformat.write(notebook, tmp_path / f"executed-{name}")  # to look at after a failure
        errors = _outputs(notebook, "error")
        assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
        executed[name] = notebook

    run = out / "run-fast"
    for artefact in ("segmenter.keras", "cae.keras", "calibration.json", "preprocessing.json"):
        assert (run / artefact).is_file(), artefact
    for precision in ("fp32", "int8"):
        manifest = json.loads((out / f"bundle-fast-{precision}" / "manifest.json").read_text())
        assert manifest["precision"] == precision
        assert (out / f"bundle-fast-{precision}" / "cae.tflite").stat().st_size > 0
    assert list((out / "overlays-fast").glob("*.overlay.png")), "scae inspect wrote no overlays"

    walkthrough = executed[NAMES[0]]
    shown = _outputs(walkthrough, "display_data") + _outputs(walkthrough, "execute_result")
    figures = [o for o in shown if "image/png" in o.data]
    assert len(figures) >= 10, f"walkthrough showed only {len(figures)} figures"
    texts = "".join(o.get("text", "") for o in _outputs(walkthrough, "stream"))
    assert "image AUROC" in "".join(str(o.data.get("text/markdown", "")) for o in shown)
    assert "post-processor:" in texts  # the recomputed neighbour median matches the library's deviation
    deployment = executed[NAMES[1]]
    assert "reusing the run of notebook 1" in "".join(o.get("text", "") for o in _outputs(deployment, "stream"))
    tables = "".join(str(o.data.get("text/markdown", "")) for o in _outputs(deployment, "display_data"))
    assert "TFLite int8" in tables and "Keras (run dir)" in tables
