"""Profile states without Spark: merge equals the profile of the union, in any order."""

import itertools
import math

import numpy as np
import pytest
from datasketches import hll_sketch, kll_doubles_sketch

from spark_audit.profile.state import Bins, ColumnProfile, GroupKey, TableProfile, merge_all


def numeric_profile(values: np.ndarray, name: str = "x") -> ColumnProfile:
    """A reference implementation of a numeric column's state, straight from numpy.

    NaNs whose sign bit is set stand for nulls, so a split keeps which is which.
    """
    nulls = int(np.sum(np.isnan(values) & np.signbit(values)))
    fin = values[np.isfinite(values)]
    kll = kll_doubles_sketch(200)
    hll = hll_sketch(12)
    for v in fin:
        kll.update(float(v))
        hll.update(float(v))
    return ColumnProfile(
        name=name, kind="numeric", dtype="double", count=len(values), nulls=nulls,
        nan=int(np.sum(np.isnan(values))) - nulls, pos_inf=int(np.sum(values == np.inf)),
        neg_inf=int(np.sum(values == -np.inf)), zeros=int(np.sum(values == 0)), negatives=int(np.sum(fin < 0)),
        n_finite=len(fin),
        mean=float(fin.mean()) if len(fin) else None,
        m2=float(((fin - fin.mean()) ** 2).sum()) if len(fin) else None,
        min=float(fin.min()) if len(fin) else None, max=float(fin.max()) if len(fin) else None,
        kll=bytes(kll.serialize()), hll=bytes(hll.serialize_compact()),
    )


def data(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.choice(n, 40, replace=False)] = np.nan
    x[rng.choice(n, 25, replace=False)] = -np.nan  # nulls
    x[:5] = np.inf
    x[5:8] = -np.inf
    x[8:20] = 0.0
    return x


def assert_same_exact(a: ColumnProfile, b: ColumnProfile):
    for f in ("count", "nulls", "nan", "pos_inf", "neg_inf", "zeros", "negatives", "n_finite", "min", "max"):
        assert getattr(a, f) == getattr(b, f), f
    assert a.mean == pytest.approx(b.mean, rel=1e-12)
    assert a.m2 == pytest.approx(b.m2, rel=1e-9)


@pytest.mark.parametrize("splits", [[1500], [1, 2999], [700, 1400, 2100], [10, 20, 30, 2990]])
def test_merge_of_parts_equals_profile_of_union(splits):
    x = data()
    whole = numeric_profile(x)
    parts = [numeric_profile(p) for p in np.split(x, splits)]
    for order in itertools.islice(itertools.permutations(parts), 6):
        merged = order[0]
        for p in order[1:]:
            merged = merged.merge(p)
        assert_same_exact(merged, whole)
        # quantiles within the sketch's rank error (k=200: about 1.3%, checked at 3x)
        fin = np.sort(x[np.isfinite(x)])
        for q in (0.1, 0.5, 0.9):
            est = merged.quantiles([q])[0]
            rank = np.searchsorted(fin, est) / len(fin)
            assert abs(rank - q) < 0.04
        assert merged.distinct == pytest.approx(whole.distinct, rel=0.05)


def test_variance_and_std_match_numpy():
    x = data(1)
    p = numeric_profile(x)
    fin = x[np.isfinite(x)]
    assert p.variance == pytest.approx(np.var(fin, ddof=1), rel=1e-12)
    assert p.std == pytest.approx(np.std(fin, ddof=1), rel=1e-12)


def test_merge_with_empty_part_keeps_moments():
    x = data(2)
    p = numeric_profile(x)
    empty = ColumnProfile(name="x", kind="numeric", dtype="double")
    assert_same_exact(p.merge(empty), p)
    assert_same_exact(empty.merge(p), p)
    assert empty.null_fraction != empty.null_fraction  # NaN for an empty column
    assert empty.quantiles([0.5]) is None and empty.variance is None


def test_merge_rejects_different_columns():
    a = ColumnProfile(name="x", kind="numeric", dtype="double")
    b = ColumnProfile(name="y", kind="numeric", dtype="double")
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(b)


def test_histogram_from_sketch_close_to_exact_counts():
    x = data(3, 20000)
    p = numeric_profile(x)
    edges = (5.0, 10.0, 15.0)
    fin = x[np.isfinite(x)]
    exact = np.histogram(fin, bins=[-np.inf, *edges, np.inf])[0]
    approx = p.histogram(Bins(counts=(), edges=edges))
    assert approx.sum() == pytest.approx(len(fin))
    assert np.max(np.abs(approx - exact)) / len(fin) < 0.03
    # with exact bins stored, the exact counts are returned as they are
    stored = ColumnProfile(name="x", kind="numeric", dtype="double", bins=Bins(tuple(exact), edges=edges))
    assert list(stored.histogram(Bins((), edges=edges))) == list(exact)


def test_bins_add_only_when_identical():
    a = ColumnProfile(name="x", kind="numeric", dtype="double", bins=Bins((1, 2, 3), edges=(0.0, 1.0)))
    b = ColumnProfile(name="x", kind="numeric", dtype="double", bins=Bins((4, 5, 6), edges=(0.0, 1.0)))
    c = ColumnProfile(name="x", kind="numeric", dtype="double", bins=Bins((4, 5, 6), edges=(0.0, 2.0)))
    assert a.merge(b).bins.counts == (5, 7, 9)
    assert a.merge(c).bins is None


def test_categorical_top_k_merge_and_histogram():
    a = ColumnProfile(name="c", kind="categorical", dtype="string", count=10, top={"a": 6, "b": 3, "c": 1}, top_k=2)
    b = ColumnProfile(name="c", kind="categorical", dtype="string", count=10, top={"b": 5, "d": 5}, top_k=2)
    m = a.merge(b)
    assert m.top == {"b": 8, "a": 6}
    h = m.histogram(Bins((), categories=("a", "b", "z")))
    assert list(h) == [6.0, 8.0, 0.0, 6.0]  # 20 non-null: 6 other


def test_round_trip_json():
    x = data(4)
    col = numeric_profile(x)
    cat = ColumnProfile(name="c", kind="categorical", dtype="string", count=3, top={"a": 2}, top_k=5,
                        bins=Bins((2, 1), categories=("a",)))
    tp = TableProfile(GroupKey("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", None, "3"), 3000,
                      {"x": col, "c": cat}, (("x", "double"), ("c", "string")))
    back = TableProfile.from_json(tp.to_json())
    assert back == tp
    assert back.columns["x"].quantiles([0.5]) == col.quantiles([0.5])


def test_newer_format_is_refused():
    d = TableProfile(GroupKey(), 0, {}).to_dict()
    d["format_version"] = 99
    with pytest.raises(ValueError, match="newer"):
        TableProfile.from_dict(d)


def test_table_merge_adds_rows_and_widens_window():
    x = data(5)
    a = TableProfile(GroupKey("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", None, "1"), 1500,
                     {"x": numeric_profile(x[:1500])})
    b = TableProfile(GroupKey("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", None, "1"), 1500,
                     {"x": numeric_profile(x[1500:])})
    m = merge_all([a, b])
    assert m.row_count == 3000
    assert m.key.window_start == "2026-01-01T00:00:00Z" and m.key.window_end == "2026-01-03T00:00:00Z"
    assert m.key.model_version == "1"
    assert math.isclose(m.columns["x"].mean, numeric_profile(x).mean, rel_tol=1e-12)
