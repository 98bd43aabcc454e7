"""Column and table profiles: mergeable states, their metrics, and (de)serialisation.

A profile is a *state*: counts add, moments merge with the parallel formula
(Chan et al.), min/max combine, KLL and HLL sketches merge with Apache
DataSketches (the same binary format Spark's ``kll_sketch_agg_double`` and
``hll_sketch_agg`` write), histograms on the same bins add, top-k counts add
and are cut back to k.  ``merge(profile(a), profile(b))`` therefore equals
``profile(a ∪ b)`` exactly for counts, min/max, moments and histograms, within
sketch error for quantiles and distinct counts, and approximately for top-k
(a value outside both top-k lists is counted in ``other``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from datasketches import hll_sketch, hll_union, kll_doubles_sketch

from spark_audit.catalog import KINDS  # noqa: F401  (re-exported: the one list is spark_audit.catalog)

# 2: a reference keeps its window-to-window noise in extras["noise"]; 3: a reference keeps its noise as
# between-window variance components, and its cycle's phases in ``phases``; older profiles still load
FORMAT_VERSION = 3
HLL_LG_K = 12


@dataclass(frozen=True)
class Bins:
    """A histogram on fixed bins.

    Numeric: ``edges`` are the inner cut points e_1 < ... < e_{B-1}; bin 0 is
    (-inf, e_1), bin i is [e_i, e_{i+1}), the last bin is [e_{B-1}, +inf).
    Categorical: ``categories`` are the reference's values; ``counts`` has one
    entry per category plus a last entry for every other (unseen) value.
    NaN, +/-inf and nulls are never in a histogram (they are counted apart).
    """

    counts: tuple[int, ...]
    edges: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None
    # numeric: exact sums of (e_1 - x) over the values below the first edge and of (x - e_K) over
    # those at or above the last one; with the counts they give the tails' part of Wasserstein
    tails: tuple[float, float] | None = None

    def same_bins(self, other: Bins) -> bool:
        return self.edges == other.edges and self.categories == other.categories

    def to_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "edges": _list(self.edges), "categories": _list(self.categories),
                "tails": _list(self.tails)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bins:
        return cls(
            counts=tuple(int(c) for c in d["counts"]),
            edges=None if d.get("edges") is None else tuple(float(e) for e in d["edges"]),
            categories=None if d.get("categories") is None else tuple(str(c) for c in d["categories"]),
            tails=None if d.get("tails") is None else (float(d["tails"][0]), float(d["tails"][1])),
        )


def _list(t: tuple | None) -> list | None:
    return None if t is None else list(t)


_SUM, _MIN, _MAX = {"merge": "sum"}, {"merge": "min"}, {"merge": "max"}


@dataclass(frozen=True)
class ColumnProfile:
    """The mergeable state of one column in one group (window x slice x model version)."""

    name: str
    kind: str
    dtype: str
    # each count, sum and extreme says how two groups' values merge (``_SUM``, ``_MIN``, ``_MAX``)
    count: int = field(default=0, metadata=_SUM)  # rows, null or not
    nulls: int = field(default=0, metadata=_SUM)
    # numeric
    nan: int = field(default=0, metadata=_SUM)
    pos_inf: int = field(default=0, metadata=_SUM)
    neg_inf: int = field(default=0, metadata=_SUM)
    zeros: int = field(default=0, metadata=_SUM)
    negatives: int = field(default=0, metadata=_SUM)  # finite values below 0 (a sign flip, a sentinel)
    n_finite: int = 0  # with mean and m2: merged as moments
    mean: float | None = None
    m2: float | None = None  # sum of squared deviations from the mean, finite values
    # numeric and timestamp (epoch seconds); for strings, lengths live in len_*
    min: float | None = field(default=None, metadata=_MIN)
    max: float | None = field(default=None, metadata=_MAX)
    kll: bytes | None = None
    hll: bytes | None = None
    # strings
    empty: int = field(default=0, metadata=_SUM)
    len_min: int | None = field(default=None, metadata=_MIN)
    len_max: int | None = field(default=None, metadata=_MAX)
    len_sum: int = field(default=0, metadata=_SUM)
    top: dict[str, int] = field(default_factory=dict)
    top_k: int = 0
    # boolean
    n_true: int = field(default=0, metadata=_SUM)
    n_false: int = field(default=0, metadata=_SUM)
    bins: Bins | None = None

    # ----- metrics derived from the state -----
    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def sample_size(self) -> int:
        """The values a distribution comparison counts: finite numbers, or non-null values."""
        return self.n_finite if self.kind == "numeric" else self.non_null

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.count if self.count else float("nan")

    @property
    def nan_fraction(self) -> float:
        return self.nan / self.count if self.count else float("nan")

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1) of the finite values."""
        if self.m2 is None or self.n_finite < 2:
            return None
        return self.m2 / (self.n_finite - 1)

    @property
    def std(self) -> float | None:
        v = self.variance
        return None if v is None else math.sqrt(max(v, 0.0))

    @property
    def avg_length(self) -> float | None:
        n = self.non_null
        return self.len_sum / n if self.kind == "categorical" and n else None

    @property
    def distinct(self) -> float | None:
        """Approximate distinct non-null values (HLL estimate)."""
        if self.hll is None:
            return None
        return float(hll_sketch.deserialize(self.hll).get_estimate())

    def kll_sketch(self) -> kll_doubles_sketch | None:
        if self.kll is None:
            return None
        sketch = kll_doubles_sketch.deserialize(self.kll)
        return None if sketch.is_empty() else sketch

    def kll_items(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The values the KLL sketch keeps and their weights (they sum to the finite count)."""
        sketch = self.kll_sketch()
        if sketch is None:
            return None
        items = np.asarray(list(sketch), dtype=float).reshape(-1, 2)
        return items[:, 0], items[:, 1]

    def quantiles(self, probs: Iterable[float]) -> list[float] | None:
        """Quantiles of the finite values: from the KLL sketch, or, for a column profiled on the
        reference's bins without one, interpolated linearly within the exact bin counts between the
        exact min and max (so off by at most the width of the bin the quantile falls in)."""
        sketch = self.kll_sketch()
        if sketch is not None:
            return [float(q) for q in sketch.get_quantiles(list(probs))]
        return self._binned_quantiles(list(probs))

    def _binned_quantiles(self, probs: list[float]) -> list[float] | None:
        b = self.bins
        if b is None or not b.edges or not b.counts or not self.n_finite or self.min is None or self.max is None:
            return None
        lo, hi = float(self.min), float(self.max)
        below = np.cumsum(np.asarray(b.counts, dtype=float))[:-1] / self.n_finite  # fraction below each edge
        xs, fs = [lo], [0.0]
        for e, f in zip(b.edges, below, strict=True):
            if lo < e <= hi:
                xs.append(float(e))
                fs.append(float(min(max(f, fs[-1]), 1.0)))
        xs.append(hi)
        fs.append(1.0)
        x, f = np.asarray(xs), np.asarray(fs)
        out = []
        for q in probs:
            j = int(np.searchsorted(f, q, side="left"))  # the first point whose CDF reaches q
            if j <= 0:
                out.append(lo)
            elif j >= len(f):
                out.append(hi)
            else:
                gap = f[j] - f[j - 1]
                t = (q - f[j - 1]) / gap if gap > 0 else 1.0
                out.append(float(x[j - 1] + t * (x[j] - x[j - 1])))
        return out

    def cdf(self, points: Iterable[float]) -> list[float] | None:
        """Fraction of finite values <= each point (from the KLL sketch)."""
        sketch = self.kll_sketch()
        if sketch is None:
            return None
        pts = sorted(set(float(p) for p in points))
        values = sketch.get_cdf(pts, True)[:-1]
        lookup = dict(zip(pts, values, strict=True))
        return [float(lookup[float(p)]) for p in points]

    def histogram(self, bins: Bins) -> np.ndarray:
        """Counts on ``bins``' bins: exact when this profile was computed on them.

        Otherwise numeric counts come from the KLL sketch (within its rank error)
        and categorical counts from the top-k lists (values outside top-k go to
        the last, "other" bucket).
        """
        if self.bins is not None and self.bins.same_bins(bins):
            return np.asarray(self.bins.counts, dtype=float)
        if bins.edges is not None:
            sketch = self.kll_sketch()
            if sketch is None:
                return np.zeros(len(bins.edges) + 1)
            below = np.asarray(sketch.get_cdf(list(bins.edges), False)[:-1]) * self.n_finite  # P(x < e)
            cum = np.concatenate([[0.0], below, [float(self.n_finite)]])
            return np.clip(np.diff(cum), 0.0, None)
        assert bins.categories is not None
        known = [float(self.top.get(c, 0)) for c in bins.categories]
        other = max(float(self.non_null) - sum(known), 0.0)
        return np.asarray(known + [other])

    def summary(self) -> dict[str, Any]:
        """Flat metric name -> value, for result tables and MLflow."""
        out: dict[str, Any] = {
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": self.null_fraction,
            "distinct": self.distinct,
        }
        if self.kind == "numeric":
            q = self.quantiles([0.01, 0.25, 0.5, 0.75, 0.99]) or [None] * 5
            out.update(
                nan=self.nan, pos_inf=self.pos_inf, neg_inf=self.neg_inf, zeros=self.zeros,
                negatives=self.negatives,
                nan_fraction=self.nan_fraction, min=self.min, max=self.max, mean=self.mean,
                std=self.std, p01=q[0], p25=q[1], p50=q[2], p75=q[3], p99=q[4],
            )
        elif self.kind == "categorical":
            out.update(empty=self.empty, len_min=self.len_min, len_max=self.len_max, len_avg=self.avg_length)
        elif self.kind == "boolean":
            out.update(n_true=self.n_true, n_false=self.n_false)
        elif self.kind == "timestamp":
            out.update(min=self.min, max=self.max)
        return out

    # ----- merge -----
    def merge(self, other: ColumnProfile) -> ColumnProfile:
        if (self.name, self.kind) != (other.name, other.kind):
            raise ValueError(f"cannot merge profiles of {self.name}:{self.kind} and {other.name}:{other.kind}")
        mean, m2, n = _merge_moments(self.n_finite, self.mean, self.m2, other.n_finite, other.mean, other.m2)
        top_k = max(self.top_k, other.top_k)
        top: dict[str, int] = dict(self.top)
        for value, c in other.top.items():
            top[value] = top.get(value, 0) + c
        if top_k and len(top) > top_k:
            top = dict(sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k])
        bins = None
        if self.bins is not None and other.bins is not None and self.bins.same_bins(other.bins):
            summed = tuple(a + b for a, b in zip(self.bins.counts, other.bins.counts, strict=True))
            tails = None
            if self.bins.tails is not None and other.bins.tails is not None:
                tails = (self.bins.tails[0] + other.bins.tails[0], self.bins.tails[1] + other.bins.tails[1])
            bins = replace(self.bins, counts=summed, tails=tails)
        merged = {f.name: _MERGES[f.metadata["merge"]](getattr(self, f.name), getattr(other, f.name))
                  for f in fields(self) if "merge" in f.metadata}
        return replace(
            self,
            **merged,
            dtype=self.dtype if self.dtype == other.dtype else f"{self.dtype}|{other.dtype}",
            n_finite=n,
            mean=mean,
            m2=m2,
            kll=_merge_kll(self.kll, other.kll),
            hll=_merge_hll(self.hll, other.hll),
            top=top,
            top_k=top_k,
            bins=bins,
        )

    # ----- serialisation -----
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bytes):
                v = base64.b64encode(v).decode("ascii")
            elif isinstance(v, Bins):
                v = v.to_dict()
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        for key in ("kll", "hll"):
            if kwargs.get(key) is not None:
                kwargs[key] = base64.b64decode(kwargs[key])
        if kwargs.get("bins") is not None:
            kwargs["bins"] = Bins.from_dict(kwargs["bins"])
        kwargs["top"] = {str(k): int(v) for k, v in (kwargs.get("top") or {}).items()}
        return cls(**kwargs)


def _opt(fn, a, b):
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


_MERGES = {"sum": lambda a, b: a + b, "min": lambda a, b: _opt(min, a, b), "max": lambda a, b: _opt(max, a, b)}


def _merge_moments(na: int, ma: float | None, m2a: float | None, nb: int, mb: float | None, m2b: float | None):
    """Chan et al.'s parallel update of (n, mean, M2)."""
    if not nb or mb is None:
        return ma, m2a, na
    if not na or ma is None:
        return mb, m2b, nb
    n = na + nb
    delta = mb - ma
    mean = ma + delta * nb / n
    m2 = (m2a or 0.0) + (m2b or 0.0) + delta * delta * na * nb / n
    return mean, m2, n


def _merge_kll(a: bytes | None, b: bytes | None) -> bytes | None:
    if a is None or b is None:
        return a if b is None else b
    sketch = kll_doubles_sketch.deserialize(a)
    sketch.merge(kll_doubles_sketch.deserialize(b))
    return bytes(sketch.serialize())


def _merge_hll(a: bytes | None, b: bytes | None) -> bytes | None:
    if a is None or b is None:
        return a if b is None else b
    union = hll_union(HLL_LG_K)
    union.update(hll_sketch.deserialize(a))
    union.update(hll_sketch.deserialize(b))
    return bytes(union.get_result().serialize_compact())


@dataclass(frozen=True)
class GroupKey:
    """Which rows a profile covers. ``None`` means "all" for that dimension."""

    window_start: str | None = None  # ISO-8601 UTC
    window_end: str | None = None
    slice: str | None = None  # "col=value[,col=value]"; None = every slice
    model_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"window_start": self.window_start, "window_end": self.window_end,
                "slice": self.slice, "model_version": self.model_version}


