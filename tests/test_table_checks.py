"""Missing windows, staleness and volume decisions (pure, no Spark)."""

from datetime import datetime, timezone

from spark_audit.profile.profiler import GroupResult
from spark_audit.profile.state import GroupKey, TableProfile
from spark_audit.table_checks import expected_windows, missing_windows, volume_candidate

UTC = timezone.utc


def g(day: int, rows: int = 100, version: str | None = "1") -> GroupResult:
    key = GroupKey(window_start=f"2026-01-{day:02d}T00:00:00Z", model_version=version)
    return GroupResult(key=key, profile=TableProfile(key, rows, {}))


def test_expected_windows_align_like_spark_and_stay_inside_the_range():
    assert expected_windows("1 day", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC)) == [
        "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
    # windows only partly inside the range ([00:00, 06:00) and [18:00, 24:00)) are not expected
    assert expected_windows("6 hours", datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 1, 1, 21, tzinfo=UTC)) == [
        "2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z"]


def test_gap_is_a_missing_window_and_a_missing_newest_window_is_stale():
    found = missing_windows("1 day", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC),
                            [g(1), g(3)], ["1"])
    assert sorted(f.window_start for f in found if f.kind == "missing_window") == [
        "2026-01-02T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z"]
    [stale] = [f for f in found if f.kind == "stale"]
    assert stale.severity == "critical" and "since 2026-01-03T00:00:00Z" in stale.message
    assert "2 expected" in stale.message


def test_each_model_version_has_its_own_windows():
    found = missing_windows("1 day", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC),
                            [g(1, version="1"), g(2, version="1"), g(1, version="2")], ["1", "2"])
    assert [(f.kind, f.model_version) for f in found] == [("missing_window", "2"), ("stale", "2")]


def test_volume_doubling_halving_and_noise():
    ref = {"rows": [4000, 4100, 3950, 4020, 3990, 4060, 4010]}
    assert volume_candidate(ref, g(1, 8050)).material and volume_candidate(ref, g(1, 8050)).p_value < 1e-9
    assert volume_candidate(ref, g(1, 2000)).material
    steady = volume_candidate(ref, g(1, 4090))
    assert not steady.material and steady.p_value > 0.05
    assert volume_candidate({"rows": [4000, 4000]}, g(1, 9000)) is None  # too few reference windows


def test_volume_per_model_version_uses_that_versions_reference_counts():
    """A reference holding two versions' rows counts 8,000 a window; each version's audited window has
    4,000. Pooled counts would call every window a halving; per-version counts do not, and a version
    the reference never saw has no volume to judge."""
    ref = {"rows": [8000] * 7, "rows_by_version": {"1": [4000, 4010, 3990, 4005, 3995, 4000, 4020],
                                                     "2": [4000, 3980, 4015, 4000, 3990, 4010, 4005]}}
    assert not volume_candidate(ref, g(1, 4000, version="1")).material
    assert not volume_candidate(ref, g(1, 4030, version="2")).material
    assert volume_candidate(ref, g(1, 2000, version="2")).material
    assert volume_candidate(ref, g(1, 4000, version="3")) is None


def test_count_by_version_on_spark(spark):
    from datetime import timedelta

    from spark_audit.profile.profiler import Grouping
    from spark_audit.table_checks import count_by_version

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(t0 + timedelta(days=d, hours=h), v, r) for d in range(3) for v, n in (("1", 3), ("2", 2))
            for h in range(n * (d + 1)) for r in ["a"]]
    df = spark.createDataFrame(rows, "ts timestamp, mv string, region string")
    got = count_by_version(df, Grouping(timestamp_column="ts", window="1 day", slices=("region",),
                                        model_version_column="mv"), ["region"])
    days = [f"2026-01-0{d}T00:00:00Z" for d in (1, 2, 3)]  # by window start: the phases of a cycle need them
    assert got[None] == {"1": dict(zip(days, [3, 6, 9], strict=True)), "2": dict(zip(days, [2, 4, 6], strict=True))}
    assert got["region=a"] == got[None]


def test_freshness_of_the_newest_row_and_the_latest_commit():
    from datetime import timedelta

    from spark_audit.table_checks import NEWEST, freshness, newest_row

    now = datetime(2026, 1, 10, 12, tzinfo=UTC)
    day = 86_400
    older = [g(1), g(2)]
    older[0].states.values["t"] = {NEWEST: int(datetime(2026, 1, 8, tzinfo=UTC).timestamp() * 1e6)}
    older[1].states.values["t"] = {NEWEST: int(datetime(2026, 1, 9, 6, tzinfo=UTC).timestamp() * 1e6)}
    newest = newest_row(older)
    assert newest == datetime(2026, 1, 9, 6, tzinfo=UTC)
    # the newest row is 30 h old: fine at 2 days, stale at 1 day; a commit 3 days old is stale at 2 days
    assert freshness(now, newest, now - timedelta(hours=1), max_row_age=2 * day, max_commit_age=2 * day) == []
    [row] = freshness(now, newest, None, max_row_age=day, max_commit_age=day)
    assert row.kind == "freshness" and "newest row is 30.0 h old" in row.message
    [commit] = freshness(now, None, now - timedelta(days=3), max_row_age=day, max_commit_age=2 * day)
    assert "latest Delta commit" in commit.message and commit.value == 72.0


def test_freshness_limits_are_validated_intervals():
    import pytest

    from spark_audit.errors import SpecError
    from spark_audit.spec import parse_spec

    base = {"name": "x", "source": {"path": "/t"}, "features": ["a"], "output": {"path": "/o"}}
    spec = parse_spec({**base, "findings": {"max_row_age": "36 hours"}})
    assert spec.findings.max_row_age == "36 hours" and spec.findings.max_commit_age is None
    with pytest.raises(SpecError, match="findings.max_commit_age"):
        parse_spec({**base, "findings": {"max_commit_age": "soon"}})


def test_volume_against_its_own_history_null_rate_and_power():
    """Null: history and window drawn alike (Poisson around 4,000 with 3 % day-to-day spread); a halving
    and a slow 1.6x growth against a stale reference are found."""
    import numpy as np

    from spark_audit.findings import decide
    from spark_audit.table_checks import volume_history_candidate

    rng = np.random.default_rng(8)
    false = 0
    trials = 400
    for _ in range(trials):
        level = rng.normal(1, 0.03, 9) * 4000
        counts = rng.poisson(level).tolist()
        cand = volume_history_candidate(counts[:8], g(1, counts[8]))
        false += bool(decide([cand], 0.05))
    assert false / trials <= 0.02  # material needs 1.5x: noise never gets there
    history = [4000, 4100, 3950, 4020, 3990, 4060, 4010, 3980]
    assert decide([volume_history_candidate(history, g(1, 2000))], 0.05)[0].statistic == "rows_vs_history"
    assert decide([volume_history_candidate(history, g(1, 6500))], 0.05)
    assert volume_history_candidate(history[:4], g(1, 9000)) is None  # too little history yet
