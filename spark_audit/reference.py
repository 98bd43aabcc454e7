"""Reference profiles as MLflow artifacts, tied to registered model versions.

A reference is a profile JSON logged as ``spark_audit/reference_profile.json``
on an MLflow run. When the audit names a registered model version, that
version gets the tag ``spark_audit.reference_run_id`` pointing at the run, so
``models:/name/version`` and ``models:/name@alias`` resolve to the reference.

URIs accepted by ``load_reference``:
``runs:/<run_id>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
or a local ``.json`` file path (``file:/...`` too).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from spark_audit import tracking
from spark_audit.errors import ReferenceError_
from spark_audit.mlflow_text import Tag
from spark_audit.profile.state import TableProfile
from spark_audit.spec import AuditSpec, MlflowSpec

REF_ARTIFACT_DIR = "spark_audit"
REF_ARTIFACT = f"{REF_ARTIFACT_DIR}/reference_profile.json"
# the value of the experiment tag (Tag.EXPERIMENT_KIND) MLflow 3's UI reads to choose the runs view
# ("Machine learning") over the GenAI view
EXPERIMENT_KIND_ML = "custom_model_development"


def mlflow_client(ml: MlflowSpec):
    """An MLflow client on the spec's tracking URI, checked to be reachable.

    HTTP retries are capped (unless the environment sets them) so an
    unreachable server fails in seconds with a clear message, not minutes
    (``spark_audit.tracking``).
    """
    tracking.apply_defaults()
    if ml.tracking_uri:
        mlflow.set_tracking_uri(ml.tracking_uri)
    if ml.registry_uri:
        mlflow.set_registry_uri(ml.registry_uri)
    client = MlflowClient(tracking_uri=ml.tracking_uri, registry_uri=ml.registry_uri)
    tracking.check_reachable(client)
    return client


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def ensure_experiment(client, ml: MlflowSpec) -> str:
    """The spec's experiment (created if missing), tagged as a machine-learning experiment (a kind already set
    is left alone). The tag says what the experiment holds, but MLflow 3.17+'s UI does not read it to choose
    its view: that comes from the URL's ``workflowType``, which every link spark-audit writes carries
    (``mlflow_text.ML_VIEW``)."""
    exp = client.get_experiment_by_name(ml.experiment)
    if exp is not None:
        if not (exp.tags or {}).get(Tag.EXPERIMENT_KIND):
            try:
                client.set_experiment_tag(exp.experiment_id, Tag.EXPERIMENT_KIND, EXPERIMENT_KIND_ML)
            except MlflowException as e:  # an experiment this identity may only log runs to: left as it is
                if tracking.lost_server(e):
                    raise
        return exp.experiment_id
    location = ml.artifact_location
    if location is None and ml.tracking_uri and ml.tracking_uri.startswith("sqlite:///"):
        # keep artifacts beside the SQLite store rather than in ./mlruns of whatever the cwd is
        db = Path(ml.tracking_uri[len("sqlite:///"):])
        location = (db.parent / "mlartifacts").resolve().as_uri()
    return client.create_experiment(ml.experiment, artifact_location=location,
                                    tags={Tag.EXPERIMENT_KIND: EXPERIMENT_KIND_ML})


def resolve_model_version(client, name: str, version: str | None, alias: str | None):
    try:
        if alias:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, str(version))
    except Exception as e:  # noqa: BLE001
        what = f"@{alias}" if alias else f"version {version}"
        if tracking.lost_server(e):  # not an answer: the server is gone
            raise tracking.error(client, f"resolving registered model {name!r} {what}", e) from e
        raise ReferenceError_(f"registered model {name!r} {what} not found: {_short(e)}") from None


@dataclass(frozen=True)
class LoadedReference:
    profile: TableProfile
    uri: str
    run_id: str | None


def log_profile_artifact(client, run_id: str, profile: TableProfile) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference_profile.json"
        path.write_text(profile.to_json())
        client.log_artifact(run_id, str(path), artifact_path=REF_ARTIFACT_DIR)


def _download(client, run_id: str, uri: str) -> TableProfile:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, REF_ARTIFACT, tmp)
        except Exception as e:  # noqa: BLE001
            if tracking.lost_server(e):  # not an answer: the server is gone
                raise tracking.error(client, f"loading reference {uri!r}", e) from e
            raise ReferenceError_(
                f"reference {uri!r}: run {run_id} has no artifact {REF_ARTIFACT} ({_short(e)}); "
                "build one with `spark-audit reference build`"
            ) from None
        return _parse(Path(local).read_text(), uri)


def _parse(text: str, uri: str) -> TableProfile:
    try:
        return TableProfile.from_json(text)
    except (ValueError, KeyError, TypeError) as e:
        raise ReferenceError_(f"reference {uri!r} is not a valid spark-audit profile: {e}") from None


def load_reference(client, uri: str) -> LoadedReference:
    m = re.match(r"^runs:/([^/]+)", uri)
    if m:
        run_id = m.group(1)
        return LoadedReference(_download(client, run_id, uri), uri, run_id)
    m = re.match(r"^models:/([^/@]+)(?:/(\d+)|@([\w-]+))$", uri)
    if m:
        name, version, alias = m.groups()
        mv = resolve_model_version(client, name, version, alias)
        run_id = (mv.tags or {}).get(Tag.REFERENCE_RUN) or mv.run_id
        if not run_id:
            raise ReferenceError_(f"reference {uri!r}: model version {mv.version} has no reference run")
        return LoadedReference(_download(client, run_id, uri), uri, run_id)
    path = Path(uri[len("file:"):] if uri.startswith("file:") else uri)
    if not path.exists():
        raise ReferenceError_(f"reference {uri!r} not found")
    return LoadedReference(_parse(path.read_text(), uri), uri, None)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _reference_run_of(client, spec: AuditSpec, version: str) -> str | None:
    """The newest finished reference run this audit built for ``version`` (for a version that is
    not registered, or registered without the reference tag)."""
    exp = client.get_experiment_by_name(spec.mlflow.experiment)
    if exp is None:
        return None
    found = client.search_runs(
        [exp.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
        filter_string=(f"tags.`spark_audit.kind` = 'reference' and tags.`spark_audit.audit` = '{_quoted(spec.name)}' "
                       f"and tags.model_version = '{_quoted(version)}' and attributes.status = 'FINISHED'"))
    return found[0].info.run_id if found else None


def find_reference(client, spec: AuditSpec) -> LoadedReference:
    """The spec's reference: ``reference.uri`` when set; for a named model version, the run its
    registry tag points at, else the newest reference this audit built for that version; otherwise
    what ``reference_uri()`` names (an alias)."""
    if spec.reference.uri or not (spec.model.name and spec.model.version):
        return load_reference(client, spec.reference_uri())
    name, version = spec.model.name, spec.model.version
    uri = f"models:/{name}/{version}"
    with tracking.tracking_calls(client, f"looking up the reference of {uri}"):
        try:
            mv = client.get_model_version(name, version)
        except Exception as e:  # noqa: BLE001
            if tracking.lost_server(e):
                raise
            mv = None  # not registered: a reference run may still exist
        run_id = (mv.tags or {}).get(Tag.REFERENCE_RUN) if mv is not None else None
        run_id = run_id or _reference_run_of(client, spec, version)
    # last, as models:/ URIs always did: the version's own run, if a reference was logged there
    run_id = run_id or (mv.run_id if mv is not None else None)
    if run_id is None:
        raise ReferenceError_(
            f"model {name!r} version {version} has no reference: build one with "
            f"`spark-audit reference build {spec.file or 'SPEC'} --model-version {version}`")
    return LoadedReference(_download(client, run_id, uri), f"runs:/{run_id}", run_id)
