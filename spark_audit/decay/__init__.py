"""Model quality per window (Spark aggregates), label-free estimates, their standard errors
and metric-history anomalies."""

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
from spark_audit.decay.uncertainty import (
    SE_METRICS,
    binomial_se,
    delong_se_from_bins,
    estimated_se,
    f1_se,
    hanley_mcneil_se,
    mean_se,
    metric_se,
)

__all__ = [
    "SE_METRICS",
    "AnomalyResult",
    "Calibration",
    "QualitySpec",
    "binomial_se",
    "delong_se_from_bins",
    "ece_from_bins",
    "estimated_exprs",
    "estimated_from_row",
    "estimated_se",
    "f1_se",
    "fit_calibration",
    "hanley_mcneil_se",
    "join_labels",
    "mean_se",
    "merge_states",
    "metric_se",
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
