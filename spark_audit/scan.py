"""Scan parts: everything that shares the audit's one aggregation, under one protocol.

A part (Deequ's ``ScanShareableAnalyzer``, TFDV's combiners) gives its aggregate
expressions under its own namespace (aliases ``<name>__...``), reads its state back
from an aggregated row, and merges two states. The profiler runs every part's
expressions in the same ``groupBy(...).agg(...)``, checks before the scan that each
output column belongs to exactly one namespace, and keeps per group the parts'
states, not raw rows. Coarser groups (a window's slices, a reference's windows)
merge those states; ``tests/merge_check.py`` checks every part's merge against the
state of the union, in several orders.

Namespaces in use: ``p`` profile (``spark_audit.profile``), ``c`` contract,
``q`` quality, ``e`` label-free estimate, ``t`` table checks (row-hash sketch, newest
row), ``m`` PCA cross-moments (reference), ``r`` PCA reconstruction error (audit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column

SEP = "__"

State = Any


def add_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The merge of states that are sums: numbers add, arrays add element-wise, None is empty."""
    out: dict[str, Any] = dict(a)
    for key, y in b.items():
        x = out.get(key)
        if x is None or y is None:
            out[key] = y if x is None else x
        elif isinstance(x, (list, tuple)):
            if len(x) != len(y):
                raise ValueError(f"cannot merge {key!r}: arrays of length {len(x)} and {len(y)}")
            out[key] = [(u if v is None else v if u is None else u + v) for u, v in zip(x, y, strict=True)]
        else:
            out[key] = x + y
    return out


@dataclass(frozen=True)
class ScanPart:
    """One part of the shared scan.

    ``exprs`` are aggregate expressions aliased ``<name>__<anything>``. ``read`` turns the
    part's columns of one aggregated row (a dict holding only them) into its state; by
    default the state is that dict. ``merge`` combines the states of two disjoint groups
    into the state of their union (default: every value is a sum). ``zero`` is the state
    of no rows, the neutral element of ``merge``.

    ``arrow`` are statistics of the part that the profiler's Arrow pass computes instead, when
    it runs (``spark_audit.profile.arrow_scan.Extra``: cross-moments, PCA errors, a row-hash
    sketch), under the same names and with the same values as ``spark_twin()``, the Spark
    aggregate expressions that compute them on the Spark engine. Built only when needed: at
    20 features the cross-moments are 210 expressions.
    """

    name: str
    exprs: tuple[Column, ...]
    merge: Callable[[State, State], State] = add_states
    read: Callable[[dict[str, Any]], State] = dict
    zero: Callable[[], State] = dict
    arrow: tuple[Any, ...] = ()
    spark_twin: Callable[[], Sequence[Column]] | None = None

    def aggregate_exprs(self, arrow: bool) -> tuple[Column, ...]:
        """The expressions the Spark aggregation runs: ``exprs``, plus the twins of the Arrow
        statistics when no Arrow pass runs."""
        if arrow or not self.arrow:
            return self.exprs
        assert self.spark_twin is not None, f"scan part {self.name!r} has Arrow statistics and no Spark twin"
        return (*self.exprs, *self.spark_twin())

    @property
    def prefix(self) -> str:
        return self.name + SEP

    def state_of(self, row: Mapping[str, Any]) -> State:
        return self.read({k: v for k, v in row.items() if k.startswith(self.prefix)})


@dataclass
class States:
    """The parts' states of one group; missing parts read as their ``zero``."""

    parts: dict[str, ScanPart] = field(default_factory=dict)
    values: dict[str, State] = field(default_factory=dict)

    def __getitem__(self, name: str) -> State:
        if name in self.values:
            return self.values[name]
        part = self.parts.get(name)
        return part.zero() if part is not None else {}

    def merge(self, other: States) -> States:
        parts = {**self.parts, **other.parts}
        values = {}
        for name in {**self.values, **other.values}:
            a, b = self.values.get(name), other.values.get(name)
            merge = parts[name].merge if name in parts else add_states
            values[name] = b if a is None else a if b is None else merge(a, b)
        return States(parts, values)

    @classmethod
    def of_row(cls, parts: Sequence[ScanPart], row: Mapping[str, Any]) -> States:
        return cls({p.name: p for p in parts}, {p.name: p.state_of(row) for p in parts})


def merge_states(states: Iterable[States]) -> States:
    """The states of the union of disjoint groups: the one merge path of every part."""
    out = States()
    for s in states:
        out = out.merge(s)
    return out


def check_namespaces(columns: Sequence[str], parts: Sequence[ScanPart], others: Iterable[str] = ()) -> None:
    """Every output column of the aggregation belongs to one part (or is a grouping/profile column).

    Raises ``ValueError`` naming a column outside every namespace, or two parts sharing one. This
    is what keeps the prefixes a protocol rather than a naming convention.
    """
    names = [p.name for p in parts]
    if len(set(names)) != len(names) or any(SEP in n for n in names):
        raise ValueError(f"scan parts need distinct names without {SEP!r}: {names}")
    known = set(others)
    stray = [c for c in columns if c not in known and not any(c.startswith(p.prefix) for p in parts)]
    if stray:
        raise ValueError(f"aggregate columns outside every scan part's namespace: {stray}; "
                         f"namespaces: {[p.prefix for p in parts]}")
