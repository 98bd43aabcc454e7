"""The reporting notebook runs end to end against a fresh demo audit, so it cannot rot.

The notebook runs in its own kernel (this interpreter, as the native ``python3`` kernel),
which starts its own local Spark and reads the Delta result tables written here.
"""

import os
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "audit_report.ipynb"


@pytest.fixture(scope="module")
def results(demo_both, demo_gate):
    """The result tables of the session's demo (conftest): both model versions audited, and version 2 gated
    against the champion; the notebook reads only the Delta tables."""
    spec, _, _ = demo_both
    return Path(spec.output.path)


@pytest.fixture(scope="module")
def executed(results, tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("spark.stop()"))  # a clean JVM exit before the kernel shuts down
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARK_AUDIT_NAME", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")}
    env.update(
        SPARK_AUDIT_RESULTS=str(results),
        SPARK_AUDIT_MASTER="local[2]",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    # the native kernel, i.e. this interpreter, whatever other "python3" kernel specs are installed
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    workdir = tmp_path_factory.mktemp("nbrun")
    NotebookClient(nb, km=km, timeout=600, resources={"metadata": {"path": str(workdir)}}).execute(env=env)
    return nb


def cell(nb, tag):
    [c] = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return c


def images(c):
    return [o for o in c.outputs if "image/png" in o.get("data", {})]


def stdout(c):
    return "".join(o.text for o in c.outputs if o.output_type == "stream" and o.name == "stdout")


def html(c):
    return "".join(o.data.get("text/html", "") for o in c.outputs if "data" in o)


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_without_errors(executed):
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert "churn-demo" in stdout(cell(executed, "runs"))


def test_both_model_versions_are_shown_side_by_side(executed):
    runs = html(cell(executed, "runs"))
    versions = html(cell(executed, "versions"))
    assert runs.count("spark-audit-demo-churn") == 2  # the latest run of each version, neither hidden
    assert "open_incidents" in versions and versions.count("critical") >= 2
    assert "<th>1</th>" in versions and "<th>2</th>" in versions


def test_drift_cells_show_figures_and_name_the_drifted_feature(executed):
    drift = cell(executed, "drift")
    assert len(images(drift)) == 1
    lines = stdout(drift).splitlines()
    assert any(line.startswith("monthly_charges drifted in") for line in lines), lines
    assert not any(line.startswith(("age ", "plan ", "country ", "is_promo ")) for line in lines), lines
    assert images(cell(executed, "dataset_drift"))


def test_missing_and_contract_cells(executed):
    missing = cell(executed, "missing")
    assert images(missing) and "tenure_months" in html(missing)
    contract = cell(executed, "contract")
    assert images(contract)
    assert "tenure_months.nanValues" in html(contract)


def test_quality_section_plots_or_skips(executed, results):
    perf = cell(executed, "performance")
    if (results / "performance_metrics").exists():
        assert images(perf)
    else:
        assert "no performance_metrics table" in stdout(perf)


def test_rubric_and_gate_cells(executed):
    rubric = cell(executed, "rubric")
    table = html(rubric)
    assert "Training and serving features compute the same values" in table and "not measured" in table
    assert "model 1" in table and "model 2" in table
    assert "monitor_3: each window's features against the training rows' profile" in stdout(rubric)
    gate = cell(executed, "gate")
    assert "model 2 against model 1: FAIL" in stdout(gate)
    assert "country=MX" in html(gate) and len(images(gate)) == 1
