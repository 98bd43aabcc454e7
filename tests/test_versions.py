"""Model versions side by side: each version's reference profiles only its rows, each version is audited
against its own reference, and the comparison shows every version without one hiding another."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from mlflow import MlflowClient

from spark_audit import store
from spark_audit.audit import run_audit, run_audits
from spark_audit.errors import EXIT_DATA, ReferenceError_, SpecError
from spark_audit.readback import complete_frame, read_frame
from spark_audit.reference_build import build_references
from spark_audit.spec import parse_spec
from spark_audit.version_table import compare_versions, version_table

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
PER_DAY = 400  # rows per day and version
REF_DAYS, AUDIT_DAYS = 3, 3
MODEL = "versions-model"


def _rows(seed: int = 0):
    """Both versions score the same rows; version 2's scores are squeezed towards 0.5 (another model),
    so one version's reference says nothing about the other's scores. Version 3 serves only from the
    first audited day and has no reference."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(REF_DAYS + AUDIT_DAYS):
        x = rng.normal(size=PER_DAY)
        s1 = 1 / (1 + np.exp(-(x + rng.normal(scale=0.5, size=PER_DAY))))
        for version, score in (("1", s1), ("2", 0.4 * s1 + 0.3), ("3", 0.4 * s1 + 0.3)):
            if version == "3" and d < REF_DAYS:
                continue
            for i in range(PER_DAY):
                rows.append((T0 + timedelta(days=d, seconds=200 * i), float(x[i]), float(score[i]), version))
    return rows


@pytest.fixture(scope="module")
def setup(spark, tmp_path_factory):
    home = tmp_path_factory.mktemp("versions")
    table = str(home / "scores")
    spark.createDataFrame(_rows(), "ts timestamp, x double, score double, mv string").write.format("delta").save(table)
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking)
    run = client.create_run(client.create_experiment("train"))
    client.create_registered_model(MODEL)
    # version 1 is registered; 2 and 3 are not
    client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    raw = {
        "name": "versions", "source": {"path": table, "timestamp_column": "ts"},
        "window": {"size": "1 day", "start": (T0 + timedelta(days=REF_DAYS)).isoformat(),
                   "end": (T0 + timedelta(days=REF_DAYS + AUDIT_DAYS)).isoformat()},
        "model": {"name": MODEL, "version_column": "mv"},
        "features": ["x", "score"],
        "reference": {"start": T0.isoformat(), "end": (T0 + timedelta(days=REF_DAYS)).isoformat()},
        "output": {"path": str(home / "results")},
        "mlflow": {"tracking_uri": tracking, "experiment": "versions"},
    }
    spec = parse_spec(raw, file="versions.yaml")
    refs = build_references(spark, spec)
    audits = run_audits(spark, spec)
    return spec, raw, refs, audits


def test_each_version_reference_profiles_only_its_rows(setup):
    spec, _, refs, _ = setup
    assert [v for v, _, _ in refs] == ["1", "2"]  # version 3 has no reference rows
    by_version = {v: profile for v, _, profile in refs}
    assert all(p.row_count == REF_DAYS * PER_DAY for p in by_version.values())  # not both versions' rows
    s1, s2 = by_version["1"].columns["score"], by_version["2"].columns["score"]
    assert s2.mean == pytest.approx(0.4 * s1.mean + 0.3, abs=1e-9)
    client = MlflowClient(spec.mlflow.tracking_uri)
    # the registered version links its reference; the unregistered one's run names its version
    assert client.get_model_version(MODEL, "1").tags["spark_audit.reference_run_id"] == refs[0][1]
    assert client.get_run(refs[1][1]).data.tags["model_version"] == "2"