@dataclass(frozen=True)
class TableProfile:
    """Profiles of all audited columns for one group, plus table-level facts."""

    key: GroupKey
    row_count: int
    columns: dict[str, ColumnProfile]
    schema: tuple[tuple[str, str], ...] = ()  # (name, Spark type) of the whole source table
    # per-slice profiles of the same rows (a reference keeps them so slices compare like with like)
    slices: dict[str, TableProfile] = field(default_factory=dict)
    # JSON-able facts beside the column states (a reference keeps its model quality here)
    extras: dict[str, Any] = field(default_factory=dict)
    # a reference with a calendar cycle: per phase (its number as text) the profile of its windows of that
    # phase, with per-slice profiles of their own (``spark_audit.baseline``)
    phases: dict[str, TableProfile] = field(default_factory=dict)

    def centers(self) -> dict[str, float]:
        """Each column's mean, where it has one: the centres a later scan shifts numbers by before
        summing their moments (``profile_groups(centers=...)``)."""
        return {n: c.mean for n, c in self.columns.items() if c.mean is not None}

    def merge(self, other: TableProfile, key: GroupKey | None = None) -> TableProfile:
        cols = dict(self.columns)
        for name, col in other.columns.items():
            cols[name] = cols[name].merge(col) if name in cols else col
        return TableProfile(
            key=key or _merge_keys(self.key, other.key),
            row_count=self.row_count + other.row_count,
            columns=cols,
            schema=self.schema or other.schema,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "spark-audit-profile",
            "format_version": FORMAT_VERSION,
            "key": self.key.to_dict(),
            "row_count": self.row_count,
            "schema": [list(s) for s in self.schema],
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "slices": {label: p.to_dict() for label, p in self.slices.items()},
            "extras": self.extras,
            **({"phases": {k: p.to_dict() for k, p in self.phases.items()}} if self.phases else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableProfile:
        if d.get("format") != "spark-audit-profile":
            raise ValueError("not a spark-audit profile (missing format marker)")
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(
                f"profile format version {d['format_version']} is newer than this spark-audit "
                f"understands ({FORMAT_VERSION}); upgrade spark-audit"
            )
        return cls(
            key=GroupKey(**d["key"]),
            row_count=int(d["row_count"]),
            columns={n: ColumnProfile.from_dict(c) for n, c in d["columns"].items()},
            schema=tuple((str(a), str(b)) for a, b in d.get("schema", [])),
            slices={label: cls.from_dict(p) for label, p in (d.get("slices") or {}).items()},
            extras=dict(d.get("extras") or {}),
            phases={k: cls.from_dict(p) for k, p in (d.get("phases") or {}).items()},
        )

    @classmethod
    def from_json(cls, text: str) -> TableProfile:
        return cls.from_dict(json.loads(text))


def _merge_keys(a: GroupKey, b: GroupKey) -> GroupKey:
    def pick(x, y):
        return x if x == y else None

    starts = [s for s in (a.window_start, b.window_start) if s]
    ends = [e for e in (a.window_end, b.window_end) if e]
    return GroupKey(
        window_start=min(starts) if starts else None,
        window_end=max(ends) if ends else None,
        slice=pick(a.slice, b.slice),
        model_version=pick(a.model_version, b.model_version),
    )


def merge_all(profiles: Iterable[TableProfile], key: GroupKey | None = None) -> TableProfile:
    it = iter(profiles)
    try:
        acc = next(it)
    except StopIteration:
        raise ValueError("merge_all needs at least one profile") from None
    for p in it:
        acc = acc.merge(p)
    return replace(acc, key=key) if key is not None else acc
