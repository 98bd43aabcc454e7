"""Column statistics as Spark aggregate expressions, and their read-back into profiles.

Every statistic of every column is an aggregate expression, so all of them run
in one ``groupBy(...).agg(...)`` scan. Expressions are aliased
``<prefix><column index>__<metric>`` so odd column names never reach SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_audit.errors import DataError
from spark_audit.names import col as _c
from spark_audit.profile import statistics
from spark_audit.profile.state import HLL_LG_K, Bins, ColumnProfile
from spark_audit.profile.statistics import SparkColumn

INF = float("inf")

_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
_TIMESTAMP = (T.TimestampType, T.TimestampNTZType, T.DateType)


@dataclass(frozen=True)
class ColumnSpec:
    """A column to profile: its name, the kind of statistics it gets, its Spark type."""

    name: str
    kind: str
    dtype: str


def kind_of(dtype: T.DataType) -> str | None:
    if isinstance(dtype, T.BooleanType):
        return "boolean"
    if isinstance(dtype, _NUMERIC):
        return "numeric"
    if isinstance(dtype, _TIMESTAMP):
        return "timestamp"
    if isinstance(dtype, T.StringType):
        return "categorical"
    return None


def resolve_columns(
    schema: T.StructType, wanted: list[tuple[str, str | None]], *, source: str = "the table"
) -> list[ColumnSpec]:
    """Match requested (name, kind or None) pairs against ``schema``.

    A missing column or an unprofilable type raises ``DataError`` naming it; a
    kind override must make sense for the type (anything can be categorical).
    """
    by_name = {f.name: f for f in schema.fields}
    out: list[ColumnSpec] = []
    missing = [name for name, _ in wanted if name not in by_name]
    if missing:
        raise DataError(
            f"column(s) {', '.join(repr(m) for m in missing)} not found in {source}; "
            f"it has: {', '.join(sorted(by_name))}"
        )
    for name, kind in wanted:
        field = by_name[name]
        natural = kind_of(field.dataType)
        if kind is None:
            if natural is None:
                raise DataError(
                    f"column {name!r} has type {field.dataType.simpleString()}, which cannot be profiled; "
                    "supported: numeric, string, boolean, date, timestamp"
                )
            kind = natural
        elif kind == "numeric" and natural != "numeric":
            raise DataError(f"column {name!r} is {field.dataType.simpleString()}, it cannot be profiled as numeric")
        elif kind in ("boolean", "timestamp") and natural != kind:
            raise DataError(f"column {name!r} is {field.dataType.simpleString()}, not {kind}")
        out.append(ColumnSpec(name, kind, field.dataType.simpleString()))
    return out




def finite(name: str) -> Column:
    """The column as double with NaN and +/-inf turned into null."""
    x = _c(name).cast("double")
    return F.when(~F.isnan(x) & (F.abs(x) != F.lit(INF)), x)


def hll_agg(name: str) -> Column:
    """The column's distinct-count sketch: HLL over a 64-bit hash of the non-null values."""
    c = _c(name)
    return F.hll_sketch_agg(F.when(c.isNotNull(), F.xxhash64(c)), HLL_LG_K)


def kll_agg(name: str, kll_k: int) -> Column:
    """The numeric column's quantile sketch over its finite values (it also keeps n, min and max exactly)."""
    return F.kll_sketch_agg_double(finite(name), kll_k)


@dataclass(frozen=True)
class Sketches:
    """Which columns get which sketch in a scan.

    The sketches are Spark's typed imperative aggregates: one of them in an aggregation turns the
    whole of it into an ``ObjectHashAggregate`` without generated code, so every other statistic is
    interpreted too. So a scan keeps them only where they are needed:

    - ``kll``: a numeric column's quantile sketch, for columns without the reference's bins (the
      reference build's first pass, a column the reference could not bin) or everywhere when asked
      (``profile.kll: always``). A column profiled on bins has exact counts on them, and its exact
      finite count, min and max come from plain aggregates instead.
    - ``hll``: the kinds whose distinct count is estimated (categorical by default; ``profile.hll: all``
      adds numbers, booleans and timestamps; ``none`` drops it).
    """

    kll: str = "auto"  # "auto": only without bins; "always"
    hll: tuple[str, ...] = ("categorical",)

    @classmethod
    def of(cls, profile: Any) -> Sketches:
        """The sketches a spec's ``profile`` section asks for (``spark_audit.spec.ProfileSpec``)."""
        return cls(kll=profile.kll, hll=tuple(profile.hll_kinds))

    def kll_for(self, col: ColumnSpec, bins: Bins | None) -> bool:
        return col.kind == "numeric" and (self.kll == "always" or bins is None or bins.edges is None)

    def hll_for(self, col: ColumnSpec) -> bool:
        return col.kind in self.hll


ALL_SKETCHES = Sketches(kll="always", hll=("numeric", "categorical", "boolean", "timestamp"))


