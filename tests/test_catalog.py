"""The registries are the one list of each fact, and the engine covers every entry (no Spark)."""

import math

import pytest

from spark_audit.catalog import METRICS, default_metrics, estimable_metrics, lower_is_better, task_metrics
from spark_audit.decay.estimate import estimated_from_row
from spark_audit.decay.metrics import quality_from_row
from spark_audit.spec import QualitySpec


def _binary_row():
    bins = 20
    return {"q__tp": 40.0, "q__fp": 10.0, "q__tn": 35.0, "q__fn": 15.0, "q__unlabelled": 0.0,
            "q__bin_pos": [float(i) for i in range(bins)], "q__bin_neg": [float(bins - i) for i in range(bins)],
            "q__bin_score_sum": [float(i) / bins * (2 * bins - 0) / 2 for i in range(bins)],
            "q__logloss_sum": 50.0, "q__n_scored": 100.0, "q__disagree": 3.0, "q__n_both": 100.0}


def test_every_catalog_metric_is_computed():
    """quality_from_row gives every metric of the table, so a new MetricInfo without its formula fails here."""
    binary = quality_from_row(QualitySpec("binary", "y", score="s"), _binary_row())
    assert set(task_metrics("binary")) <= set(binary)
    reg = quality_from_row(QualitySpec("regression", "y", prediction="p"),
                           {"q__n": 10.0, "q__sse": 5.0, "q__sae": 6.0, "q__sape": 1.0, "q__n_nonzero": 10.0,
                            "q__sum_y": 20.0, "q__sum_y2": 80.0, "q__unlabelled": 0.0})
    assert set(task_metrics("regression")) <= set(reg)
    assert all(math.isfinite(reg[m]) for m in task_metrics("regression"))


def test_estimable_metrics_are_what_the_estimate_gives():
    est = estimated_from_row({"e__tp": 5.0, "e__fp": 1.0, "e__tn": 3.0, "e__fn": 1.0, "e__n": 10.0})
    assert set(estimable_metrics()) <= set(est)


def test_directions_and_defaults():
    assert lower_is_better("log_loss") and lower_is_better("rmse") and not lower_is_better("roc_auc")
    assert default_metrics("binary", has_score=True) == ("accuracy", "f1", "roc_auc")
    assert default_metrics("binary", has_score=False) == ("accuracy", "f1")
    assert default_metrics("regression", has_score=False) == ("rmse", "mae", "r2")
    assert "positive_rate" not in task_metrics("binary", selectable=True)
    assert all(m.task in ("binary", "regression") for m in METRICS.values())


def test_standard_errors_cover_the_catalog():
    from spark_audit.decay.uncertainty import SE_METRICS, metric_se

    spec = QualitySpec("binary", "y", score="s")
    for m in task_metrics("binary"):
        assert m in SE_METRICS["binary"]
        se = metric_se(spec, m, _binary_row(), "q__")
        assert isinstance(se, float)
    with pytest.raises(ValueError):
        metric_se(spec, "no_such_metric", _binary_row(), "q__")
