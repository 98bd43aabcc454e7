"""The one time parser and the one duration parser (pure, no Spark)."""

from datetime import date, datetime, timedelta, timezone

import pytest

from spark_audit.timeutil import interval_seconds, iso_utc, parse_duration, parse_time


@pytest.mark.parametrize("text,seconds", [
    ("1 day", 86400), ("6 hours", 21600), ("2 weeks", 1209600), ("30 min", 1800), ("30 minutes", 1800),
    ("12h", 43200), ("7d", 604800), ("1.5 hours", 5400), ("45 s", 45), ("2w", 1209600),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["daily", "", "0 days", "-1 day", "3 fortnights", None, True, "1.5"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_spark_interval_is_whole_units_with_a_space():
    assert interval_seconds("6 hours") == 21600
    for bad in ("6h", "1.5 days", "30 min"):
        with pytest.raises(ValueError, match="'1 day'"):
            parse_duration(bad, spark_interval=True)
    assert parse_duration(timedelta(hours=2)) == timedelta(hours=2)


def test_parse_time_forms_agree():
    utc = datetime(2026, 1, 8, tzinfo=timezone.utc)
    for v in ("2026-01-08", "2026-01-08T00:00:00Z", "2026-01-08T01:00:00+01:00", date(2026, 1, 8),
              datetime(2026, 1, 8)):
        assert parse_time(v) == utc
    assert iso_utc(parse_time("2026-01-08T01:00:00+01:00")) == "2026-01-08T00:00:00Z"
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday")
