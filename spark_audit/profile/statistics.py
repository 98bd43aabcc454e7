"""The column statistics of a scan, each declared once, and both engines derived from the declarations.

A :class:`Stat` says everything about one statistic: its name (the key ``p{i}__{name}`` in a group's
row), the column kinds it applies to, how two groups' values merge (``sum``, ``min``, ``max``), its
type, the Spark aggregate expression that computes it (the ``spark`` engine, and booleans and
timestamps on every engine) and its numpy kernel over a sorted Arrow batch (the ``arrow`` engine,
``spark_audit.profile.arrow_scan``). A statistic ``per`` reference edge or category is a family:
``lt0``, ``lt1``, ... on a column with edges. ``field`` names the ``ColumnProfile`` attribute a
statistic fills as it is; the others are read by ``spark_audit.profile.exprs.column_from_row``'s
formulas (nulls, moments, bins).

The Spark aggregation (``spark_aggregates``), the Arrow pass's layout of a group's array, which of its
positions merge by min or max and which read back as integers (``arrow_scan.Layout``), and its kernels
(``numpy_stats``) are all read from :data:`STATS`; ``tests/test_arrow_scan.py`` checks the two engines
against each other on every statistic. Sketches (KLL, HLL) and top-k lists are not numbers in an
array; they have their own paths in both engines.

Adding a statistic is one ``register`` call here, a field on ``ColumnProfile`` where it is kept as
it is (with its merge), and a test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column
from pyspark.sql import functions as F

from spark_audit.names import col as _c

INF = float("inf")
ARROW_KINDS = ("numeric", "categorical")  # the kinds the Arrow pass profiles; the others stay in Spark


# --------------------------------------------------------------------------- what a declaration sees


@dataclass(frozen=True)
class SparkColumn:
    """One column as the Spark expressions of its statistics see it."""

    name: str
    center: float = 0.0
    edges: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None

    @property
    def c(self) -> Column:
        return _c(self.name)

    @property
    def x(self) -> Column:
        """As double (numeric columns)."""
        return self.c.cast("double")

    @property
    def f(self) -> Column:
        """As double, NaN and +/-inf turned into null: the finite values."""
        x = self.x
        return F.when(~F.isnan(x) & (F.abs(x) != F.lit(INF)), x)

    @property
    def d(self) -> Column:
        """The finite values minus the center (moments as plain sums of them: cheaper per row than
        avg/var_pop, and centring on the reference's mean keeps them accurate)."""
        return self.f - F.lit(self.center)

    @property
    def s(self) -> Column:
        return self.c.cast("string")

    @property
    def length(self) -> Column:
        return F.length(self.s)


class NumericBatch:
    """One numeric column of an Arrow batch sorted by group (``order``), with ``starts`` where each
    group's run begins: what the numpy kernels read. Each intermediate is computed once, when a kernel
    first needs it; a column of finite values only (the common case) takes shorter paths."""

    def __init__(self, col: pa.Array, order: np.ndarray, starts: np.ndarray, seg: np.ndarray, center: float,
                 edges: Sequence[float] = ()):
        self.col, self.order, self.starts, self.seg, self.center = col, order, starts, seg, center
        self.edges = np.asarray(edges, dtype=float)
        self.x = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)[order]  # nulls read as NaN
        self.fin = np.isfinite(self.x)
        self.all_finite = bool(self.fin.all())

    def add(self, values: np.ndarray) -> np.ndarray:
        """Per group: the sum of ``values`` (booleans count)."""
        return np.add.reduceat(values, self.starts, dtype=np.float64)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(np.r_[self.starts, len(self.x)]).astype(np.float64)

    @cached_property
    def zero(self) -> np.ndarray:
        return np.zeros(len(self.starts))

    @cached_property
    def valid(self) -> np.ndarray:
        if not self.col.null_count:
            return np.ones(len(self.x), dtype=bool)
        return ~self.col.is_null().to_numpy(zero_copy_only=False)[self.order]

    @cached_property
    def d(self) -> np.ndarray:
        """The finite values minus the center, 0 elsewhere."""
        return self.x - self.center if self.all_finite else np.where(self.fin, self.x - self.center, 0.0)

    @cached_property
    def nn(self) -> np.ndarray:
        return self.lengths if self.all_finite else self.add(self.valid)

    @cached_property
    def nan(self) -> np.ndarray:
        return self.zero if self.all_finite else self.add(np.isnan(self.x) & self.valid)

    @cached_property
    def pinf(self) -> np.ndarray:
        return self.zero if self.all_finite else self.add(self.x == INF)

    @cached_property
    def nf(self) -> np.ndarray:
        return self.lengths if self.all_finite else self.add(self.fin)

    @cached_property
    def neg_inf(self) -> np.ndarray:
        return self.nn - self.nan - self.pinf - self.nf

    def finite_or(self, fill: float) -> np.ndarray:
        return self.x if self.all_finite else np.where(self.fin, self.x, fill)

    @cached_property
    def bucket(self) -> np.ndarray:
        """The number of reference edges <= x: x < e_j iff bucket <= j. NaN (and null) and +inf land in
        the last bucket, which no count reads; -inf in the first, taken out of every count below."""
        return buckets(self.x, self.edges)

    @cached_property
    def below(self) -> np.ndarray:
        """Groups x edges: the finite values below each edge."""
        k = len(self.edges) + 1
        if len(self.starts) == 1:
            counts = np.bincount(self.bucket, minlength=k)[None, :]
        else:
            counts = np.bincount(self.seg * k + self.bucket, minlength=len(self.starts) * k).reshape(
                len(self.starts), k)
        return (np.cumsum(counts, axis=1)[:, :-1] - self.neg_inf[:, None]).astype(np.float64)

    def tail(self, bucket: int, dist: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Per group: the sum of ``dist`` over the finite values in ``bucket``."""
        at = np.flatnonzero(self.bucket == bucket)
        at = at[self.fin[at]]
        where = np.searchsorted(self.starts, at, side="right") - 1
        return np.bincount(where, weights=dist(self.x[at]), minlength=len(self.starts))


class StringBatch:
    """One string column of a sorted Arrow batch: its dictionary codes in group order (-1: null). A
    string's length, emptiness and category are read once per distinct value, not once per row."""

    def __init__(self, col: pa.Array, order: np.ndarray, starts: np.ndarray, seg: np.ndarray,
                 categories: Sequence[str] = ()):
        self.starts, self.seg, self.categories = starts, seg, tuple(categories)
        enc = pc.dictionary_encode(col)
        self.dictionary = enc.dictionary
        self.codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)[order]
        self.valid = self.codes >= 0

    @cached_property
    def nn(self) -> np.ndarray:
        return self.add(self.valid)

    def add(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts, dtype=np.float64)

    def per_value(self, of_dictionary: np.ndarray, null: float | bool) -> np.ndarray:
        """A value of each distinct string, spread to the rows (``null`` for a null)."""
        return np.r_[of_dictionary, null][self.codes]

    @cached_property
    def length(self) -> np.ndarray:
        return self.per_value(pc.utf8_length(self.dictionary).to_numpy(zero_copy_only=False).astype(np.float64),
                              0.0)

    @cached_property
    def in_category(self) -> np.ndarray:
        """Groups x categories: the rows of each reference category."""
        k = len(self.categories) + 1
        cat = pc.index_in(self.dictionary, value_set=pa.array(list(self.categories), pa.string())).fill_null(k - 1)
        code = np.r_[cat.to_numpy(zero_copy_only=False).astype(np.int64), k - 1][self.codes]  # other: k - 1
        counts = np.bincount(self.seg * k + code, minlength=len(self.starts) * k).reshape(len(self.starts), k)
        return counts[:, :-1].astype(np.float64)


