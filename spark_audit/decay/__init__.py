"""Model quality per window (Spark aggregates), label-free estimates and metric-history anomalies."""

from spark_audit.decay.anomaly import AnomalyResult, rate_of_change, trend, windows_until, zscore
from spark_audit.decay.estimate import (
    Calibration,
    estimated_exprs,
    estimated_from_row,
    fit_calibration,
)
from spark_audit.decay.metrics import (
    QualitySpec,
    ece_from_bins,
    join_labels,
    merge_states,
    quality_exprs,
    quality_from_row,
    quality_state_names,
    roc_auc_from_bins,
    score_bin,
)

__all__ = [
    "AnomalyResult",
    "Calibration",
    "QualitySpec",
    "ece_from_bins",
    "estimated_exprs",
    "estimated_from_row",
    "fit_calibration",
    "join_labels",
    "merge_states",
    "quality_exprs",
    "quality_from_row",
    "quality_state_names",
    "rate_of_change",
    "roc_auc_from_bins",
    "score_bin",
    "trend",
    "windows_until",
    "zscore",
]
