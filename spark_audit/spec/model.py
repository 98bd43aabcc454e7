"""The audit spec's typed objects: one frozen dataclass per section, each default written once, here.

Parsing and validation of the YAML is ``spark_audit.spec.parse``; the package ``spark_audit.spec``
exports both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from spark_audit.catalog import KINDS, SCORE_BINS, TASKS, default_metrics
from spark_audit.errors import SpecError


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
    ``all``, or ``none``. Sketches cost: see ``spark_audit.profile.exprs.Sketches``. ``engine``: ``arrow``
    computes the numeric and string statistics in one ``mapInArrow`` pass of numpy kernels (the
    executors need numpy, pyarrow and datasketches); ``spark`` keeps every statistic in the Spark
    aggregation (the same results, slower; nothing but Spark on the executors). The CLI's ``--engine``
    overrides it."""

    top_k: int = 20
    kll_k: int = 200
    kll: str = "auto"
    hll: str = "categorical"
    engine: str = "arrow"

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
        d["profile"].pop("engine", None)  # both engines compute the same statistics: the same audit
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
