"""The Arrow pass (spark_audit.profile.arrow_scan) against the same statistics as Spark aggregates.

The two engines must give the same profile on the reference's bins: counts exactly, sums to
round-off, min and max exactly, across slices, windows, nulls, NaN, +/-inf, zeros, -0.0, empty
strings, values outside the reference's categories and a group whose column is all null.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from spark_audit.drift.compare import reference_bins
from spark_audit.profile import Grouping, arrow_scan, profile_groups, profiler, resolve_columns, statistics
from spark_audit.profile.arrow_scan import Layout, Target
from spark_audit.profile.exprs import ALL_SKETCHES, Sketches

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _rows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        u = rng.random()
        x = float(rng.normal(3.0, 2.0))
        if u < 0.05:
            x = None
        elif u < 0.08:
            x = float("nan")
        elif u < 0.09:
            x = float("inf")
        elif u < 0.10:
            x = float("-inf")
        elif u < 0.13:
            x = 0.0 if i % 2 else -0.0
        elif u < 0.14:
            x = 1e6 * seed  # the current rows reach above the reference's max: the upper tail sum
        cat = [None, "", "a", "b", "b", "c", "zz"][int(rng.integers(0, 7))]
        region = "north" if rng.random() < 0.6 else "south"
        count = None if region == "south" else int(rng.integers(0, 50))  # all null in one slice
        out.append((T0 + timedelta(hours=float(rng.uniform(0, 72))), region, x, cat, count))
    return out


@pytest.fixture(scope="module")
def frames(spark):
    schema = "ts timestamp, region string, x double, cat string, k int"
    ref = spark.createDataFrame(_rows(3000, 1), schema)
    cur = spark.createDataFrame(_rows(2000, 2), schema).repartition(3)
    return ref, cur


def _close(a, b, path):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            assert a == b, path
        elif math.isnan(a):
            assert math.isnan(b), path
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), path
    else:
        assert a == b, path


def test_arrow_pass_matches_spark_aggregates(spark, frames, caplog):
    caplog.set_level(logging.DEBUG, logger="spark_audit.profile.arrow_scan")
    ref, cur = frames
    cols = resolve_columns(cur.schema, [("x", None), ("cat", None), ("k", None)])
    [base] = profile_groups(ref, cols, Grouping(model_version="1"), top_k=3)
    bins = {n: b for n, c in base.profile.columns.items() if (b := reference_bins(c, 10))}
    assert set(bins) == {"x", "cat", "k"}
    centers = {n: c.mean for n, c in base.profile.columns.items() if c.mean is not None}
    grouping = Grouping(timestamp_column="ts", window="1 day", slices=("region",), model_version="1")
    kw = dict(bins=bins, centers=centers, top_k=0, sketches=Sketches())
    fast = profile_groups(cur, cols, grouping, engine="arrow", **kw)
    slow = profile_groups(cur, cols, grouping, engine="spark", **kw)
    assert [g.key for g in fast] == [g.key for g in slow] and len(fast) == 6
    # three tasks each saw (nearly) every group; the merge stage hands the driver one row per group
    assert cur.rdd.getNumPartitions() == 3
    assert "arrow pass: 6 row(s) reached the driver" in caplog.text
    for f, s in zip(fast, slow, strict=True):
        assert f.profile.row_count == s.profile.row_count
        for name in ("x", "cat", "k"):
            a, b = f.profile.columns[name].to_dict(), s.profile.columns[name].to_dict()
            assert a.keys() == b.keys()
            for key in a:
                if key == "hll":  # the same sketch, its bytes in the order the rows came in
                    da, db = f.profile.columns[name].distinct, s.profile.columns[name].distinct
                    assert (da is None and db is None) or da == pytest.approx(db)
                elif key == "bins":
                    assert a[key]["counts"] == b[key]["counts"], (f.key, name)
                    ta, tb = a[key].get("tails"), b[key].get("tails")
                    assert (ta is None) == (tb is None) and (ta is None or ta == pytest.approx(tb, rel=1e-9))
                else:
                    _close(a[key], b[key], (f.key, name, key))
    # the cases the fixture is there for really occur
    x = [g.profile.columns["x"] for g in fast]
    assert sum(c.nan for c in x) and sum(c.pos_inf for c in x) and sum(c.neg_inf for c in x) and sum(c.zeros for c in x)
    assert sum(c.negatives for c in x)  # compared between the engines above, as every declared statistic
    assert any(g.profile.columns["k"].n_finite == 0 for g in fast)  # south: all null
    assert any(c.bins.tails[1] > 0 for c in x)
    cat = [g.profile.columns["cat"] for g in fast]
    assert sum(c.empty for c in cat) and sum(c.bins.counts[-1] for c in cat)  # "" and "zz" are not top-3


def test_default_sketches_keep_kll_only_without_bins(spark, frames):
    ref, _ = frames
    cols = resolve_columns(ref.schema, [("x", None), ("cat", None)])
    [plain] = profile_groups(ref, cols, Grouping(model_version="1"), top_k=3, sketches=Sketches())
    assert plain.profile.columns["x"].kll is not None and plain.profile.columns["x"].hll is None
    assert plain.profile.columns["cat"].hll is not None
    bins = {"x": reference_bins(plain.profile.columns["x"], 10)}
    [binned] = profile_groups(ref, cols, Grouping(model_version="1"), top_k=0, bins=bins, sketches=Sketches())
    x = binned.profile.columns["x"]
    assert x.kll is None
    assert (x.n_finite, x.min, x.max) == (plain.profile.columns["x"].n_finite, plain.profile.columns["x"].min,
                                          plain.profile.columns["x"].max)
    # quantiles without a sketch come from the exact bin counts: within a bin of the sketch's
    sk = plain.profile.columns["x"].quantiles([0.1, 0.5, 0.9])
    qb = x.quantiles([0.1, 0.5, 0.9])
    widths = np.diff(bins["x"].edges).max()
    assert qb is not None and all(abs(a - b) <= widths for a, b in zip(sk, qb, strict=True))
    [everything] = profile_groups(ref, cols, Grouping(model_version="1"), top_k=0, bins=bins, sketches=ALL_SKETCHES)
    assert everything.profile.columns["x"].kll is not None and everything.profile.columns["x"].hll is not None


def test_layout_merges_sums_minima_and_maxima():
    layout = Layout.of([Target(0, "x", "numeric", edges=(0.0, 1.0))], "p__")
    assert layout.keys[:3] == ("p__0__nn", "p__0__nan", "p__0__pinf") and layout.keys[-2:] == ("p__0__lt0", "p__0__lt1")
    a = np.arange(len(layout.keys), dtype=float)
    b = np.full(len(layout.keys), 5.0)
    m = layout.merge(a, b)
    i_min, i_max, i_nn = layout.keys.index("p__0__min"), layout.keys.index("p__0__max"), 0
    assert m[i_min] == min(a[i_min], 5.0) and m[i_max] == max(a[i_max], 5.0) and m[i_nn] == a[i_nn] + 5.0
    row = layout.as_row(np.where(layout.mins, np.inf, np.where(layout.maxs, -np.inf, 2.0)))
    assert row["p__0__min"] is None and row["p__0__max"] is None and row["p__0__nn"] == 2


def test_arrow_pass_without_bins_matches_spark_and_keeps_kll(spark, frames):
    """The reference build's first pass: no bins, a KLL sketch per number (Arrow: datasketches' own)."""
    _, cur = frames
    cols = resolve_columns(cur.schema, [("x", None), ("cat", None), ("k", None)])
    grouping = Grouping(slices=("region",), model_version="1")
    fast = profile_groups(cur, cols, grouping, top_k=3, engine="arrow", sketches=Sketches())
    slow = profile_groups(cur, cols, grouping, top_k=3, engine="spark", sketches=Sketches())
    assert [g.key for g in fast] == [g.key for g in slow] and len(fast) == 2
    for f, s in zip(fast, slow, strict=True):
        for name in ("x", "cat", "k"):
            a, b = f.profile.columns[name], s.profile.columns[name]
            da, db = a.to_dict(), b.to_dict()
            for key in da:
                if key not in ("kll", "hll"):
                    _close(da[key], db[key], (f.key, name, key))
            if a.kind == "numeric" and a.n_finite:
                sa, sb = a.kll_sketch(), b.kll_sketch()
                assert sa.n == sb.n == a.n_finite
                assert (sa.get_min_value(), sa.get_max_value()) == (sb.get_min_value(), sb.get_max_value())
                # two KLL sketches of the same values: their medians' ranks differ by at most both errors
                med = sa.get_quantile(0.5)
                assert abs(sb.get_rank(med) - 0.5) <= 2 * sa.normalized_rank_error(False) + 1e-9


def test_top_k_from_the_arrow_pass_and_from_spark_past_the_cap(spark, frames, monkeypatch):
    """Exact top-k: counted in the Arrow pass (no second scan); a column with more distinct values than
    ``TOP_CAP`` in a task goes to Spark's grouped count instead. All three give the same values."""
    _, cur = frames
    cols = resolve_columns(cur.schema, [("x", None), ("cat", None)])
    grouping = Grouping(timestamp_column="ts", window="1 day", slices=("region",), model_version="1")
    asked: list[list[str]] = []
    real = profiler.top_k_counts

    def spy(df, columns, group_cols, k):
        asked.append([c.name for c in columns])
        return real(df, columns, group_cols, k)

    monkeypatch.setattr(profiler, "top_k_counts", spy)
    runs = [profile_groups(cur, cols, grouping, top_k=3, engine="spark", sketches=Sketches()),
            profile_groups(cur, cols, grouping, top_k=3, engine="arrow", sketches=Sketches())]
    monkeypatch.setattr(arrow_scan, "TOP_CAP", 2)  # 'cat' has 5 distinct values
    runs.append(profile_groups(cur, cols, grouping, top_k=3, engine="arrow", sketches=Sketches()))
    assert asked == [["cat"], [], ["cat"]]
    slow, fast, capped = ([(g.key, g.profile.columns["cat"].top, g.profile.columns["cat"].top_k) for g in r]
                          for r in runs)
    assert fast == slow == capped and len(slow) == 6
    assert all(len(top) == 3 and k == 3 for _, top, k in slow)