def test_each_version_is_audited_against_its_own_reference(setup):
    _, _, refs, audits = setup
    assert [a.version for a in audits] == ["1", "2", "3"]
    v1, v2, v3 = audits
    for a, (_, run_id, _) in zip((v1, v2), refs, strict=False):
        assert {g.key.model_version for g in a.result.groups} == {a.version}
        assert {g.profile.row_count for g in a.result.groups} == {PER_DAY}  # its rows only
        assert {r["baseline"] for r in a.result.drift if r["drift_type"] == "reference"} == {f"runs:/{run_id}"}
        # stable data against the right reference: no drift finding on the scores
        assert not [f for f in a.result.findings if f.kind == "drift"], a.result.findings
    # version 3 has no reference: said so, with the command that builds one; the others went on
    assert v3.result is None and isinstance(v3.error, ReferenceError_) and v3.exit_code == EXIT_DATA
    assert "version 3 has no reference" in str(v3.error) and "--model-version 3" in str(v3.error)


def test_one_reference_for_every_version_is_what_made_stable_scores_look_drifted(setup, spark):
    """The defect this fixes: version 2 judged against version 1's reference."""
    spec, raw, refs, _ = setup
    mixed = parse_spec({**raw, "name": "versions-one-reference", "reference": {"uri": f"runs:/{refs[0][1]}"},
                        "output": {"path": raw["output"]["path"] + "-one-reference"}})
    [audit] = run_audits(spark, mixed)
    drifted = {(f.model_version, f.column) for f in audit.result.findings if f.kind == "drift"}
    assert ("2", "score") in drifted and ("1", "score") not in drifted


def test_compare_shows_every_version_without_spark(setup, spark):
    spec, _, _, _ = setup
    table = version_table(spec.output, model=spec.model.name)  # no Spark session: the Delta logs are read by delta-rs
    assert [v["version"] for v in table["versions"]] == ["1", "2"]
    assert all(v["windows"] == AUDIT_DAYS and v["rows"] == AUDIT_DAYS * PER_DAY for v in table["versions"])
    assert all(v["status"] == "ok" and v["critical"] == 0 and v["open_incidents"] == 0 for v in table["versions"])
    text = compare_versions(spec)
    assert [line.split()[0] for line in text.splitlines()[2:4]] == ["1", "2"]


@pytest.mark.parametrize("name", ["profile_metrics", "dataset_drift", "drift_metrics", "audit_runs"])
def test_readback_complete_agrees_with_store_complete(setup, spark, name):
    spec, _, _, _ = setup
    runs = read_frame(spec.output, "audit_runs")
    frame = complete_frame(read_frame(spec.output, name), runs)
    df = store.complete(spark, spec.output, name)
    key = ["audit_run_id", "model_version"] + (["window_start", "slice"] if name != "audit_runs" else [])
    key += [c for c in ("column", "statistic", "drift_type", "finding_key") if c in frame.columns]
    spark_rows = sorted(tuple(str(v) for v in r) for r in df.select(*key).collect())
    frame_rows = sorted(tuple(str(v) for v in r) for r in frame[key].astype(object).where(
        frame[key].notna(), None).itertuples(index=False))

    def norm(rows):  # pandas shows timestamps with a UTC offset, Spark without
        return [tuple(v.replace("+00:00", "") for v in r) for r in rows]

    assert spark_rows and norm(spark_rows) == norm(frame_rows)


def test_a_named_version_audits_only_its_rows_and_alone(setup, spark):
    spec, _, _, _ = setup
    result = run_audit(spark, spec.for_model_version("2"), log_to_mlflow=False)
    assert {g.key.model_version for g in result.groups} == {"2"}
    with pytest.raises(SpecError, match="names none"):
        run_audit(spark, spec)  # which reference? the rows carry versions and the spec names none


def test_incremental_runs_each_version_from_its_own_last_audit(setup, spark):
    spec, _, _, _ = setup
    again = run_audits(spark, spec, incremental=True, end=T0 + timedelta(days=REF_DAYS + AUDIT_DAYS))
    assert [a.version for a in again] == ["1", "2", "3"]
    assert [a.nothing_new is not None for a in again] == [True, True, False]  # 3 was never audited
