"""The plain facts the spec and the engine share, each listed once: column kinds and quality metrics.

Pure Python, no Spark: the spec validates names against these tables before any job starts,
and the engine reads the same tables to decide, plot and estimate. Drift statistics have their
own registry next to their math (``spark_audit.drift.stats.STATISTICS``).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("numeric", "categorical", "boolean", "timestamp")
"""Column kinds a profile knows."""

DRIFT_KINDS = ("numeric", "categorical", "boolean")

ENGINES = ("arrow", "spark")
"""How a scan computes the profile's statistics (``profile.engine`` in the spec, ``--engine`` on the CLI):
``arrow`` in one ``mapInArrow`` pass of numpy kernels (``spark_audit.profile.arrow_scan``), ``spark`` as
aggregate functions of the one aggregation (for executors that cannot run Python with numpy, pyarrow and
datasketches). Both give the same statistics; the first is faster."""
"""Kinds whose distribution is compared (a boolean is a two-category column)."""

TASKS = ("binary", "regression")
SCORE_BINS = 20
"""Default uniform score bins on [0, 1] for ROC AUC, calibration and the label-free estimate."""


_ALL = ("tp", "fp", "tn", "fn")
_POS = ("actual positives", ("tp", "fn"))
_PRED = ("predicted positives", ("tp", "fp"))
_NEG = ("actual negatives", ("fp", "tn"))
_ROWS = ("labelled rows", ("n",))


@dataclass(frozen=True)
class MetricInfo:
    """One quality metric.

    ``higher_is_better``: the direction of a degradation. ``selectable``: a user may watch it
    (``quality.metrics``); the others are diagnostics recorded with every window. ``default``:
    watched when the spec lists no metrics. ``needs_score``: needs the score column (binary).
    ``estimable``: the label-free estimate (confidence-based, from calibrated scores) gives it,
    with a standard error. Every metric here has a sampling error
    (``spark_audit.decay.uncertainty.metric_se``). ``rate``: for a rate, the confusion cells it
    counts and the cells of its denominator (its evidence is exact, ``spark_audit.decay.evidence``).
    ``min_counts``: what must reach ``quality.min_count`` for the metric to be judged, as (what, cells);
    ``("n",)`` is the labelled rows.
    """

    name: str
    task: str
    higher_is_better: bool
    selectable: bool = True
    default: bool = False
    needs_score: bool = False
    estimable: bool = False
    rate: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    min_counts: tuple[tuple[str, tuple[str, ...]], ...] = (_ROWS,)


METRICS: dict[tuple[str, str], MetricInfo] = {
    (m.task, m.name): m
    for m in (
        MetricInfo("accuracy", "binary", True, default=True, estimable=True, rate=(("tp", "tn"), _ALL)),
        MetricInfo("precision", "binary", True, estimable=True, rate=(("tp",), ("tp", "fp")), min_counts=(_PRED,)),
        MetricInfo("recall", "binary", True, estimable=True, rate=(("tp",), ("tp", "fn")), min_counts=(_POS,)),
        MetricInfo("f1", "binary", True, default=True, estimable=True, min_counts=(_POS, _PRED)),
        MetricInfo("roc_auc", "binary", True, default=True, needs_score=True, estimable=True,
                   min_counts=(_POS, _NEG)),
        MetricInfo("log_loss", "binary", False, needs_score=True, min_counts=(_POS, _NEG)),
        MetricInfo("ece", "binary", False, needs_score=True),
        MetricInfo("positive_rate", "binary", True, selectable=False, estimable=True, rate=(("tp", "fn"), _ALL)),
        MetricInfo("predicted_positive_rate", "binary", True, selectable=False, rate=(("tp", "fp"), _ALL)),
        # share of rows whose prediction column differs from score >= threshold
        MetricInfo("prediction_threshold_disagreement", "binary", False, selectable=False),
        MetricInfo("mse", "regression", False),
        MetricInfo("rmse", "regression", False, default=True),
        MetricInfo("mae", "regression", False, default=True),
        MetricInfo("mape", "regression", False),
        MetricInfo("r2", "regression", True, default=True),
    )
}
"""The one table of quality metrics, keyed by (task, name)."""


def task_metrics(task: str, *, selectable: bool | None = None) -> tuple[str, ...]:
    """The metric names of a task, in table order (only the selectable ones with ``selectable=True``)."""
    return tuple(m.name for m in METRICS.values() if m.task == task and (selectable is None or
                                                                           m.selectable == selectable))


def metric(task: str, name: str) -> MetricInfo:
    """The metric ``name`` of ``task``; ``KeyError`` naming the task's metrics when there is none."""
    try:
        return METRICS[(task, name)]
    except KeyError:
        raise KeyError(f"no {task} metric {name!r}; {task} metrics are {list(task_metrics(task))}") from None


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of the metric ``name`` is better (for any task)."""
    return any(not m.higher_is_better for m in METRICS.values() if m.name == name)


def default_metrics(task: str, has_score: bool) -> tuple[str, ...]:
    """What an audit watches when the spec lists no metrics."""
    return tuple(m.name for m in METRICS.values()
                 if m.task == task and m.default and (has_score or not m.needs_score))


def estimable_metrics() -> tuple[str, ...]:
    """Metrics the label-free estimate gives."""
    return tuple(m.name for m in METRICS.values() if m.estimable)