def test_scan_parts_computed_in_the_arrow_pass_match_their_spark_twins(spark, frames, monkeypatch):
    """The PCA cross-moments and reconstruction errors and the row-hash sketch, computed in the Arrow pass,
    equal what their Spark aggregate twins give: sums to round-off, the sketch's estimate exactly (the same
    hashes reach the same HLL). On the Arrow engine the twins are never built."""
    from datasketches import hll_sketch, hll_union

    from spark_audit import multivariate, table_checks

    _, cur = frames
    cols = resolve_columns(cur.schema, [("x", None), ("cat", None)])
    grouping = Grouping(timestamp_column="ts", window="1 day", slices=("region",), model_version="1")
    # 'k' is no profiled column (the pass reads it for the PCA only) and is all null in one slice
    pca = {"features": ["x", "k"], "means": [3.0, 25.0], "stds": [2.0, 14.0], "components": [[0.6, 0.8]]}

    def parts():
        return [table_checks.part(cur.columns, "ts"), multivariate.moments_part(["x", "k"], [3.0, 25.0], [2.0, 14.0]),
                multivariate.error_part(pca)]

    slow = profile_groups(cur, cols, grouping, top_k=0, sketches=Sketches(), parts=parts(), engine="spark")
    for name in ("duplicate_exprs", "cross_moment_exprs", "error_exprs"):
        mod = table_checks if name == "duplicate_exprs" else multivariate
        monkeypatch.setattr(mod, name, lambda *a, _n=name: pytest.fail(f"{_n} built on the Arrow engine"))
    fast = profile_groups(cur, cols, grouping, top_k=0, sketches=Sketches(), parts=parts(), engine="arrow")
    assert [g.key for g in fast] == [g.key for g in slow] and len(fast) == 6
    for f, s in zip(fast, slow, strict=True):
        for part in ("m", "r"):
            a, b = f.states[part], s.states[part]
            assert a.keys() == b.keys() and len(a) == (3 if part == "m" else 2)
            for key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9), (f.key, key)
        assert f.states["r"]["r__sum"] > 0
        assert f.states["t"]["t__newest"] == s.states["t"]["t__newest"]
        # the same hashes: the union of the two sketches counts no more rows than either (different hashes
        # would count every row twice); the estimates differ only by the order of the merges
        n = f.profile.row_count
        union = hll_union(12)
        for g in (f, s):
            union.update(hll_sketch.deserialize(bytes(g.states["t"]["t__rows_hll"])))
        assert union.get_estimate() == pytest.approx(n, rel=0.05)  # 3 x its RSE; different hashes: 2n
        assert table_checks.duplicate_share(f) == pytest.approx(table_checks.duplicate_share(s), abs=0.005)
    assert any(g.states["m"]["m__0_1"] != 0 for g in fast) and any(g.states["m"]["m__1_1"] == 0 for g in fast)
    # duplicated rows are seen as such, through the merge of the windows' sketches
    dup = cur.unionByName(cur.limit(300))
    [once] = overall_from(profile_groups(dup, cols, Grouping(model_version="1"), top_k=0, sketches=Sketches(),
                                         parts=parts()[:1], engine="arrow"))
    assert table_checks.duplicate_share(once) == pytest.approx(300 / 2300, abs=0.02)


def overall_from(groups):
    return profiler.overall_groups(groups)


@pytest.mark.parametrize("n_edges", [1, 2, 7, 25, 64, 101])
def test_branch_free_buckets_equal_searchsorted(n_edges):
    rng = np.random.default_rng(n_edges)
    edges = np.unique(np.concatenate([rng.standard_cauchy(n_edges - 1), [0.0]]))
    x = np.concatenate([rng.standard_cauchy(5000), edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
                        [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e308, -1e308]])
    rng.shuffle(x)
    got = statistics.buckets(x, edges)
    assert got.dtype.kind == "i" and np.array_equal(got, np.searchsorted(edges, x, side="right"))
    assert got.min() == 0 and got.max() == len(edges)
