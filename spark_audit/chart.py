"""The audit run's charts (matplotlib, no display): drift and quality over windows, each with what it is
judged against, so a chart says by itself whether a line is a problem.

* **Drift**: each feature's deciding statistic per window (one colour per feature), its material threshold
  (dashed, same colour) and its noise band at each window's size (shaded): a point above both is what a
  finding needs, besides evidence.
* **Quality**: each watched metric realised (solid) and estimated before labels arrive (dashed, the same
  colour), and the reference's value (dotted). Windows without labels say so.
* Windows without rows (``missing_window``, ``stale`` findings) are shaded grey on both and named.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the figures go to MLflow as PNG
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.figure import Figure  # noqa: E402

from spark_audit.timeutil import parse_iso  # noqa: E402


def _when(v: Any) -> datetime:
    return v if isinstance(v, datetime) else parse_iso(str(v))


def _shade_missing(ax, missing: list[datetime]) -> None:
    for i, m in enumerate(missing):
        ax.axvspan(m, m + timedelta(days=1), color="0.85", zorder=0,
                   label="no rows" if i == 0 else None)


def _finish(fig: Figure, ax, title: str, ylabel: str) -> Figure:
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def drift_figure(rows: list[dict[str, Any]], missing: list[datetime]) -> Figure:
    """Deciding statistic, threshold and noise band per feature (``drift_metrics`` rows of all rows)."""
    fig, ax = plt.subplots(figsize=(10, 4.8))
    _shade_missing(ax, missing)
    for column in sorted({r["column"] for r in rows}):
        mine = sorted((r for r in rows if r["column"] == column), key=lambda r: _when(r["window_start"]))
        xs = [_when(r["window_start"]) for r in mine]
        [line] = ax.plot(xs, [r["value"] for r in mine], "-", marker="o", ms=4,
                         label=f"{column} ({mine[0]['statistic']})")
        color = line.get_color()
        ax.plot(xs, [r["threshold"] for r in mine], "--", color=color, lw=0.8, alpha=0.7)
        noise = [(x, r["noise"]) for x, r in zip(xs, mine, strict=True) if r.get("noise") is not None]
        if noise:
            ax.fill_between([x for x, _ in noise], 0, [n for _, n in noise], color=color, alpha=0.08)
        hits = [(x, r["value"]) for x, r in zip(xs, mine, strict=True) if r.get("drifted")]
        if hits:
            ax.plot([x for x, _ in hits], [v for _, v in hits], "o", mfc="none", mec="red", ms=9)
    ax.plot([], [], "--", color="0.4", lw=0.8, label="material threshold")
    ax.fill_between([], [], color="0.4", alpha=0.15, label="noise band")
    ax.plot([], [], "o", mfc="none", mec="red", label="drift finding")
    return _finish(fig, ax, "Drift against the reference per window", "statistic value")


def quality_figure(rows: list[dict[str, Any]], missing: list[datetime]) -> Figure:
    """Realised and estimated values of the watched metrics, and the reference's (``performance_metrics``)."""
    fig, ax = plt.subplots(figsize=(10, 4.8))
    _shade_missing(ax, missing)
    unlabelled = set()
    for metric in sorted({r["metric"] for r in rows}):
        mine = sorted((r for r in rows if r["metric"] == metric), key=lambda r: _when(r["window_start"]))
        xs = [_when(r["window_start"]) for r in mine]
        real = [(x, r["value"]) for x, r in zip(xs, mine, strict=True) if r.get("value") is not None]
        est = [(x, r["estimated_value"]) for x, r in zip(xs, mine, strict=True) if r.get("estimated_value") is not None]
        unlabelled |= {x for x, r in zip(xs, mine, strict=True) if r.get("value") is None}
        color = None
        if real:
            [line] = ax.plot([x for x, _ in real], [v for _, v in real], "-", marker="o", ms=4, label=metric)
            color = line.get_color()
        if est:
            [line] = ax.plot([x for x, _ in est], [v for _, v in est], "--", marker="s", ms=3, color=color,
                             label=f"{metric} (estimated)")
            color = line.get_color()
        ref = next((r["reference_value"] for r in mine if r.get("reference_value") is not None), None)
        if ref is not None:
            ax.axhline(ref, ls=":", color=color, lw=1.0)
    for x in sorted(unlabelled):
        ax.axvline(x, color="0.6", lw=0.6)
        ax.annotate("no labels yet", (x, ax.get_ylim()[0]), fontsize=7, rotation=90, va="bottom", color="0.4")
    ax.plot([], [], ":", color="0.4", label="reference")
    return _finish(fig, ax, "Model quality per window: realised (solid), estimated (dashed), reference (dotted)",
                   "metric value")


def close_all() -> None:
    plt.close("all")
