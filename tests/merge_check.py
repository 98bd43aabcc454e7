"""One helper that checks a scan part's merge against the state of the union (TFDV's
``assertCombinerOutputEqual``): the groups of a split table, merged in several orders, must give
the state the whole table gives in one aggregation."""

from __future__ import annotations

import math
from functools import reduce

import pytest
from datasketches import hll_sketch, hll_union

from spark_audit.profile import Grouping, profile_groups
from spark_audit.profile.state import HLL_LG_K, TableProfile, merge_all
from spark_audit.scan import ScanPart, States

SPLIT = "__merge_check_split"


def _orders(items: list) -> dict[str, list]:
    """The same members in three orders, merged three ways: left fold, right fold, pairwise tree."""
    return {"left": items, "right": items[::-1], "tree": items[1::2] + items[0::2]}


def _tree(states: list[States]) -> States:
    while len(states) > 1:
        states = [states[i].merge(states[i + 1]) if i + 1 < len(states) else states[i]
                  for i in range(0, len(states), 2)]
    return states[0]


def _registers(b) -> float:
    """The composite estimate of the sketch's registers: a sketch united with itself loses the HIP
    estimate a streamed sketch keeps, so two sketches with the same registers give the same value."""
    union = hll_union(HLL_LG_K)
    for _ in range(2):
        union.update(hll_sketch.deserialize(bytes(b)))
    return union.get_estimate()


def assert_same_value(got, want, where: str, rel: float = 1e-9) -> None:
    if isinstance(want, (bytes, bytearray)):  # an HLL sketch: the same registers, so the same estimate
        # once both pass through a union (a streamed sketch's HIP estimate is lost in any union)
        assert _registers(got) == pytest.approx(_registers(want), rel=1e-12), where
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_value(a, b, f"{where}[{i}]", rel)
    elif isinstance(want, float) and math.isnan(want):
        assert got is None or math.isnan(got), where
    elif isinstance(want, (int, float)) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=rel, abs=1e-9), where
    else:
        assert got == want, where


def assert_state_equal(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), f"{where}: keys {sorted(set(got) ^ set(want))} differ"
        for k in want:
            assert_same_value(got[k], want[k], f"{where}.{k}")
    else:
        assert_same_value(got, want, where)


def assert_profile_equal(got: TableProfile, want: TableProfile, where: str, true_counts=None) -> None:
    """``true_counts`` ({column: {value: count}}, counted exactly): a merged top-k list may be truncated,
    but each count it keeps is a lower bound of the value's true count, never more."""
    assert got.row_count == want.row_count, where
    for name, w in want.columns.items():
        g = got.columns[name]
        assert (g.top, g.top_k) == (w.top, w.top_k), f"{where}.{name}.top"
        for value, c in g.top.items():
            assert c <= (true_counts or {}).get(name, {}).get(value, c), f"{where}.{name}.top[{value}]"
        for attr in ("count", "nulls", "nan", "min", "max", "n_true", "n_false"):
            assert_same_value(getattr(g, attr), getattr(w, attr), f"{where}.{name}.{attr}")
        for attr in ("mean", "std"):
            assert_same_value(getattr(g, attr), getattr(w, attr), f"{where}.{name}.{attr}", rel=1e-7)
        if w.bins is not None:
            assert_same_value(list(g.bins.counts), list(w.bins.counts), f"{where}.{name}.bins")
        if w.hll is not None:
            assert_same_value(g.hll, w.hll, f"{where}.{name}.hll")
        if w.kll is not None:  # a KLL merge is not the sketch of the union, but keeps n, min and max exactly
            gk, wk = g.kll_sketch(), w.kll_sketch()
            assert (gk.n, gk.get_min_value(), gk.get_max_value()) == (wk.n, wk.get_min_value(),
                                                                      wk.get_max_value()), f"{where}.{name}.kll"
            assert gk.get_quantile(0.5) == pytest.approx(wk.get_quantile(0.5), abs=3 * gk.normalized_rank_error(
                False) * (wk.get_max_value() - wk.get_min_value())), f"{where}.{name}.kll median"


def assert_merge_matches_union(df, columns, parts: list[ScanPart], *, splits: int = 4, bins=None,
                               centers=None, top_k: int = 0, engine: str = "arrow") -> None:
    """Split ``df`` into ``splits`` disjoint groups; each part's state (and the profile, its top-k lists
    included) merged in three orders must equal the state of the whole table, on ``engine``."""
    from pyspark.sql import functions as F

    kw = {"parts": parts, "bins": bins, "centers": centers, "top_k": top_k, "engine": engine}
    [w] = profile_groups(df, columns, Grouping(model_version="1"), **kw)
    split = df.withColumn(SPLIT, (F.monotonically_increasing_id() % splits).cast("string"))
    groups = profile_groups(split, columns, Grouping(slices=(SPLIT,), model_version="1"), **kw)
    true_counts = {c.name: {str(r[0]): r[1] for r in df.groupBy(c.name).count().collect() if r[0] is not None}
                   for c in columns if c.kind == "categorical"}
    assert len(groups) == splits, "every split holds rows"
    for order, members in _orders(groups).items():
        states = reduce(States.merge, [m.states for m in members]) if order != "tree" else \
            _tree([m.states for m in members])
        for part in parts:
            assert_state_equal(states[part.name], w.states[part.name], f"{order}:{part.name}")
        assert_profile_equal(merge_all(m.profile for m in members), w.profile, f"{order}:profile", true_counts)