def column_exprs(
    i: int, col: ColumnSpec, *, prefix: str, kll_k: int, bins: Bins | None, center: float = 0.0,
    sketches: Sketches = ALL_SKETCHES,
) -> list[Column]:
    """The column's declared statistics (``spark_audit.profile.statistics.STATS``) as aggregate expressions,
    and its sketches where ``sketches`` keeps them."""
    p = f"{prefix}{i}__"
    edges, categories = _reference_bins(col, bins)
    out = statistics.spark_aggregates(p, col.kind, SparkColumn(col.name, center, edges, categories))
    if sketches.hll_for(col):
        out.append(hll_agg(col.name).alias(p + "hll"))
    if sketches.kll_for(col, bins):
        out.append(kll_agg(col.name, kll_k).alias(p + "kll"))
    return out


def _reference_bins(col: ColumnSpec, bins: Bins | None) -> tuple[tuple[float, ...] | None, tuple[str, ...] | None]:
    """The reference's edges of a numeric column and categories of a string column (None: not binned)."""
    if bins is None:
        return None, None
    return (bins.edges if col.kind == "numeric" else None), (bins.categories if col.kind == "categorical" else None)


def profile_exprs(
    columns: list[ColumnSpec],
    *,
    prefix: str = "p__",
    kll_k: int = 200,
    bins: Mapping[str, Bins] | None = None,
    centers: Mapping[str, float] | None = None,
    sketches: Sketches = ALL_SKETCHES,
    elsewhere: frozenset[str] = frozenset(),
) -> list[Column]:
    """All aggregate expressions for ``columns`` plus the group's row count.

    Columns in ``elsewhere`` get nothing here: their statistics, HLL sketch included, come from another
    pass (``spark_audit.profile.arrow_scan``), under the same names.

    ``centers`` (e.g. the reference's means) shift numeric columns before their
    moments are summed, for accuracy when a mean is large against its spread.
    """
    exprs = [F.count(F.lit(1)).alias(prefix + "rows")]
    for i, col in enumerate(columns):
        if col.name in elsewhere:  # its statistics come from another pass (spark_audit.profile.arrow_scan)
            continue
        exprs += column_exprs(i, col, prefix=prefix, kll_k=kll_k, bins=(bins or {}).get(col.name),
                              center=float((centers or {}).get(col.name) or 0.0), sketches=sketches)
    return exprs


def _bytes(v: Any) -> bytes | None:
    return None if v is None else bytes(v)


def column_from_row(
    i: int, col: ColumnSpec, row: Mapping[str, Any], *, prefix: str, bins: Bins | None, rows: int,
    center: float = 0.0,
) -> ColumnProfile:
    """The column's profile from a group's statistics (either engine's: the same names). Declared
    statistics with a ``field`` fill it as they are; the rest go through the formulas below."""
    p = f"{prefix}{i}__"
    g = row.get
    nn = int(g(p + "nn") or 0)
    base: dict[str, Any] = dict(
        name=col.name, kind=col.kind, dtype=col.dtype, count=rows, nulls=rows - nn, hll=_bytes(g(p + "hll"))
    )
    edges, categories = _reference_bins(col, bins)
    for stat, key in statistics.declared(col.kind, edges, categories):
        if stat.field:
            v = g(p + key)
            base[stat.field] = int(v or 0) if stat.merge == "sum" else (None if v is None else int(v))
    if col.kind == "numeric":
        nf = base["n_finite"]
        lo, hi = (None, None) if not nf else (float(g(p + "min")), float(g(p + "max")))
        s1, s2 = float(g(p + "s1") or 0.0), float(g(p + "s2") or 0.0)
        hist = None
        if edges is not None:
            below = [int(g(f"{p}lt{j}") or 0) for j in range(len(edges))]
            cum = [0, *below, nf]
            tails = (float(g(p + "tlo") or 0.0), float(g(p + "thi") or 0.0)) if edges else None
            hist = Bins(counts=tuple(b - a for a, b in zip(cum, cum[1:], strict=False)), edges=edges, tails=tails)
        base.update(
            neg_inf=nn - nf - base["nan"] - base["pos_inf"],
            mean=center + s1 / nf if nf else None, m2=max(s2 - s1 * s1 / nf, 0.0) if nf else None,
            min=lo, max=hi, kll=_bytes(g(p + "kll")), bins=hist,
        )
    elif col.kind == "categorical" and categories is not None:
        known = [int(g(f"{p}eq{j}") or 0) for j in range(len(categories))]
        base["bins"] = Bins(counts=(*known, nn - sum(known)), categories=categories)
    elif col.kind == "timestamp":
        tmin, tmax = g(p + "tmin"), g(p + "tmax")
        base.update(min=None if tmin is None else tmin / 1e6, max=None if tmax is None else tmax / 1e6)
    return ColumnProfile(**base)


def profiles_from_row(
    columns: list[ColumnSpec],
    row: Mapping[str, Any],
    *,
    prefix: str = "p__",
    bins: Mapping[str, Bins] | None = None,
    centers: Mapping[str, float] | None = None,
) -> tuple[int, dict[str, ColumnProfile]]:
    rows = int(row.get(prefix + "rows") or 0)
    cols = {
        col.name: column_from_row(i, col, row, prefix=prefix, bins=(bins or {}).get(col.name), rows=rows,
                                  center=float((centers or {}).get(col.name) or 0.0))
        for i, col in enumerate(columns)
    }
    return rows, cols
