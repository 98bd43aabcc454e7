"""The audit spec: one YAML file per audit, parsed into typed, validated objects.

Every error names the file, the key path and what was expected, and is raised
before any Spark job starts. Relative paths are taken relative to the current
working directory (where the scheduler starts the job).

Example (see ``conf/churn_audit.yaml`` for every key)::

    name: churn-audit
    source: {path: data/churn_features, timestamp_column: event_ts}
    window: {size: 1 day}
    model: {name: churn, version: "3"}
    features: [age, {name: plan, kind: categorical}]
    reference: {uri: "models:/churn/3"}
    output: {path: audit-results}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from spark_audit.catalog import DRIFT_KINDS, KINDS, SCORE_BINS, TASKS, default_metrics, task_metrics
from spark_audit.drift.stats import STATISTICS
from spark_audit.errors import SpecError
from spark_audit.timeutil import parse_duration, parse_time
from spark_audit.yamlread import KeyPathReader, join, load_yaml


@dataclass(frozen=True)
class QualitySpec:
    """What to measure and on which columns.

    task:       "binary" or "regression".
    label:      column holding the true label (rows where it is null are unlabelled).
    prediction: predicted label (binary) or value (regression). For binary it may be
                omitted when ``score`` is given: predicted positive = score >= threshold.
    score:      probability of the positive class (binary only; enables roc_auc,
                log_loss and ece).
    positive:   label value of the positive class (binary), compared with ``label``
                and ``prediction``. A number or bool compares numerically (so 1 also
                matches boolean true); anything else, e.g. "yes", compares as is.
    threshold:  decision threshold on ``score`` when there is no ``prediction``.
    score_bins: number of uniform score bins on [0, 1] for ROC AUC and calibration.
    """

    task: str
    label: str
    prediction: str | None = None
    score: str | None = None
    positive: Any = 1
    threshold: float = 0.5
    score_bins: int = SCORE_BINS

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SpecError(f"expected one of {list(TASKS)}, got {self.task!r}", key="task")
        if not isinstance(self.label, str) or not self.label:
            raise SpecError("expected a column name", key="label")
        if self.task == "binary":
            if self.prediction is None and self.score is None:
                raise SpecError(
                    "a binary task needs a 'prediction' or a 'score' column", key="prediction"
                )
        else:
            if self.prediction is None:
                raise SpecError("a regression task needs a 'prediction' column", key="prediction")
            if self.score is not None:
                raise SpecError("'score' applies to binary tasks only", key="score")
        if not (isinstance(self.threshold, (int, float)) and 0.0 <= self.threshold <= 1.0):
            raise SpecError(f"expected a number in [0, 1], got {self.threshold!r}", key="threshold")
        if isinstance(self.score_bins, bool) or not isinstance(self.score_bins, int):
            raise SpecError(f"expected an integer, got {self.score_bins!r}", key="score_bins")
        if not 2 <= self.score_bins <= 10_000:
            raise SpecError(
                f"expected an integer in [2, 10000], got {self.score_bins}", key="score_bins"
            )


@dataclass(frozen=True)
class SourceSpec:
    path: str | None = None
    table: str | None = None
    version: int | None = None
    timestamp_column: str | None = None
    where: str | None = None

    @property
    def display(self) -> str:
        return self.table or str(self.path)


@dataclass(frozen=True)
class WindowSpec:
    size: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    version_column: str | None = None


@dataclass(frozen=True)
class DriftOverride:
    statistic: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str | None = None
    drift: DriftOverride = field(default_factory=DriftOverride)
    importance: float = 1.0


@dataclass(frozen=True)
class ReferenceSpec:
    uri: str | None = None  # runs:/<id>, models:/name/version, models:/name@alias; None = the model above
    start: datetime | None = None  # the rows `reference build` profiles
    end: datetime | None = None
    where: str | None = None
    # calendar cycle of the windows (spark_audit.drift.cycle): auto (test for one), on (use the window's
    # natural period untested), day, week, or off
    cycle: str = "auto"


CYCLES = ("auto", "on", "off", "day", "week")


@dataclass(frozen=True)
class TrainingSpec:
    """The rows a model version was trained on, for the training/serving skew (ML Test Score, Monitor 3).

    ``reference build`` profiles them on the serving reference's bins and keeps the profile in the
    reference; every audit then compares each window's features with it. Rows of a table that has
    ``model.version_column`` are narrowed to the version.
    """

    source: SourceSpec
    start: datetime | None = None
    end: datetime | None = None
    where: str | None = None


@dataclass(frozen=True)
class RubricSpec:
    """Limits of the ML Test Score monitoring rubric (``spark_audit.rubric``)."""

    max_model_age: str = "90 days"  # Monitor 4: the training (else reference) rows may be at most this old
    schedule: str | None = None  # Monitor "runs": audits keep up within this (default: twice the window size)


@dataclass(frozen=True)
class DriftSpec:
    bins: int = 20  # reference-quantile bins of numbers (plus 4 tail bins): exact counts for the tests
    statistics: tuple[str, ...] = ("psi", "js")
    share_threshold: float = 0.5
    consecutive: bool = True
    # critical drift: a distance >= threshold x critical_factor, or a test's p-value below
    # threshold / 10**critical_factor (p = 0.00005 for the default 0.05 and 3)
    critical_factor: float = 3.0


@dataclass(frozen=True)
class FindingsSpec:
    """How findings are decided across an audit (see README, "Findings and severities")."""

    fdr: float = 0.05  # false discovery rate: Benjamini-Hochberg across every test of the audit
    min_rows: int = 200  # a group (window x slice x model version) with fewer rows is recorded, not judged
    # freshness: the newest row and the source's latest Delta commit may be at most this old (an interval
    # like "2 days") when the audit reaches the present; None = twice the window size
    max_row_age: str | None = None
    max_commit_age: str | None = None


@dataclass(frozen=True)
class ProfileSpec:
    """``kll``: ``auto`` keeps a numeric column's KLL quantile sketch only where there are no reference
    bins (the reference build's first pass, a column the reference could not bin); ``always`` keeps it in
    every window. ``hll``: the kinds whose distinct count is estimated: ``categorical`` (default),
    ``all``, or ``none``. Sketches cost: see ``spark_audit.profile.exprs.Sketches``."""

    top_k: int = 20
    kll_k: int = 200
    kll: str = "auto"
    hll: str = "categorical"

    @property
    def hll_kinds(self) -> tuple[str, ...]:
        """The column kinds that keep an HLL sketch (``spark_audit.profile.exprs.Sketches.of``)."""
        return {"categorical": ("categorical",), "all": KINDS, "none": ()}[self.hll]


@dataclass(frozen=True)
class OutputSpec:
    path: str | None = None  # folder of Delta tables
    database: str | None = None  # or metastore / Unity Catalog schema ("catalog.schema")


@dataclass(frozen=True)
class MlflowSpec:
    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "spark-audit"
    artifact_location: str | None = None
    # the MLflow UI's address, for links in tags, the CLI and notifications (default: the tracking URI when
    # it is http(s); a SQLite store has no page to link to)
    ui_url: str | None = None


@dataclass(frozen=True)
class IncidentsSpec:
    """How findings become incidents (``spark_audit.incidents``)."""

    resolve_after: int = 2  # an incident resolves once this many audited windows in a row show nothing of it


NOTIFY_KINDS = ("webhook", "slack", "pagerduty")


@dataclass(frozen=True)
class NotifyTarget:
    """One place incidents are sent to when they open, worsen or resolve (``spark_audit.notify``)."""

    kind: str  # webhook (plain JSON), slack (an incoming webhook), pagerduty (Events API v2)
    url: str
    routing_key: str | None = None  # PagerDuty's integration key
    min_severity: str = "warning"


@dataclass(frozen=True)
class LabelsSpec:
    """A separate Delta table of labels, joined to the predictions on ``keys``."""

    source: SourceSpec
    keys: tuple[str, ...]
    label_time_column: str | None = None
    max_delay: str | None = None  # labels later than prediction time + this are ignored


@dataclass(frozen=True)
class FairnessSpec:
    """Compare groups of a protected attribute (one of the audit's slices)."""

    attribute: str
    max_gap: float = 0.1  # largest allowed difference of a rate between groups
    min_ratio: float = 0.8  # smallest allowed ratio of positive-prediction rates (the four-fifths rule)


@dataclass(frozen=True)
class QualityConfig:
    measure: QualitySpec  # task, label, prediction, score, positive, threshold, score_bins
    labels: LabelsSpec | None = None
    metrics: tuple[str, ...] = ()  # watched for decay; default per task
    # relative loss vs the reference that is material: warning at max_degradation, critical at
    # critical_degradation; either also needs evidence beyond the sampling error at this n
    max_degradation: float = 0.02
    critical_degradation: float = 0.10
    history: int = 8  # trailing windows for the mean +/- k std rule
    min_history: int = 5  # fewer earlier windows than this: the rule waits (a std of 3 values says little)
    k: float = 3.0
    max_rel_change: float = 0.2  # window-over-window relative change that is an anomaly
    estimate: bool = True  # label-free estimates for binary classifiers with a score
    fairness: FairnessSpec | None = None
    # a metric whose denominator (actual or predicted positives, the smaller class, labelled rows) is below
    # this in the window or its baseline gives no finding (spark_audit.decay.evidence)
    min_count: int = 30

    def watched(self) -> tuple[str, ...]:
        if self.metrics:
            return self.metrics
        return default_metrics(self.measure.task, has_score=self.measure.score is not None)




@dataclass(frozen=True)
class GateSlices:
    """How the gate protects slices (the audit's ``slices``)."""

    protect: bool = True  # a slice worse beyond max_drop, with evidence, fails the gate
    max_drop: float = 0.02  # in the metric's own units: 0.02 = 2 points of accuracy
    min_rows: int = 200  # a slice with fewer paired, labelled rows is reported, not judged


@dataclass(frozen=True)
class GateVersionColumns:
    """Where one version's predictions are, when each version has its own columns (the wide layout)."""

    version: str
    score: str | None = None
    prediction: str | None = None


@dataclass(frozen=True)
class GateConfig:
    """Before release: a candidate version against the champion on the same labelled rows.

    The rows hold both versions' predictions: one row per version (``model.version_column``, paired by
    ``key``) or one row with each version's own columns (``columns``). Every metric's difference gets a
    paired Poisson-bootstrap interval from the same scan; the rules below turn them into a verdict.
    """

    champion: str = "champion"  # an alias or a version number
    key: tuple[str, ...] = ()  # columns naming an evaluation row (pairs the versions' rows)
    columns: tuple[GateVersionColumns, ...] = ()
    start: datetime | None = None  # the evaluation rows [start, end) (by source.timestamp_column)
    end: datetime | None = None
    where: str | None = None
    metrics: tuple[str, ...] = ()  # must not get worse overall (default: quality.metrics or the task's)
    must_improve: tuple[str, ...] = ()  # must be better, with evidence
    max_drop: float = 0.0  # overall worsening tolerated even with evidence
    slices: GateSlices = field(default_factory=GateSlices)
    confidence: float = 0.95
    replicates: int = 200
    seed: int = 0
    min_rows: int = 200  # fewer paired, labelled rows overall: no decision (a data problem)

    def version_columns(self, version: str) -> GateVersionColumns | None:
        return next((c for c in self.columns if c.version == str(version)), None)


@dataclass(frozen=True)
class ContractRef:
    path: str
    sample_rows: int = 10  # failing rows kept per rule and window
    mask_columns: tuple[str, ...] = ()  # replaced by "***" in the samples (PII)


@dataclass(frozen=True)
class AuditSpec:
    name: str
    source: SourceSpec
    features: tuple[FeatureSpec, ...]
    output: OutputSpec
    window: WindowSpec = field(default_factory=WindowSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    slices: tuple[str, ...] = ()
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    drift: DriftSpec = field(default_factory=DriftSpec)
    profile: ProfileSpec = field(default_factory=ProfileSpec)
    mlflow: MlflowSpec = field(default_factory=MlflowSpec)
    contract: ContractRef | None = None
    quality: QualityConfig | None = None
    findings: FindingsSpec = field(default_factory=FindingsSpec)
    gate: GateConfig | None = None
    training: TrainingSpec | None = None
    rubric: RubricSpec = field(default_factory=RubricSpec)
    incidents: IncidentsSpec = field(default_factory=IncidentsSpec)
    notify: tuple[NotifyTarget, ...] = ()
    file: str | None = None
    # the hash of the spec as written, before it was narrowed to one model version (``for_model_version``)
    written_hash: str | None = None

    def spec_hash(self) -> str:
        """A short, stable hash of what the audit computes (not where it was loaded from)."""
        d = asdict(self)
        d.pop("file", None)
        d.pop("written_hash", None)
        # sections added later hash only when set, so an older spec keeps its hash (and its audits' keys)
        # where notifications go and how incidents are grouped change no result row: not in the hash
        d.pop("notify", None)
        d.pop("incidents", None)
        d["mlflow"].pop("ui_url", None)
        for name, default in (("gate", None), ("training", None), ("rubric", asdict(RubricSpec()))):
            if d.get(name) == default:
                d.pop(name, None)
        for key, default in (("kll", "auto"), ("hll", "categorical")):
            if d["profile"].get(key) == default:
                d["profile"].pop(key)
        # keys added later hash only when they differ from their default, for the same reason
        for section, key, default in (("quality", "min_count", QualityConfig.min_count),
                                      ("reference", "cycle", ReferenceSpec.cycle)):
            if d.get(section) and d[section].get(key) == default:
                d[section].pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def versions_in_rows(self) -> bool:
        """Rows carry model versions and no one version is named: each version found is audited on its
        own rows against its own reference (with an explicit ``reference.uri`` every version is
        compared with that one reference instead)."""
        return bool(self.model.version_column and self.model.name and not self.model.version
                    and not self.model.alias)

    @property
    def audits_each_version(self) -> bool:
        """An audit of this spec is one audit per model version found in the rows, each against that
        version's own reference."""
        return self.versions_in_rows and not self.reference.uri

    def for_model_version(self, version: str) -> AuditSpec:
        """This spec narrowed to one model version: with ``model.version_column``, only that version's
        rows are profiled, and its reference is that version's."""
        return replace(self, model=replace(self.model, version=str(version), alias=None),
                       written_hash=self.published_hash())

    def published_hash(self) -> str:
        """The hash people see (``validate``, the runs' ``spec_hash``, MLflow): of the spec as written, the same
        for every model version it fans out to. ``spec_hash`` (in the audits' keys) also tells versions apart."""
        return self.written_hash or self.spec_hash()

    def reference_uri(self) -> str:
        if self.reference.uri:
            return self.reference.uri
        if self.versions_in_rows:
            raise SpecError("the rows carry model versions (model.version_column) and the spec names none: name "
                            "one (--model-version V, or model.version)", file=self.file, key="model")
        if self.model.name and self.model.version:
            return f"models:/{self.model.name}/{self.model.version}"
        if self.model.name and self.model.alias:
            return f"models:/{self.model.name}@{self.model.alias}"
        raise SpecError(
            "no reference: set reference.uri or model.name with model.version or model.alias",
            file=self.file, key="reference",
        )


# --------------------------------------------------------------------------- parsing


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
    p = r.section(top.get("profile"), "profile", ("top_k", "kll_k", "kll", "hll"))
    for key, allowed in (("kll", ("auto", "always")), ("hll", ("categorical", "all", "none"))):
        if key in p and p[key] not in allowed:
            raise r.fail(f"profile.{key}", f"expected one of {', '.join(allowed)}, got {p[key]!r}")
    profile = ProfileSpec(top_k=r.int_(p, "top_k", "profile", ProfileSpec.top_k, lo=0, hi=10000),
                          kll_k=r.int_(p, "kll_k", "profile", ProfileSpec.kll_k, lo=8, hi=65535),
                          kll=p.get("kll", ProfileSpec.kll), hll=p.get("hll", ProfileSpec.hll))
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
