"""databricks.yml stays in step with the package: its wheel tasks run the entry point pyproject.toml declares,
with command lines the CLI accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def bundle() -> dict:
    return yaml.safe_load((ROOT / "databricks.yml").read_text())


@pytest.fixture(scope="module")
def project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def wheel_tasks(bundle: dict) -> list[tuple[str, dict, dict]]:
    """(job key, job, task) for every python_wheel_task in the bundle."""
    return [(key, job, task) for key, job in bundle["resources"]["jobs"].items()
            for task in job["tasks"] if "python_wheel_task" in task]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _resolved(args: list[str], bundle: dict) -> list[str]:
    """Task parameters with ${var.x} replaced by the variables' defaults."""
    defaults = {k: str(v.get("default")) for k, v in bundle.get("variables", {}).items()}

    def sub(m: re.Match) -> str:
        assert m.group(1) in defaults, f"${{var.{m.group(1)}}} is not declared under variables"
        return defaults[m.group(1)]

    return [re.sub(r"\$\{var\.([A-Za-z0-9_]+)\}", sub, str(a)) for a in args]


def test_wheel_tasks_run_the_declared_entry_point(bundle, project):
    scripts = project["scripts"]
    tasks = wheel_tasks(bundle)
    assert len(tasks) >= 2
    for key, _, task in tasks:
        wheel = task["python_wheel_task"]
        assert wheel["entry_point"] in scripts, (
            f"job {key}: entry_point {wheel['entry_point']!r} is not in [project.scripts] {sorted(scripts)}")
        assert _normalized(wheel["package_name"]) == _normalized(project["name"]), (
            f"job {key}: package_name {wheel['package_name']!r} is not the project {project['name']!r}")


def test_entry_point_target_exists(project):
    import importlib

    for name, target in project["scripts"].items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), f"{name} = {target} is not callable"


def test_task_command_lines_parse(bundle):
    from spark_audit.cli import build_parser

    commands = set()
    for key, _, task in wheel_tasks(bundle):
        args = _resolved(task["python_wheel_task"]["parameters"], bundle)
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:  # argparse rejected it (and said why on stderr)
            pytest.fail(f"job {key}: `spark-audit {' '.join(args)}` is not a valid command line")
        commands.add((parsed.command, getattr(parsed, "reference_command", None)))
        assert parsed.spec == _resolved(["${var.spec_path}"], bundle)[0], f"job {key} does not pass the spec path"
    assert {("reference", "build"), ("audit", None)} <= commands


def test_audit_job_is_scheduled_daily_and_reference_job_is_not(bundle):
    for key, job, task in wheel_tasks(bundle):
        first = task["python_wheel_task"]["parameters"][0]
        if first == "audit":
            schedule = job["schedule"]
            cron = _resolved([schedule["quartz_cron_expression"]], bundle)[0].split()
            # Quartz: seconds minutes hours day-of-month month day-of-week [year]; daily = fixed time, every day
            assert len(cron) in (6, 7) and all(f.isdigit() for f in cron[:3]), cron
            assert cron[3:6] in (["*", "*", "?"], ["?", "*", "*"]), cron
            assert schedule.get("timezone_id") and schedule.get("pause_status", "UNPAUSED") == "UNPAUSED"
        elif first == "reference":
            assert "schedule" not in job and "trigger" not in job, f"{key}: a reference is built on demand"


def test_tasks_install_the_built_wheel(bundle):
    artifacts = bundle["artifacts"]
    assert any(a.get("type") == "whl" for a in artifacts.values())
    for key, job, task in wheel_tasks(bundle):
        wheels = [lib["whl"] for lib in task.get("libraries", []) if "whl" in lib]
        env_key = task.get("environment_key")
        if env_key:  # serverless: the wheel is a dependency of the task's environment
            env = next(e for e in job["environments"] if e["environment_key"] == env_key)
            wheels += [d for d in env["spec"]["dependencies"] if str(d).endswith(".whl")]
        else:
            cluster_keys = {c["job_cluster_key"] for c in job.get("job_clusters", [])}
            assert task.get("job_cluster_key") in cluster_keys or "existing_cluster_id" in task, key
        assert any(w.endswith("dist/*.whl") for w in wheels), f"job {key} does not install the bundle's wheel"
