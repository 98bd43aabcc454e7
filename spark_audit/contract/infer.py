"""Suggest a contract from a profile, like Deequ's constraint suggestions or TFDV's
schema inference. The result is an ODCS-shaped dict: dump it with
``yaml.safe_dump(..., sort_keys=False)``, review and edit it, then commit it.

What is inferred, per column of the profile:

* ``logicalType`` from the Spark type (``physicalType`` is the Spark type);
* ``required: true`` when no null was seen, else a ``nullValues`` rule bounding the
  null percentage at the observed one widened by ``tolerance`` (relative);
* numeric columns: ``logicalTypeOptions.minimum/maximum`` from the observed range
  widened by ``tolerance`` x range on each side (not below 0 when nothing negative
  was seen; whole numbers for integer columns); float columns also get
  ``maxNanPercent`` / ``maxInfPercent`` (0 when none was seen);
* categorical columns whose top values cover every non-null row and number at most
  ``max_categories``: ``allowedValues``; otherwise observed string lengths, widened,
  when the profile has them;
* a table-level ``rowCount > 0`` when the profile saw rows.

Uniqueness is never inferred: the profile's distinct count is an estimate. The
inferred contract loads with :mod:`spark_audit.contract.model` and passes on the
data it was inferred from.

The profile is duck-typed: ``profile.row_count`` and ``profile.columns`` (name ->
column profile with ``name, kind, dtype, count, nulls, nan, pos_inf, neg_inf, min,
max, top`` and optionally ``len_min, len_max``).
"""

from __future__ import annotations

import math
from typing import Any

from spark_audit.contract.model import logical_type_of

__all__ = ["infer_contract"]

_FLOAT_TYPES = ("float", "double")


def infer_contract(
    profile: Any,
    *,
    table_name: str,
    tolerance: float = 0.1,
    max_categories: int = 20,
    contract_id: str | None = None,
    version: str = "0.1.0",
) -> dict[str, Any]:
    """An ODCS v3 contract dict suggested by ``profile`` (see the module docstring)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    row_count = int(getattr(profile, "row_count", 0) or 0)
    properties = [
        _infer_property(col, tolerance=tolerance, max_categories=max_categories)
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


def _infer_property(col: Any, *, tolerance: float, max_categories: int) -> dict[str, Any]:
    dtype = str(col.dtype)
    ltype = logical_type_of(dtype)
    if ltype not in ("string", "integer", "number", "boolean", "date", "timestamp", "array", "object"):
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
        bounds = _bounds(col.min, col.max, tolerance, integer=ltype == "integer")
        if bounds is not None:
            options["minimum"], options["maximum"] = bounds
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


def _widen_percent(part: int, whole: int, tolerance: float) -> float:
    """``part / whole`` in percent, widened and rounded up to 2 decimals, at most 100."""
    if whole <= 0 or part <= 0:
        return 0
    pct = part / whole * 100
    bound = math.ceil(pct * (1 + tolerance) * 100 - 1e-6) / 100  # 1.1000000001 -> 1.1
    return float(min(100.0, max(bound, pct)))


def _bounds(lo: Any, hi: Any, tolerance: float, *, integer: bool) -> tuple[Any, Any] | None:
    if lo is None or hi is None:
        return None
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return None
    span = hi - lo or abs(hi) or 1.0
    wlo, whi = lo - tolerance * span, hi + tolerance * span
    if lo >= 0 > wlo:
        wlo = 0.0
    if integer:
        return math.floor(wlo), math.ceil(whi)
    step = 10.0 ** (math.floor(math.log10(span)) - 2)
    digits = max(0, -int(math.floor(math.log10(step))))
    rlo = round(math.floor(wlo / step + 1e-6) * step, digits)  # float noise must not cost a step
    rhi = round(math.ceil(whi / step - 1e-6) * step, digits)
    return min(rlo, lo), max(rhi, hi)


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
