"""Suggest a contract from a profile, like Deequ's constraint suggestions or TFDV's
schema inference. The result is an ODCS-shaped dict: dump it with
``yaml.safe_dump(..., sort_keys=False)``, review and edit it, then commit it.

What is inferred, per column of the profile:

* ``logicalType`` from the Spark type (``physicalType`` is the Spark type);
* ``required: true`` when no null was seen, else a ``nullValues`` rule bounding the
  null percentage at the observed one widened by ``tolerance`` (relative) and by the
  sampling noise of a 500-row group (``_widen_percent``);
* numeric columns: plausible bounds as a tolerant ``invalidValues`` quality rule
  (below); float columns also get ``maxNanPercent`` / ``maxInfPercent`` (0 when none
  was seen);
* categorical columns whose top values cover every non-null row and number at most
  ``max_categories``: ``allowedValues``; otherwise observed string lengths, widened,
  when the profile has them;
* a table-level ``rowCount > 0`` when the profile saw rows.

Uniqueness is never inferred: the profile's distinct count is an estimate. The
inferred contract passes the official ODCS schema, loads with
:mod:`spark_audit.contract.reader` and passes on the data it was inferred from
(unless more than ``max_out_of_range_percent`` of its rows are wild values beyond
the fence of step 3 below).

Numeric bounds
--------------
A bound inferred from a sample is a guess, and on a heavy-tailed column the sample's
min/max is a poor one: a fresh window of the same distribution has a fair chance of
a value beyond the reference's extreme, so a zero-tolerance rule on min/max (plus
10%) fires on ordinary days. The bounds are therefore built to be exceeded almost
never by data like the reference's, and to tolerate the rare row that still is:

1. Start from the reference's ``p`` and ``1 - p`` quantiles (``p`` = 0.1%, from
   the KLL sketch; min/max when the profile has no sketch), not its extremes: one
   wild value in the reference (a sentinel, a unit bug) does not set the bound.
2. Widen each side by ``range_margin`` (1) x R, R = the distance between the two
   quantiles: scale-free, and for light tails already many standard deviations
   (p0.1 - R is 9 sigma below the mean of a normal).
3. Keep the reference's min/max when they lie within ``_FENCE`` (10) x R of the
   quantiles. A linear margin alone cannot follow a heavy tail (for lognormal and
   Pareto tails p99.9 + R is exceeded by 3e-4 to 1e-3 of rows: one to four rows of
   a 4,000-row window); the tail the reference really shows can. A value farther
   out than that is treated as wild and the bound stops at the fence.
4. Not below 0 when the reference has no negative value (this is what catches
   -1/-999 sentinels on a positive column); whole numbers for integer columns.
5. The rule tolerates ``max_out_of_range_percent`` (0.1%) of a group's rows
   outside, and at least one row of a 500-row group (0.2 %, so a lone outlier in
   a slice is not a violation either), so one row in 4,000 is no violation while a sentinel flood (1% of
   rows = -999) or a unit change still is; its severity is ``warning``, because a
   plausibility bound guessed from data is not a broken promise. It is an ODCS
   ``invalidValues`` rule with ``arguments.minimum/maximum`` (``logicalTypeOptions``
   bounds are zero tolerance).

Simulated (KLL sketches, k = 200, of 28,000 reference rows; 4,000-row windows), the
chance that a window of the same distribution fails is below 1e-4 for normal,
exponential, lognormal (sigma <= 2), Student t (3 df) and Pareto (alpha >= 2)
columns, 1.4e-4 for Pareto alpha = 1.5 and about 2% for alpha = 1 (infinite mean).
A group of fewer than 1,000 rows gets no slack from 0.1% (it is under one row): a
heavy-tailed column fails a few % of 500-row groups. ``range_margin``,
``max_out_of_range_percent`` and ``tolerance`` (which widens the null, NaN and
inf percentages and string lengths) are arguments of :func:`infer_contract`.

The profile is duck-typed: ``profile.row_count`` and ``profile.columns`` (name ->
column profile with ``name, kind, dtype, count, nulls, nan, pos_inf, neg_inf, min,
max, top`` and optionally ``len_min, len_max`` and ``quantiles(probs)``).
"""

