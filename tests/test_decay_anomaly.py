"""Metric-history anomalies and trends (pure numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_audit.decay.anomaly import AnomalyResult, rate_of_change, trend, windows_until, zscore

STABLE = [0.91, 0.905, 0.912, 0.908, 0.91, 0.907, 0.911, 0.909]


def test_zscore_flags_sudden_drop_not_stable_value():
    drop = zscore(STABLE, 0.80)
    assert isinstance(drop, AnomalyResult)
    assert drop.is_anomaly and drop.score < -3
    lower, upper = drop.bounds
    assert lower > 0.80 and lower < np.mean(STABLE) < upper
    assert lower == pytest.approx(np.mean(STABLE) - 3 * np.std(STABLE, ddof=1))
    ok = zscore(STABLE, 0.909)
    assert not ok.is_anomaly and abs(ok.score) < 1


def test_zscore_stable_series_never_flagged_walking_forward():
    series = list(0.9 + 0.003 * np.sin(np.arange(40) * 1.3))  # bounded wobble
    flags = [zscore(series[:i], series[i]).is_anomaly for i in range(3, 40)]
    assert not any(flags)
    # gaussian noise: false alarms at about the normal tail rate, not more
    rng = np.random.default_rng(1)
    noise = list(0.9 + rng.normal(0, 0.002, size=200))
    rate = np.mean([zscore(noise[:i], noise[i], min_history=10, window=30).is_anomaly for i in range(10, 200)])
    assert rate < 0.03


def test_zscore_direction_window_and_min_history():
    up = zscore(STABLE, 1.0, direction="down")
    assert not up.is_anomaly  # a rise in accuracy is not a problem
    assert zscore(STABLE, 1.0, direction="up").is_anomaly
    short = zscore([0.9, 0.91], 0.1)
    assert not short.is_anomaly and math.isnan(short.score) and "history" in short.reason
    # only the trailing window counts: old regime at 0.5 is forgotten
    hist = [0.5] * 10 + STABLE
    assert zscore(hist, 0.909, window=len(STABLE)).is_anomaly is False
    assert zscore(hist, 0.5, window=len(STABLE)).is_anomaly is True
    with pytest.raises(ValueError):
        zscore(STABLE, 0.9, direction="sideways")


def test_zscore_is_nan_safe_and_handles_constant_history():
    hist = [0.9, float("nan"), 0.91, None, 0.905, float("inf"), 0.908]
    res = zscore(hist, 0.7)
    assert res.is_anomaly and math.isfinite(res.score)
    nan_value = zscore(STABLE, float("nan"))
    assert not nan_value.is_anomaly and math.isnan(nan_value.score)
    const = [0.5, 0.5, 0.5, 0.5]
    assert not zscore(const, 0.5).is_anomaly
    flagged = zscore(const, 0.4)
    assert flagged.is_anomaly and flagged.score == -math.inf


def test_rate_of_change():
    drop = rate_of_change([0.9, 0.91, 0.9], 0.81, max_rel_change=0.05)
    assert drop.is_anomaly and drop.score == pytest.approx(-0.1)
    assert drop.bounds == pytest.approx((0.855, 0.945))
    small = rate_of_change([0.9, 0.91, 0.9], 0.88, max_rel_change=0.05)
    assert not small.is_anomaly and small.score == pytest.approx(-0.02 / 0.9)
    # compares with the last finite value
    assert rate_of_change([0.9, float("nan")], 0.5, max_rel_change=0.1).is_anomaly
    assert not rate_of_change([0.5, 0.9, float("nan")], 0.5, max_rel_change=0.1, direction="up").is_anomaly
    empty = rate_of_change([float("nan")], 0.5, max_rel_change=0.1)
    assert not empty.is_anomaly and math.isnan(empty.score)
    zero = rate_of_change([0.0], 0.1, max_rel_change=0.1)
    assert zero.is_anomaly and zero.score == math.inf
    assert not rate_of_change([0.0], 0.0, max_rel_change=0.1).is_anomaly


def test_trend_matches_polyfit_and_ignores_nan():
    rng = np.random.default_rng(2)
    y = 0.9 - 0.004 * np.arange(20) + rng.normal(0, 0.001, 20)
    assert trend(y) == pytest.approx(np.polyfit(np.arange(20), y, 1)[0])
    with_gap = list(y)
    with_gap[5] = float("nan")
    x = np.delete(np.arange(20), 5)
    assert trend(with_gap) == pytest.approx(np.polyfit(x, np.delete(y, 5), 1)[0])
    assert math.isnan(trend([0.5]))
    assert trend([1.0, 1.0, 1.0]) == 0.0


def test_slow_leak_negative_trend_and_finite_windows_until():
    leak = [0.90 - 0.005 * i for i in range(10)]  # last = 0.855, loses .005 a window
    assert trend(leak) == pytest.approx(-0.005)
    left = windows_until(leak, 0.80)
    assert math.isfinite(left)
    assert left == pytest.approx((0.855 - 0.80) / 0.005)  # 11 windows
    # stable series never crosses, crossed already gives 0
    assert windows_until(STABLE[:1] * 6, 0.8) == math.inf
    assert windows_until(leak, 0.86) == 0.0
    # lower-is-better metric (e.g. log loss) creeping up
    loss = [0.30 + 0.01 * i for i in range(5)]  # last = 0.34
    assert windows_until(loss, 0.40, higher_is_better=False) == pytest.approx(6.0)
    assert windows_until(loss[::-1], 0.40, higher_is_better=False) == math.inf
    assert math.isnan(windows_until([float("nan")], 0.5))


def test_zscore_min_std_floors_a_history_that_agrees_by_chance():
    hist = [0.900, 0.901, 0.899, 0.900, 0.902, 0.898]
    mean, sd = float(np.mean(hist)), float(np.std(hist, ddof=1))
    value = mean - 3.2 * sd
    plain = zscore(hist, value)
    assert plain.is_anomaly and plain.score == pytest.approx(-3.2)
    # the window's sampling error says 3.2 sample stds is only 1 std of noise
    floored = zscore(hist, value, min_std=3.2 * sd)
    assert not floored.is_anomaly
    assert floored.score == pytest.approx(-1.0)
    assert floored.bounds == pytest.approx((mean - 3 * 3.2 * sd, mean + 3 * 3.2 * sd))
    assert "-1.00 std" in floored.reason and "inside ±3 std" in floored.reason
    # a floor below the sample std changes nothing
    assert zscore(hist, value, min_std=sd / 2) == plain
    # a real drop beyond k floored stds is still flagged
    assert zscore(hist, mean - 4 * 3.2 * sd, min_std=3.2 * sd).is_anomaly
    # a constant history with a floor accepts values within k floors, with a finite score
    const = zscore([0.5] * 5, 0.49, min_std=0.01)
    assert not const.is_anomaly and const.score == pytest.approx(-1.0)
    # an undefined floor (NaN se) means no floor; a negative one is an error
    assert zscore(hist, value, min_std=float("nan")) == plain
    with pytest.raises(ValueError, match="min_std"):
        zscore(hist, value, min_std=-0.1)