def buckets(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, x, side="right")`` (how many edges are <= x; NaN after every edge), as a
    branch-free binary search: each step is one gather and one comparison over the whole batch. On fresh,
    unsorted values ``searchsorted`` mispredicts a branch per level per value, and took twice as long."""
    k = len(edges)
    size = 1 << k.bit_length()  # a power of two > k: the search ends below it
    pad = np.full(size, INF)
    pad[:k] = edges
    idx = np.zeros(len(x), dtype=np.intp)
    got, le = np.empty(len(x)), np.empty(len(x), dtype=bool)
    step = size >> 1
    with np.errstate(invalid="ignore"):
        while step:
            np.take(pad[step - 1:], idx, out=got)  # pad[idx + step - 1]
            np.less_equal(got, x, out=le)
            idx += le * step
            step >>= 1
    np.minimum(idx, k, out=idx)  # +inf passed the padding too
    idx[np.isnan(x)] = k
    return idx


# --------------------------------------------------------------------------- the table


Merge = Literal["sum", "min", "max"]


@dataclass(frozen=True)
class Stat:
    """One statistic of a column (see the module's docstring). ``per``: one value per reference edge
    (``edge``) or category (``category``), or one (None). ``needs``: present only when the column has
    reference edges (``edges``) or categories (``categories``). ``spark(col, j)`` is the aggregate
    (``j`` the family's index); ``numpy(batch)`` the per-group values (groups x family for a family);
    None where the Arrow pass does not profile the kind."""

    name: str
    kinds: tuple[str, ...]
    merge: Merge
    dtype: Literal["int", "float"]
    spark: Callable[[SparkColumn, int | None], Column]
    numpy: Callable[..., np.ndarray] | None = None
    per: Literal["edge", "category"] | None = None
    needs: Literal["edges", "categories"] | None = None
    field: str | None = None

    def applies(self, kind: str, edges: Sequence[float] | None, categories: Sequence[str] | None) -> bool:
        if kind not in self.kinds:
            return False
        if self.needs == "edges" or self.per == "edge":
            return bool(edges)
        if self.needs == "categories" or self.per == "category":
            return bool(categories)
        return True

    def names(self, edges: Sequence[float] | None, categories: Sequence[str] | None) -> list[str]:
        if self.per == "edge":
            return [f"{self.name}{j}" for j in range(len(edges or ()))]
        if self.per == "category":
            return [f"{self.name}{j}" for j in range(len(categories or ()))]
        return [self.name]


STATS: dict[str, Stat] = {}
"""The one table of column statistics, in the order both engines lay them out."""


def register(stat: Stat) -> Stat:
    if stat.name in STATS:
        raise ValueError(f"column statistic {stat.name!r} is already declared")
    if stat.numpy is None and set(stat.kinds) & set(ARROW_KINDS):
        raise ValueError(f"{stat.name!r}: a statistic of a kind the Arrow pass profiles needs its numpy kernel")
    STATS[stat.name] = stat
    return stat


_NUM, _STR, _ALL = ("numeric",), ("categorical",), ("numeric", "categorical", "boolean", "timestamp")

register(Stat("nn", _ALL, "sum", "int", lambda s, _: F.count(s.c), lambda b: b.nn))
# numbers: counts of the special values, centred moments of the finite ones, their extremes
register(Stat("nan", _NUM, "sum", "int", lambda s, _: F.count_if(F.isnan(s.x)), lambda b: b.nan, field="nan"))
register(Stat("pinf", _NUM, "sum", "int", lambda s, _: F.count_if(s.x == F.lit(INF)), lambda b: b.pinf,
              field="pos_inf"))
register(Stat("zeros", _NUM, "sum", "int", lambda s, _: F.count_if(s.x == 0), lambda b: b.add(b.x == 0),
              field="zeros"))
register(Stat("s1", _NUM, "sum", "float", lambda s, _: F.sum(s.d), lambda b: np.add.reduceat(b.d, b.starts)))
register(Stat("s2", _NUM, "sum", "float", lambda s, _: F.sum(s.d * s.d),
              lambda b: np.add.reduceat(b.d * b.d, b.starts)))
register(Stat("negatives", _NUM, "sum", "int", lambda s, _: F.count_if(s.f < 0),
              lambda b: b.add(b.fin & (b.x < 0)), field="negatives"))
register(Stat("nf", _NUM, "sum", "int", lambda s, _: F.count(s.f), lambda b: b.nf, field="n_finite"))
register(Stat("min", _NUM, "min", "float", lambda s, _: F.min(s.f),
              lambda b: np.minimum.reduceat(b.finite_or(INF), b.starts)))
register(Stat("max", _NUM, "max", "float", lambda s, _: F.max(s.f),
              lambda b: np.maximum.reduceat(b.finite_or(-INF), b.starts)))
# exact tails, how far values reach below the first edge and above the last one (sums of (e_1 - x)^+ and
# (x - e_K)^+), so Wasserstein from the bins sees outliers; then the cumulative counts below each edge
register(Stat("tlo", _NUM, "sum", "float",
              lambda s, _: F.sum(F.when(s.f < F.lit(s.edges[0]), F.lit(s.edges[0]) - s.f)),
              lambda b: b.tail(0, lambda v: b.edges[0] - v), needs="edges"))
register(Stat("thi", _NUM, "sum", "float",
              lambda s, _: F.sum(F.when(s.f >= F.lit(s.edges[-1]), s.f - F.lit(s.edges[-1]))),
              lambda b: b.tail(len(b.edges), lambda v: v - b.edges[-1]), needs="edges"))
register(Stat("lt", _NUM, "sum", "int", lambda s, j: F.count_if(s.f < F.lit(s.edges[j])), lambda b: b.below,
              per="edge"))
# strings: empties and lengths (in code points), then the rows of each reference category
register(Stat("empty", _STR, "sum", "int", lambda s, _: F.count_if(s.s == ""),
              lambda b: b.add(b.per_value(pc.equal(b.dictionary, "").to_numpy(zero_copy_only=False)
                                          .astype(bool), False)), field="empty"))
register(Stat("lmin", _STR, "min", "int", lambda s, _: F.min(s.length),
              lambda b: np.minimum.reduceat(np.where(b.valid, b.length, INF), b.starts), field="len_min"))
register(Stat("lmax", _STR, "max", "int", lambda s, _: F.max(s.length),
              lambda b: np.maximum.reduceat(np.where(b.valid, b.length, -INF), b.starts), field="len_max"))
register(Stat("lsum", _STR, "sum", "int", lambda s, _: F.sum(s.length), lambda b: b.add(b.length),
              field="len_sum"))
register(Stat("eq", _STR, "sum", "int", lambda s, j: F.count_if(s.s == F.lit(s.categories[j])),
              lambda b: b.in_category, per="category"))
# booleans and timestamps: Spark aggregates on both engines
register(Stat("true", ("boolean",), "sum", "int", lambda s, _: F.count_if(s.c), field="n_true"))
register(Stat("false", ("boolean",), "sum", "int", lambda s, _: F.count_if(~s.c), field="n_false"))
register(Stat("tmin", ("timestamp",), "min", "int", lambda s, _: F.min(F.unix_micros(s.c.cast("timestamp")))))
register(Stat("tmax", ("timestamp",), "max", "int", lambda s, _: F.max(F.unix_micros(s.c.cast("timestamp")))))


# --------------------------------------------------------------------------- the engines, from the table


def declared(kind: str, edges: Sequence[float] | None = None,
             categories: Sequence[str] | None = None) -> list[tuple[Stat, str]]:
    """``(statistic, key suffix)`` of a column, in layout order."""
    return [(s, n) for s in STATS.values() if s.applies(kind, edges, categories) for n in s.names(edges, categories)]


def spark_aggregates(prefix: str, kind: str, col: SparkColumn) -> list[Column]:
    """The Spark engine: every declared statistic of the column as an aliased aggregate expression."""
    out = []
    for s in STATS.values():
        if not s.applies(kind, col.edges, col.categories):
            continue
        if s.per is None:
            out.append(s.spark(col, None).alias(prefix + s.name))
        else:
            out += [s.spark(col, j).alias(prefix + n) for j, n in enumerate(s.names(col.edges, col.categories))]
    return out


def numpy_stats(kind: str, batch: NumericBatch | StringBatch, edges: Sequence[float] | None = None,
                categories: Sequence[str] | None = None) -> list[np.ndarray]:
    """The Arrow engine: every declared statistic of the column, per group, in layout order (a family's
    columns one by one)."""
    out: list[np.ndarray] = []
    for s in STATS.values():
        if not s.applies(kind, edges, categories):
            continue
        v = s.numpy(batch)
        out += list(v.T) if s.per else [v]
    return out


def merge_of(suffix: str) -> Stat:
    """The declaration a key suffix (``nn``, ``lt3``) belongs to."""
    if suffix in STATS:
        return STATS[suffix]
    family = suffix.rstrip("0123456789")
    if family in STATS and STATS[family].per:
        return STATS[family]
    raise KeyError(f"no column statistic is declared for {suffix!r}")
