"""Reference profiles in a real MLflow store: by run, by model version, by alias; clear errors."""

import time

import pytest

from spark_audit.errors import ReferenceError_, TrackingError
from spark_audit.mlflow_text import Tag
from spark_audit.profile.state import ColumnProfile, GroupKey, TableProfile
from spark_audit.reference import (
    ensure_experiment,
    load_reference,
    log_profile_artifact,
    mlflow_client,
)
from spark_audit.spec import MlflowSpec


def _profile(n=10):
    col = ColumnProfile(name="x", kind="numeric", dtype="double", count=n, n_finite=n, mean=1.0, m2=0.5,
                        min=0.0, max=2.0)
    return TableProfile(GroupKey(model_version="1"), n, {"x": col}, (("x", "double"),),
                        slices={"seg=a": TableProfile(GroupKey(slice="seg=a"), 4, {"x": col})})


@pytest.fixture()
def ml(tmp_path):
    spec = MlflowSpec(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="refs")
    client = mlflow_client(spec)
    exp = ensure_experiment(client, spec)
    return spec, client, exp


def test_experiment_artifacts_live_beside_the_sqlite_store(ml, tmp_path):
    spec, client, exp = ml
    assert client.get_experiment(exp).artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()
    assert ensure_experiment(client, spec) == exp  # idempotent


def test_load_by_run_model_version_and_alias(ml):
    _, client, exp = ml
    run = client.create_run(exp)
    log_profile_artifact(client, run.info.run_id, _profile())
    client.create_registered_model("m")
    mv = client.create_model_version("m", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("m", "champion", mv.version)
    for uri in (f"runs:/{run.info.run_id}", f"models:/m/{mv.version}", "models:/m@champion"):
        ref = load_reference(client, uri)
        assert ref.profile == _profile() and ref.run_id == run.info.run_id and ref.uri == uri
        assert ref.profile.slices["seg=a"].row_count == 4


def test_model_version_tag_points_at_a_separate_reference_run(ml):
    _, client, exp = ml
    train = client.create_run(exp)
    ref_run = client.create_run(exp)
    log_profile_artifact(client, ref_run.info.run_id, _profile(25))
    client.create_registered_model("m2")
    mv = client.create_model_version("m2", f"{train.info.artifact_uri}/model", run_id=train.info.run_id)
    client.set_model_version_tag("m2", mv.version, Tag.REFERENCE_RUN, ref_run.info.run_id)
    assert load_reference(client, "models:/m2/1").profile.row_count == 25


def test_missing_references_are_named(ml, tmp_path):
    _, client, exp = ml
    run = client.create_run(exp)
    with pytest.raises(ReferenceError_, match="has no artifact spark_audit/reference_profile.json"):
        load_reference(client, f"runs:/{run.info.run_id}")
    with pytest.raises(ReferenceError_, match="registered model 'nope' version 3 not found"):
        load_reference(client, "models:/nope/3")
    with pytest.raises(ReferenceError_, match="@prod not found"):
        load_reference(client, "models:/nope@prod")
    with pytest.raises(ReferenceError_, match="not found"):
        load_reference(client, str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ReferenceError_, match="not a valid spark-audit profile"):
        load_reference(client, str(bad))


def test_local_json_reference(tmp_path):
    p = tmp_path / "ref.json"
    p.write_text(_profile().to_json())
    assert load_reference(None, str(p)).profile == _profile()
    assert load_reference(None, f"file:{p}").profile == _profile()


def test_unreachable_tracking_server_fails_fast_with_a_clear_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    t = time.monotonic()
    with pytest.raises(TrackingError, match="'http://127.0.0.1:9' is not reachable"):
        mlflow_client(MlflowSpec(tracking_uri="http://127.0.0.1:9"))
    assert time.monotonic() - t < 30
