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
    assert stale.severity == "critical" and "since 2026-01-03T00:00:00Z" in stale.message and "2 expected" in stale.message


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