from __future__ import annotations

import math
from typing import Any

from spark_audit.contract.logical_types import LOGICAL_TYPES, logical_type_of

__all__ = ["infer_contract"]

_FLOAT_TYPES = ("float", "double")
_QUANTILE = 0.001  # bounds start from the reference's p0.1 and p99.9
_FENCE = 10.0  # the reference's min/max are kept when within this many quantile ranges of them


def infer_contract(
    profile: Any,
    *,
    table_name: str,
    tolerance: float = 0.1,
    max_categories: int = 20,
    contract_id: str | None = None,
    version: str = "0.1.0",
    range_margin: float = 1.0,
    max_out_of_range_percent: float = 0.1,
) -> dict[str, Any]:
    """An ODCS v3 contract dict suggested by ``profile`` (see the module docstring).

    ``tolerance`` widens observed percentages and string lengths (relative);
    ``range_margin`` widens numeric bounds by that many quantile ranges, and
    ``max_out_of_range_percent`` is the share of rows the bounds may miss.
    """
    for name, value in (("tolerance", tolerance), ("range_margin", range_margin),
                        ("max_out_of_range_percent", max_out_of_range_percent)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    row_count = int(getattr(profile, "row_count", 0) or 0)
    properties = [
        _infer_property(col, tolerance=tolerance, max_categories=max_categories, margin=range_margin,
                        out_of_range=max_out_of_range_percent)
        for col in profile.columns.values()
    ]
    obj: dict[str, Any] = {"name": table_name, "physicalName": table_name}
    if row_count > 0:
        obj["quality"] = [{"metric": "rowCount", "mustBeGreaterThan": 0, "severity": "error",
                           "description": "The table must not be empty."}]
    obj["properties"] = properties
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": contract_id or table_name,
        "name": table_name,
        "version": version,
        "status": "draft",
        "description": {
            "purpose": f"Suggested by spark-audit from a profile of {row_count} rows of {table_name}. "
                       "Review every bound before use.",
        },
        "schema": [obj],
    }


def _infer_property(col: Any, *, tolerance: float, max_categories: int, margin: float,
                    out_of_range: float) -> dict[str, Any]:
    dtype = str(col.dtype)
    ltype = logical_type_of(dtype)
    if ltype not in LOGICAL_TYPES:
        ltype = "string" if col.kind == "categorical" else "object"
    prop: dict[str, Any] = {"name": col.name, "logicalType": ltype, "physicalType": dtype}
    count = int(col.count or 0)
    nulls = int(col.nulls or 0)
    non_null = count - nulls
    options: dict[str, Any] = {}
    custom: list[dict[str, Any]] = []
    quality: list[dict[str, Any]] = []

    if count > 0 and nulls == 0:
        prop["required"] = True
    elif nulls > 0:
        quality.append({
            "metric": "nullValues",
            "mustBeLessOrEqualTo": _widen_percent(nulls, count, tolerance),
            "unit": "percent",
            "severity": "warning",
        })

    if ltype in ("integer", "number") and non_null > 0:
        bounds = _bounds(col, margin, integer=ltype == "integer")
        if bounds is not None:
            quality.append({
                "metric": "invalidValues",
                "arguments": {"minimum": bounds[0], "maximum": bounds[1]},
                # at least one row of the smallest group judged (SAMPLING_ROWS): a lone outlier in a
                # 600-row slice is not a broken contract, a flood of sentinels still is
                "mustBeLessOrEqualTo": max(out_of_range, 100.0 / SAMPLING_ROWS) if out_of_range > 0 else 0,
                "unit": "percent",
                "severity": "warning",
                "description": "Plausible range: the reference's p0.1-p99.9 widened (see spark_audit.contract.infer).",
            })
        if dtype.lower() in _FLOAT_TYPES:
            nan = int(getattr(col, "nan", 0) or 0)
            inf = int(getattr(col, "pos_inf", 0) or 0) + int(getattr(col, "neg_inf", 0) or 0)
            custom.append({"property": "maxNanPercent", "value": _widen_percent(nan, count, tolerance)})
            custom.append({"property": "maxInfPercent", "value": _widen_percent(inf, count, tolerance)})

    if ltype in ("string", "integer") and col.kind == "categorical" and non_null > 0:
        values = _domain(col, ltype, non_null, max_categories)
        if values is not None:
            custom.append({"property": "allowedValues", "value": values})
        elif ltype == "string":
            lo, hi = getattr(col, "len_min", None), getattr(col, "len_max", None)
            if lo is not None and hi is not None:
                options["minLength"] = max(0, math.floor(int(lo) * (1 - tolerance)))
                options["maxLength"] = math.ceil(int(hi) * (1 + tolerance))

    if options:
        prop["logicalTypeOptions"] = options
    if custom:
        prop["customProperties"] = custom
    if quality:
        prop["quality"] = quality
    return prop


