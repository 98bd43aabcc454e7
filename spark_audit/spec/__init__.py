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

The objects are in ``spark_audit.spec.model`` (one frozen dataclass per section, the defaults there),
their parsing in ``spark_audit.spec.parse``; this package exports both.
"""

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
from spark_audit.spec.parse import check_feature_kinds, load_spec, local_path, parse_spec

__all__ = [
    "AuditSpec",
    "CYCLES",
    "ContractRef",
    "DriftOverride",
    "DriftSpec",
    "FairnessSpec",
    "FeatureSpec",
    "FindingsSpec",
    "GateConfig",
    "GateSlices",
    "GateVersionColumns",
    "IncidentsSpec",
    "LabelsSpec",
    "MlflowSpec",
    "ModelSpec",
    "NOTIFY_KINDS",
    "NotifyTarget",
    "OutputSpec",
    "ProfileSpec",
    "QualityConfig",
    "QualitySpec",
    "ReferenceSpec",
    "RubricSpec",
    "SourceSpec",
    "TrainingSpec",
    "WindowSpec",
    "check_feature_kinds",
    "load_spec",
    "local_path",
    "parse_spec",
]
