"""Profiles computed by Spark: against numpy, and merge(parts) == profile(union)."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_audit.errors import DataError
from spark_audit.profile import Bins, Grouping, merge_all, overall_groups, profile_groups, resolve_columns

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
SCHEMA = T.StructType([
    T.StructField("x", T.DoubleType()), T.StructField("n", T.IntegerType()), T.StructField("s", T.StringType()),
    T.StructField("b", T.BooleanType()), T.StructField("ts", T.TimestampType()), T.StructField("seg", T.StringType()),
    T.StructField("empty_col", T.DoubleType()),
])


def make_rows(n=600, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = float(rng.normal(5, 2))
        if i % 50 == 0:
            x = float("nan")
        elif i % 97 == 0:
            x = float("inf")
        elif i % 89 == 0:
            x = float("-inf")
        elif i % 61 == 0:
            x = None
        elif i % 30 == 0:
            x = 0.0
        s = None if i % 40 == 0 else ("" if i % 45 == 0 else f"v{int(rng.integers(0, 8))}")
        rows.append((x, int(rng.integers(0, 100)), s, bool(i % 3 == 0),
                     T0 + timedelta(hours=int(i * 72 / n)), "a" if i % 2 else "b", None))
    return rows


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("profile") / "t")
    rows = make_rows()
    spark.createDataFrame(rows, SCHEMA).write.format("delta").save(path)
    return spark.read.format("delta").load(path), rows


COLS = [("x", None), ("n", None), ("s", None), ("b", None), ("ts", None), ("empty_col", None)]


def test_profile_matches_numpy(table):
    df, rows = table
    cols = resolve_columns(df.schema, COLS)
    [g] = profile_groups(df, cols, Grouping(model_version="7"), top_k=3)
    p = g.profile
    assert p.row_count == 600 and g.key.model_version == "7" and g.key.window_start is None
    xs = [r[0] for r in rows]
    fin = np.array([v for v in xs if v is not None and np.isfinite(v)])
    x = p.columns["x"]
    assert x.nulls == sum(v is None for v in xs)
    assert x.nan == sum(v is not None and np.isnan(v) for v in xs)
    assert x.pos_inf == sum(v == float("inf") for v in xs)
    assert x.neg_inf == sum(v == float("-inf") for v in xs) > 0
    assert x.zeros == sum(v == 0.0 for v in xs)
    assert x.negatives == int((fin < 0).sum()) > 0  # finite values only: -inf is not counted
    assert x.n_finite == len(fin)
    assert x.mean == pytest.approx(fin.mean(), rel=1e-12)
    assert x.std == pytest.approx(fin.std(ddof=1), rel=1e-9)
    assert (x.min, x.max) == (fin.min(), fin.max())
    ns = [r[1] for r in rows]
    assert (p.columns["n"].min, p.columns["n"].max, p.columns["n"].n_finite) == (min(ns), max(ns), len(ns))
    assert x.quantiles([0.5])[0] == pytest.approx(np.median(fin), abs=0.2)
    assert x.distinct == pytest.approx(len(set(fin.tolist())), rel=0.05)
    s = p.columns["s"]
    strs = [r[2] for r in rows]
    assert s.nulls == strs.count(None) and s.empty == strs.count("")
    assert s.len_max == 2 and s.len_min == 0
    nonnull = [v for v in strs if v is not None]
    expected = sorted(((nonnull.count(v), v) for v in set(nonnull)), key=lambda t: (-t[0], t[1]))[:3]
    assert s.top == {v: c for c, v in expected}
    b = p.columns["b"]
    assert (b.n_true, b.n_false) == (sum(r[3] for r in rows), sum(not r[3] for r in rows))
    ts = p.columns["ts"]
    assert ts.kind == "timestamp" and ts.min == T0.timestamp() and ts.max == max(r[4] for r in rows).timestamp()
    assert p.columns["n"].dtype == "int" and p.columns["n"].kind == "numeric"


def test_all_null_column_profiles_without_error(table):
    df, _ = table
    [g] = profile_groups(df, resolve_columns(df.schema, [("empty_col", None)]), Grouping())
    c = g.profile.columns["empty_col"]
    assert c.nulls == 600 and c.null_fraction == 1.0 and c.n_finite == 0
    assert c.mean is None and c.quantiles([0.5]) is None and c.summary()["p50"] is None


def test_exact_bins_from_the_same_scan(table):
    df, rows = table
    cols = resolve_columns(df.schema, [("x", None), ("s", None)])
    bins = {"x": Bins((), edges=(3.0, 5.0, 7.0)), "s": Bins((), categories=("v1", "v2", "nope"))}
    [g] = profile_groups(df, cols, Grouping(), bins=bins)
    fin = np.array([r[0] for r in rows if r[0] is not None and np.isfinite(r[0])])
    assert list(g.profile.columns["x"].bins.counts) == list(np.histogram(fin, [-np.inf, 3, 5, 7, np.inf])[0])
    strs = [r[2] for r in rows if r[2] is not None]
    expected = [strs.count("v1"), strs.count("v2"), 0, len(strs) - strs.count("v1") - strs.count("v2")]
    assert list(g.profile.columns["s"].bins.counts) == expected


def test_windows_and_slices_merge_to_the_unsplit_profile(table):
    """Split the same table by day and by slice: merged profiles equal the whole-table profile."""
    df, _ = table
    cols = resolve_columns(df.schema, COLS)
    [whole] = profile_groups(df, cols, Grouping())
    by_day = profile_groups(df, cols, Grouping(timestamp_column="ts", window="1 day"))
    by_day_and_seg = profile_groups(df, cols, Grouping(timestamp_column="ts", window="1 day", slices=("seg",)))
    assert len(by_day) == 3 and len(by_day_and_seg) == 6
    assert {g.key.slice for g in by_day_and_seg} == {"seg=a", "seg=b"}
    for parts in (by_day, by_day_and_seg, list(reversed(by_day_and_seg))):
        merged = merge_all(g.profile for g in parts)
        assert merged.row_count == whole.profile.row_count
        for name, w in whole.profile.columns.items():
            m = merged.columns[name]
            for f in ("count", "nulls", "nan", "pos_inf", "neg_inf", "zeros", "negatives", "n_finite", "min", "max",
                      "empty",
                      "len_min", "len_max", "len_sum", "n_true", "n_false"):
                assert getattr(m, f) == getattr(w, f), (name, f)
            if w.mean is not None:
                assert m.mean == pytest.approx(w.mean, rel=1e-9)
                assert m.m2 == pytest.approx(w.m2, rel=1e-9)
                # quantiles agree within the sketch's rank error: at most 3% of the range here
                spread = w.max - w.min
                assert m.quantiles([0.25, 0.75]) == pytest.approx(w.quantiles([0.25, 0.75]), abs=0.03 * spread)
            if w.distinct is not None:
                assert m.distinct == pytest.approx(w.distinct, rel=0.05)
    # overall_groups merges the slices of each day back into one profile per day
    overall = overall_groups(by_day_and_seg)
    assert [g.key.window_start for g in overall] == [g.key.window_start for g in by_day]
    for o, d in zip(overall, by_day, strict=True):
        assert o.profile.row_count == d.profile.row_count
        assert o.profile.columns["x"].nan == d.profile.columns["x"].nan
        assert o.key.slice is None and len(o.children) == 2


def test_model_version_column_groups(spark, tmp_path):
    df = spark.createDataFrame([(1.0, "1"), (2.0, "1"), (3.0, "2")], "x double, mv string")
    res = profile_groups(df, resolve_columns(df.schema, [("x", None)]), Grouping(model_version_column="mv"))
    assert {g.key.model_version: g.profile.row_count for g in res} == {"1": 2, "2": 1}


def test_empty_input_gives_no_groups(spark):
    df = spark.createDataFrame([], "x double, ts timestamp")
    res = profile_groups(df, resolve_columns(df.schema, [("x", None)]),
                         Grouping(timestamp_column="ts", window="1 day"))
    assert res == []


def test_missing_and_unprofilable_columns_are_named(spark):
    df = spark.createDataFrame([(1.0, [1])], "x double, arr array<int>")
    with pytest.raises(DataError, match="'nope'.*not found.*it has: arr, x"):
        resolve_columns(df.schema, [("nope", None)])
    with pytest.raises(DataError, match="'arr' has type array<int>"):
        resolve_columns(df.schema, [("arr", None)])
    with pytest.raises(DataError, match="cannot be profiled as numeric"):
        resolve_columns(spark.createDataFrame([("a",)], "s string").schema, [("s", "numeric")])


def test_odd_column_names_are_quoted(spark):
    df = spark.createDataFrame([(1.0, "x"), (2.0, "y")], "`a b.c` double, `we``ird` string")
    [g] = profile_groups(df, resolve_columns(df.schema, [("a b.c", None), ("we`ird", None)]), Grouping())
    assert g.profile.columns["a b.c"].mean == 1.5
    assert g.profile.columns["we`ird"].top == {"x": 1, "y": 1}


def test_a_million_category_column_keeps_top_k_bounded(spark):
    """1M distinct strings: the top-k pass counts them on the executors; k values reach the driver."""
    n = 1_000_000
    df = spark.range(n).select(
        F.concat(F.lit("id"), F.col("id").cast("string")).alias("s"),
        F.when(F.col("id") % 100 == 0, F.lit("hot")).otherwise(F.col("id").cast("string")).alias("t"),
    )
    [g] = profile_groups(df, resolve_columns(df.schema, [("s", None), ("t", None)]), Grouping(), top_k=5)
    s, t = g.profile.columns["s"], g.profile.columns["t"]
    assert len(s.top) == 5 and all(v == 1 for v in s.top.values())
    assert s.distinct == pytest.approx(n, rel=0.05)
    assert next(iter(t.top.items())) == ("hot", n // 100) and len(t.top) == 5
    assert len(g.profile.to_json()) < 200_000  # the profile stays small however many categories


def test_moments_stay_accurate_for_a_large_mean_when_centred(spark):
    rng = np.random.default_rng(3)
    values = (1e7 + rng.normal(0, 0.5, 2000)).tolist()
    df = spark.createDataFrame([(v,) for v in values], "x double")
    cols = resolve_columns(df.schema, [("x", None)])
    [g] = profile_groups(df, cols, Grouping(), centers={"x": 1e7})
    x = g.profile.columns["x"]
    assert x.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert x.std == pytest.approx(np.std(values, ddof=1), rel=1e-9)