SAMPLING_ROWS = 500  # the smallest group an inferred share bound must hold on by chance (a 500-row slice)
SAMPLING_SDS = 4.0


def _widen_percent(part: int, whole: int, tolerance: float) -> float:
    """``part / whole`` in percent, widened and rounded up to 2 decimals, at most 100.

    Widened by ``tolerance`` (relative) and at least by SAMPLING_SDS binomial standard
    deviations at SAMPLING_ROWS rows, so a window or slice of that size with the
    reference's share passes by chance (a 2 % null share gets 4.5 %, not 2.2 %). A share
    of 0 stays 0: a column that had none must have none.
    """
    if whole <= 0 or part <= 0:
        return 0
    p = part / whole
    pct = p * 100
    sampling = pct + 100 * SAMPLING_SDS * math.sqrt(p * (1 - p) / SAMPLING_ROWS)
    bound = math.ceil(max(pct * (1 + tolerance), sampling) * 100 - 1e-6) / 100  # 1.1000000001 -> 1.1
    return float(min(100.0, max(bound, pct)))


def _bounds(col: Any, margin: float, *, integer: bool) -> tuple[Any, Any] | None:
    """Plausible [minimum, maximum] of a numeric column (steps 1-4 of the module docstring)."""
    if col.min is None or col.max is None:
        return None
    lo, hi = float(col.min), float(col.max)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return None
    quantiles = getattr(col, "quantiles", None)
    q = quantiles([_QUANTILE, 1 - _QUANTILE]) if callable(quantiles) else None
    q_lo, q_hi = (lo, hi) if not q or not all(math.isfinite(v) for v in q) else (max(q[0], lo), min(q[1], hi))
    span = q_hi - q_lo or abs(q_hi) or 1.0
    keep_lo, keep_hi = max(lo, q_lo - _FENCE * span), min(hi, q_hi + _FENCE * span)  # values the bounds contain
    wlo, whi = min(q_lo - margin * span, keep_lo), max(q_hi + margin * span, keep_hi)
    if lo >= 0 > wlo:
        wlo = keep_lo = 0.0
    if integer:
        return math.floor(wlo), math.ceil(whi)
    step = 10.0 ** (math.floor(math.log10(span)) - 2)
    digits = max(0, -int(math.floor(math.log10(step))))
    rlo = round(math.floor(wlo / step + 1e-6) * step, digits)  # float noise must not cost a step
    rhi = round(math.ceil(whi / step - 1e-6) * step, digits)
    return min(rlo, keep_lo), max(rhi, keep_hi)


def _domain(col: Any, ltype: str, non_null: int, max_categories: int) -> list[Any] | None:
    """The full set of observed values, when the top-k counts cover every non-null row."""
    top = dict(getattr(col, "top", None) or {})
    if not top or len(top) > max_categories or sum(int(v) for v in top.values()) != non_null:
        return None
    values: list[Any] = []
    for key in top:
        if key is None:
            continue
        if ltype == "integer":
            try:
                values.append(int(key))
            except (TypeError, ValueError):
                return None
        else:
            values.append(str(key))
    return sorted(values)
