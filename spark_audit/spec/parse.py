"""Reading an audit spec: YAML (or a dict) into ``spark_audit.spec.model``'s objects, validated key by key.

Every error names the file, the key path and what was expected, and is raised
before any Spark job starts. Relative paths are taken relative to the current
working directory (where the scheduler starts the job). Defaults are read from the
dataclasses, never restated here.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from spark_audit.catalog import DRIFT_KINDS, ENGINES, KINDS, SCORE_BINS, TASKS, task_metrics
from spark_audit.drift.stats import STATISTICS
from spark_audit.errors import SpecError
from spark_audit.spec.model import (
    CYCLES,
    NOTIFY_KINDS,
    AuditSpec,
    ContractRef,
    DriftOverride,
    DriftSpec,
    FairnessSpec,
    FeatureSpec,
    FindingsSpec,
    GateConfig,
    GateSlices,
    GateVersionColumns,
    IncidentsSpec,
    LabelsSpec,
    MlflowSpec,
    ModelSpec,
    NotifyTarget,
    OutputSpec,
    ProfileSpec,
    QualityConfig,
    QualitySpec,
    ReferenceSpec,
    RubricSpec,
    SourceSpec,
    TrainingSpec,
    WindowSpec,
)
from spark_audit.timeutil import parse_duration, parse_time
from spark_audit.yamlread import KeyPathReader, join, load_yaml


class _Reader(KeyPathReader):
    def section(self, value: Any, key: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        """A mapping of the spec (None reads as empty) with only ``allowed`` keys and the ``required`` ones set."""
        value = {} if value is None else self.mapping(value, key, f"a mapping with keys {', '.join(allowed)}")
        self.keys(value, key, allowed)
        for k in required:
            if value.get(k) in (None, ""):
                raise self.fail(join(key, k), "is required")
        return dict(value)

    def str_(self, d: dict, k: str, key: str, default: str | None = None) -> str | None:
        v = d.get(k, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise self.fail(join(key, k), f"expected a string, got {type(v).__name__}")
        return str(v)

    def int_(self, d: dict, k: str, key: str, default: int | None, lo: int | None = None, hi: int | None = None):
        v = d.get(k)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(join(key, k), f"expected an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(join(key, k), f"expected an integer in [{lo}, {hi}], got {v}")
        return v

    def float_(self, d: dict, k: str, key: str, default: float | None, lo: float | None = None):
        v = d.get(k)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(join(key, k), f"expected a number, got {v!r}")
        if lo is not None and v < lo:
            raise self.fail(join(key, k), f"expected a number >= {lo}, got {v}")
        return float(v)

    def bool_(self, d: dict, k: str, key: str, default: bool) -> bool:
        v = d.get(k, default)
        if not isinstance(v, bool):
            raise self.fail(join(key, k), f"expected true or false, got {v!r}")
        return v

    def time(self, d: dict, k: str, key: str) -> datetime | None:
        v = d.get(k)
        if v is None:
            return None
        try:
            return parse_time(v)
        except ValueError as e:
            raise self.fail(join(key, k), str(e)) from None

    def duration(self, v: Any, key: str, spark_interval: bool = False) -> None:
        try:
            parse_duration(v, spark_interval=spark_interval)
        except ValueError as e:
            raise self.fail(key, str(e)) from None

    def str_list(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "expected a list of names")
        return tuple(value)


def _date_values(v: Any) -> Any:
    # yaml turns 2024-01-01 into a date; accept it as midnight UTC
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    if isinstance(v, dict):
        return {k: _date_values(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_date_values(x) for x in v]
    return v


def parse_spec(data: Any, *, file: str | None = None) -> AuditSpec:
    r = _Reader(file)
    data = _date_values(data)
    top = r.section(
        data, "",
        ("name", "source", "window", "model", "features", "slices", "reference", "drift", "profile",
         "output", "mlflow", "contract", "quality", "findings", "gate", "training", "rubric", "incidents",
         "notify"),
        required=("name", "source", "features", "output"),
    )
    source = _parse_source(r, top["source"], "source")
    w = r.section(top.get("window"), "window", ("size", "start", "end"))
    size = r.str_(w, "size", "window")
    if size is not None:
        r.duration(size, "window.size", spark_interval=True)
    if size and not source.timestamp_column:
        raise r.fail("window.size", "windows need source.timestamp_column")
    window = WindowSpec(size=size, start=r.time(w, "start", "window"), end=r.time(w, "end", "window"))
    if window.start and window.end and window.start >= window.end:
        raise r.fail("window.end", "must be after window.start")

    m = r.section(top.get("model"), "model", ("name", "version", "alias", "version_column"))
    model = ModelSpec(
        name=r.str_(m, "name", "model"), version=r.str_(m, "version", "model"),
        alias=r.str_(m, "alias", "model"), version_column=r.str_(m, "version_column", "model"),
    )
    if model.version and model.alias:
        raise r.fail("model", "set model.version or model.alias, not both")

    feats = top["features"]
    if not isinstance(feats, list) or not feats:
        raise r.fail("features", "expected a non-empty list of column names or {name: ..., kind: ...} mappings")
    features = []
    seen: set[str] = set()
    for i, f in enumerate(feats):
        key = f"features[{i}]"
        if isinstance(f, str):
            f = {"name": f}
        fd = r.section(f, key, ("name", "kind", "drift", "importance"), required=("name",))
        kind = r.str_(fd, "kind", key)
        if kind is not None and kind not in KINDS:
            raise r.fail(f"{key}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        dd = r.section(fd.get("drift"), f"{key}.drift", ("statistic", "threshold"))
        stat = r.str_(dd, "statistic", f"{key}.drift")
        if stat is not None and stat not in STATISTICS:
            raise r.fail(f"{key}.drift.statistic", f"expected one of {', '.join(STATISTICS)}, got {stat!r}")
        if stat is not None and kind is not None:
            _check_statistic(r, f"{key}.drift.statistic", stat, kind, str(fd["name"]))
        name = str(fd["name"])
        if name in seen:
            raise r.fail(f"{key}.name", f"column {name!r} is listed twice")
        seen.add(name)
        features.append(FeatureSpec(
            name=name, kind=kind,
            drift=DriftOverride(stat, r.float_(dd, "threshold", f"{key}.drift", None, lo=0.0)),
            importance=r.float_(fd, "importance", key, FeatureSpec.importance, lo=0.0),
        ))

    ref = r.section(top.get("reference"), "reference", ("uri", "start", "end", "where", "cycle"))
    uri = r.str_(ref, "uri", "reference")
    if uri is not None and not re.match(r"^(runs:/[^/]+|models:/[^/@]+(/\d+|@[\w-]+)|file:/.+|[^:]+\.json)$", uri):
        raise r.fail("reference.uri", "expected runs:/<run_id>, models:/<name>/<version>, models:/<name>@<alias> "
                                      f"or a path to a profile .json, got {uri!r}")
    if uri is not None and uri.endswith(".json") and not uri.startswith("file:"):
        uri = local_path(uri)
    cycle = r.str_(ref, "cycle", "reference", ReferenceSpec.cycle)
    if cycle not in CYCLES:
        raise r.fail("reference.cycle", f"expected one of {', '.join(CYCLES)}, got {cycle!r}")
    reference = ReferenceSpec(uri=uri, start=r.time(ref, "start", "reference"), end=r.time(ref, "end", "reference"),
                              where=r.str_(ref, "where", "reference"), cycle=str(cycle))

    d = r.section(top.get("drift"), "drift", ("bins", "statistics", "share_threshold", "consecutive",
                                              "critical_factor"))
    stats = r.str_list(d.get("statistics", list(DriftSpec.statistics)), "drift.statistics")
    for st in stats:
        if st not in STATISTICS:
            raise r.fail("drift.statistics", f"unknown statistic {st!r}; expected any of {', '.join(STATISTICS)}")
    drift = DriftSpec(
        bins=r.int_(d, "bins", "drift", DriftSpec.bins, lo=2, hi=1000), statistics=stats,
        share_threshold=r.float_(d, "share_threshold", "drift", DriftSpec.share_threshold, lo=0.0),
        consecutive=r.bool_(d, "consecutive", "drift", DriftSpec.consecutive),
        critical_factor=r.float_(d, "critical_factor", "drift", DriftSpec.critical_factor, lo=1.0),
    )
    fs = r.section(top.get("findings"), "findings", ("fdr", "min_rows", "max_row_age", "max_commit_age"))
    ages = {k: r.str_(fs, k, "findings") for k in ("max_row_age", "max_commit_age")}
    for k, v in ages.items():
        if v is not None:
            r.duration(v, f"findings.{k}")
    fdr = r.float_(fs, "fdr", "findings", FindingsSpec.fdr, lo=0.0)
    if fdr is None or not 0.0 < fdr < 1.0:
        raise r.fail("findings.fdr", f"expected a false discovery rate in (0, 1), got {fdr!r}")
    findings = FindingsSpec(fdr=fdr, min_rows=r.int_(fs, "min_rows", "findings", FindingsSpec.min_rows, lo=0),
                            **ages)
    p = r.section(top.get("profile"), "profile", ("top_k", "kll_k", "kll", "hll", "engine"))
    for key, allowed in (("kll", ("auto", "always")), ("hll", ("categorical", "all", "none")), ("engine", ENGINES)):
        if key in p and p[key] not in allowed:
            raise r.fail(f"profile.{key}", f"expected one of {', '.join(allowed)}, got {p[key]!r}")
    profile = ProfileSpec(top_k=r.int_(p, "top_k", "profile", ProfileSpec.top_k, lo=0, hi=10000),
                          kll_k=r.int_(p, "kll_k", "profile", ProfileSpec.kll_k, lo=8, hi=65535),
                          kll=p.get("kll", ProfileSpec.kll), hll=p.get("hll", ProfileSpec.hll),
                          engine=p.get("engine", ProfileSpec.engine))
    o = r.section(top["output"], "output", ("path", "database"))
    if bool(o.get("path")) == bool(o.get("database")):
        raise r.fail("output", "set exactly one of output.path (a folder for Delta tables) or output.database")
    out_path = r.str_(o, "path", "output")
    output = OutputSpec(path=local_path(out_path) if out_path else None, database=r.str_(o, "database", "output"))
    ml = r.section(top.get("mlflow"), "mlflow", ("tracking_uri", "registry_uri", "experiment", "artifact_location",
                                                 "ui_url"))
    mlflow = MlflowSpec(
        tracking_uri=r.str_(ml, "tracking_uri", "mlflow"), registry_uri=r.str_(ml, "registry_uri", "mlflow"),
        experiment=r.str_(ml, "experiment", "mlflow", MlflowSpec.experiment) or MlflowSpec.experiment,
        artifact_location=r.str_(ml, "artifact_location", "mlflow"), ui_url=r.str_(ml, "ui_url", "mlflow"),
    )
    if mlflow.ui_url and not re.match(r"^https?://", mlflow.ui_url):
        raise r.fail("mlflow.ui_url", f"expected an http(s) address of the MLflow UI, got {mlflow.ui_url!r}")
    inc = r.section(top.get("incidents"), "incidents", ("resolve_after",))
    incidents = IncidentsSpec(resolve_after=r.int_(inc, "resolve_after", "incidents", IncidentsSpec.resolve_after,
                                                   lo=1, hi=1000))
    notify = _parse_notify(r, top.get("notify"))
    slices = r.str_list(top.get("slices"), "slices")
    contract = None
    if top.get("contract") is not None:
        c = top["contract"]
        c = {"path": c} if isinstance(c, str) else c
        cd = r.section(c, "contract", ("path", "sample_rows", "mask_columns"), required=("path",))
        contract = ContractRef(
            path=local_path(str(cd["path"])),
            sample_rows=r.int_(cd, "sample_rows", "contract", ContractRef.sample_rows, lo=0, hi=10000),
            mask_columns=r.str_list(cd.get("mask_columns"), "contract.mask_columns"),
        )
    quality = _parse_quality(r, top.get("quality")) if top.get("quality") is not None else None
    if quality and quality.fairness and quality.fairness.attribute not in slices:
        raise r.fail("quality.fairness.attribute", f"{quality.fairness.attribute!r} must also be listed in "
                                                   f"slices (groups are slices); slices: {list(slices)}")
    gate = _parse_gate(r, top["gate"], quality, model, source) if top.get("gate") is not None else None
    training = None
    if top.get("training") is not None:
        tk = "training"
        td = r.section(top["training"], tk, ("path", "table", "version", "timestamp_column", "start", "end", "where"))
        tsource = _parse_source(r, {k: v for k, v in td.items() if k in ("path", "table", "version",
                                                                          "timestamp_column")}, tk)
        training = TrainingSpec(source=tsource, start=r.time(td, "start", tk), end=r.time(td, "end", tk),
                                where=r.str_(td, "where", tk))
        if (training.start or training.end) and not tsource.timestamp_column:
            raise r.fail("training.start", "a time range needs training.timestamp_column")
    rd = r.section(top.get("rubric"), "rubric", ("max_model_age", "schedule"))
    rubric = RubricSpec(max_model_age=r.str_(rd, "max_model_age", "rubric", RubricSpec.max_model_age)
                        or RubricSpec.max_model_age, schedule=r.str_(rd, "schedule", "rubric"))
    for k in ("max_model_age", "schedule"):
        if getattr(rubric, k) is not None:
            r.duration(getattr(rubric, k), f"rubric.{k}")
    return AuditSpec(
        name=str(top["name"]), source=source, features=tuple(features), output=output, window=window,
        model=model, slices=slices, reference=reference, drift=drift, profile=profile, mlflow=mlflow,
        contract=contract, quality=quality, findings=findings, gate=gate, training=training, rubric=rubric,
        incidents=incidents, notify=notify, file=file,
    )


def _parse_notify(r: _Reader, value: Any) -> tuple[NotifyTarget, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise r.fail("notify", "expected a list of targets like {type: slack, url: https://hooks.slack.com/...}")
    out = []
    for i, t in enumerate(value):
        key = f"notify[{i}]"
        d = r.section(t, key, ("type", "url", "routing_key", "min_severity"), required=("type",))
        kind = r.str_(d, "type", key)
        if kind not in NOTIFY_KINDS:
            raise r.fail(f"{key}.type", f"expected one of {', '.join(NOTIFY_KINDS)}, got {kind!r}")
        url = r.str_(d, "url", key, "https://events.pagerduty.com/v2/enqueue" if kind == "pagerduty" else None)
        if not url or not re.match(r"^https?://", url):
            raise r.fail(f"{key}.url", f"expected an http(s) URL, got {url!r}")
        if kind == "pagerduty" and not d.get("routing_key"):
            raise r.fail(f"{key}.routing_key", "PagerDuty needs the integration's routing key")
        sev = r.str_(d, "min_severity", key, NotifyTarget.min_severity)
        if sev not in ("info", "warning", "error", "critical"):
            raise r.fail(f"{key}.min_severity", f"expected info, warning, error or critical, got {sev!r}")
        out.append(NotifyTarget(kind=str(kind), url=url, routing_key=r.str_(d, "routing_key", key),
                                min_severity=str(sev)))
    return tuple(out)


def _parse_gate(r: _Reader, value: Any, quality: QualityConfig | None, model: ModelSpec,
                source: SourceSpec) -> GateConfig:
    key = "gate"
    g = r.section(value, key, ("champion", "key", "columns", "start", "end", "where", "metrics", "must_improve",
                               "max_drop", "slices", "confidence", "replicates", "seed", "min_rows"))
    if quality is None:
        raise r.fail(key, "a gate compares model quality: the spec needs a quality section (task, label, ...)")
    task = quality.measure.task
    names = task_metrics(task, selectable=True)
    metrics = r.str_list(g.get("metrics"), f"{key}.metrics")
    must_improve = r.str_list(g.get("must_improve"), f"{key}.must_improve")
    for k, listed in (("metrics", metrics), ("must_improve", must_improve)):
        for m in listed:
            if m not in names:
                raise r.fail(f"{key}.{k}", f"{m!r} is not a {task} metric; expected any of {', '.join(names)}")
    columns = []
    if g.get("columns") is not None:
        ck = f"{key}.columns"
        cols = r.mapping(g["columns"], ck, "a mapping of model version to {score: ..., prediction: ...}")
        for version, spec in cols.items():
            vk = f"{ck}.{version}"
            cd = r.section(spec, vk, ("score", "prediction"))
            vc = GateVersionColumns(str(version), r.str_(cd, "score", vk), r.str_(cd, "prediction", vk))
            if task == "binary" and not (vc.score or vc.prediction):
                raise r.fail(vk, "a binary task needs the version's score or prediction column")
            if task == "regression" and not vc.prediction:
                raise r.fail(vk, "a regression task needs the version's prediction column")
            columns.append(vc)
    keys = r.str_list(g.get("key"), f"{key}.key")
    if not columns and not model.version_column:
        raise r.fail(key, "say where each version's predictions are: model.version_column (a row per version, "
                          "paired by gate.key) or gate.columns (each version's own columns)")
    if not columns and not keys:
        raise r.fail(f"{key}.key", "with a row per version (model.version_column), gate.key names the columns "
                                   "that pair a row of the candidate with the same row of the champion")
    if not model.name:
        raise r.fail("model.name", "the gate compares versions of a registered model: set model.name")
    sd = r.section(g.get("slices"), f"{key}.slices", ("protect", "max_drop", "min_rows"))
    slices = GateSlices(
        protect=r.bool_(sd, "protect", f"{key}.slices", True),
        max_drop=r.float_(sd, "max_drop", f"{key}.slices", GateSlices.max_drop, lo=0.0) or 0.0,
        min_rows=r.int_(sd, "min_rows", f"{key}.slices", GateSlices.min_rows, lo=1) or GateSlices.min_rows,
    )
    confidence = r.float_(g, "confidence", key, 0.95, lo=0.0)
    if confidence is None or not 0.5 <= confidence < 1.0:
        raise r.fail(f"{key}.confidence", f"expected a confidence level in [0.5, 1), got {confidence!r}")
    start, end = r.time(g, "start", key), r.time(g, "end", key)
    if (start or end) and not source.timestamp_column:
        raise r.fail(f"{key}.start", "an evaluation range needs source.timestamp_column")
    if start and end and start >= end:
        raise r.fail(f"{key}.end", "must be after gate.start")
    return GateConfig(
        champion=r.str_(g, "champion", key, "champion") or "champion", key=keys, columns=tuple(columns),
        start=start, end=end, where=r.str_(g, "where", key), metrics=metrics, must_improve=must_improve,
        max_drop=r.float_(g, "max_drop", key, 0.0, lo=0.0) or 0.0, slices=slices, confidence=confidence,
        replicates=r.int_(g, "replicates", key, 200, lo=20, hi=2000) or 200,
        seed=r.int_(g, "seed", key, 0, lo=0) or 0, min_rows=r.int_(g, "min_rows", key, 200, lo=1) or 200,
    )


def _check_statistic(r: _Reader, key: str, stat: str, kind: str, column: str) -> None:
    if kind not in DRIFT_KINDS:
        raise r.fail(key, f"{kind} columns are not compared for drift, so {column!r} takes no drift statistic")
    if not STATISTICS[stat].applies(kind):
        fits = [s for s, info in STATISTICS.items() if info.applies(kind)]
        raise r.fail(key, f"statistic {stat!r} does not apply to the {kind} column {column!r}; "
                          f"{kind} columns take {', '.join(fits)}")


def check_feature_kinds(spec: AuditSpec, kinds: dict[str, str]) -> None:
    """The statistic-versus-kind check for features whose kind the spec leaves to the table's schema:
    run when the schema is read, before the scan. ``kinds`` maps column names to their kinds."""
    r = _Reader(spec.file)
    for i, f in enumerate(spec.features):
        if f.drift.statistic and f.kind is None and f.name in kinds:
            _check_statistic(r, f"features[{i}].drift.statistic", f.drift.statistic, kinds[f.name], f.name)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def local_path(path: str) -> str:
    """A local path made absolute against the working directory (Spark SQL's ``delta.`path` `` does not
    resolve a relative one); a URI (``s3://``, ``dbfs:/``, ``file:/``) is left as it is.

    >>> local_path("s3://bucket/table")
    's3://bucket/table'
    >>> import os; local_path("out/table") == os.path.join(os.getcwd(), "out", "table")
    True
    """
    return path if _SCHEME.match(path) else os.path.abspath(os.path.expanduser(path))


def _parse_source(r: _Reader, value: Any, key: str) -> SourceSpec:
    s = r.section(value, key, ("path", "table", "version", "timestamp_column", "where"))
    if bool(s.get("path")) == bool(s.get("table")):
        raise r.fail(key, f"set exactly one of {key}.path (a Delta folder) or {key}.table (a table name)")
    path = r.str_(s, "path", key)
    return SourceSpec(
        path=local_path(path) if path else None, table=r.str_(s, "table", key),
        version=r.int_(s, "version", key, None, lo=0),
        timestamp_column=r.str_(s, "timestamp_column", key), where=r.str_(s, "where", key),
    )


def _parse_quality(r: _Reader, value: Any) -> QualityConfig:
    key = "quality"
    q = r.section(value, key, ("task", "label", "prediction", "score", "positive", "threshold", "score_bins",
                               "labels", "metrics", "max_degradation", "critical_degradation", "history",
                               "min_history", "k", "max_rel_change", "estimate", "fairness", "min_count"),
                  required=("task", "label"))
    task = r.str_(q, "task", key)
    if task not in TASKS:
        raise r.fail("quality.task", f"expected one of {', '.join(TASKS)}, got {task!r}")
    labels = None
    if q.get("labels") is not None:
        lk = "quality.labels"
        ld = r.section(q["labels"], lk, ("path", "table", "version", "keys", "label_time_column", "max_delay"),
                       required=("keys",))
        if ld.get("max_delay") is not None:
            r.duration(ld["max_delay"], f"{lk}.max_delay")
        labels = LabelsSpec(
            source=_parse_source(r, {k: v for k, v in ld.items() if k in ("path", "table", "version")}, lk),
            keys=r.str_list(ld["keys"], f"{lk}.keys"),
            label_time_column=r.str_(ld, "label_time_column", lk), max_delay=r.str_(ld, "max_delay", lk),
        )
    metrics = r.str_list(q.get("metrics"), "quality.metrics")
    for m in metrics:
        if m not in task_metrics(str(task), selectable=True):
            raise r.fail("quality.metrics", f"{m!r} is not a {task} metric; expected any of "
                                            f"{', '.join(task_metrics(str(task), selectable=True))}")
    positive = q.get("positive", 1)
    if not isinstance(positive, (str, int, float, bool)):
        raise r.fail("quality.positive", f"expected a label value, got {positive!r}")
    try:
        measure = QualitySpec(
            task=str(task), label=str(r.str_(q, "label", key)), prediction=r.str_(q, "prediction", key),
            score=r.str_(q, "score", key), positive=positive,
            threshold=r.float_(q, "threshold", key, 0.5, lo=0.0) or 0.0,
            score_bins=r.int_(q, "score_bins", key, SCORE_BINS, lo=2, hi=10000) or SCORE_BINS,
        )
    except SpecError as e:  # QualitySpec names the key; put it under quality.
        raise r.fail(f"quality.{e.key}" if e.key else "quality", str(e).split(": ", 1)[-1]) from None
    fairness = None
    if q.get("fairness") is not None:
        fk = "quality.fairness"
        fd = r.section(q["fairness"], fk, ("attribute", "max_gap", "min_ratio"), required=("attribute",))
        if measure.task != "binary":
            raise r.fail(fk, "fairness metrics need a binary task")
        fairness = FairnessSpec(attribute=str(r.str_(fd, "attribute", fk)),
                                max_gap=r.float_(fd, "max_gap", fk, FairnessSpec.max_gap, lo=0.0),
                                min_ratio=r.float_(fd, "min_ratio", fk, FairnessSpec.min_ratio, lo=0.0))
    d = QualityConfig
    return QualityConfig(
        measure=measure, labels=labels, metrics=metrics, fairness=fairness,
        max_degradation=r.float_(q, "max_degradation", key, d.max_degradation, lo=0.0),
        critical_degradation=r.float_(q, "critical_degradation", key, d.critical_degradation, lo=0.0),
        history=r.int_(q, "history", key, d.history, lo=2, hi=1000),
        min_history=r.int_(q, "min_history", key, d.min_history, lo=2, hi=1000),
        k=r.float_(q, "k", key, d.k, lo=0.0),
        max_rel_change=r.float_(q, "max_rel_change", key, d.max_rel_change, lo=0.0),
        estimate=r.bool_(q, "estimate", key, d.estimate),
        min_count=r.int_(q, "min_count", key, d.min_count, lo=0, hi=10**9),
    )


def load_spec(path: str | Path) -> AuditSpec:
    """Read and validate an audit spec YAML file."""
    return parse_spec(load_yaml(path, "audit spec"), file=str(path))
