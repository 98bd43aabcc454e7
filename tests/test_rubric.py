"""The ML Test Score monitoring rubric as pure functions: statuses from findings, staleness, numeric
stability, keeping up, and the paper's scoring (a measured test scores 1, an unmeasured one 0)."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from spark_audit import rubric
from spark_audit.findings import Finding
from spark_audit.spec import parse_spec

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _spec(**extra):
    raw = {"name": "r", "source": {"path": "t", "timestamp_column": "ts"}, "window": {"size": "1 day"},
           "features": ["score"], "output": {"path": "o"},
           "quality": {"task": "binary", "label": "y", "score": "score"}, **extra}
    return parse_spec(raw)


def _col(nan=0, inf=0, lo=0.1, hi=0.9):
    return SimpleNamespace(nan=nan, pos_inf=inf, neg_inf=0, min=lo, max=hi)


def _group(**col):
    return SimpleNamespace(key=SimpleNamespace(slice=None), profile=SimpleNamespace(columns={"score": _col(**col)}))


def test_findings_fail_their_test_and_info_does_not():
    spec = _spec()
    found = [Finding("warning", "volume", "x", None, "2026-03-02"), Finding("info", "small_group", "y", None),
             Finding("critical", "quality", "z", "accuracy", "2026-03-02")]
    rows = {r.test.id: r for r in rubric.evaluate(
        spec, found, [_group()], has_training=False, audited_end=T0, reference_end=T0 - timedelta(days=10),
        training_end=None, covered=[(T0 - timedelta(days=1), T0)], newest_row=T0 - timedelta(hours=1))}
    assert rows["monitor_1"].status == "failed" and "1 volume" in rows["monitor_1"].evidence
    assert rows["monitor_2"].status == "not measured"  # no contract
    assert rows["monitor_3"].status == "not measured"  # no training rows
    assert rows["monitor_4"].status == "passed" and "10 days" in rows["monitor_4"].evidence
    assert rows["monitor_5"].status == "passed"
    assert rows["monitor_6"].status == "not measured"
    assert rows["monitor_7"].status == "failed" and rows["monitor_7"].findings == 1
    assert rows["monitoring_runs"].status == "passed"
    points, n, passed = rubric.score(list(rows.values()))
    assert (points, n, passed) == (4.0, 7, 2)  # M1, M4, M5 and M7 measured; M4 and M5 passed
    assert rubric.score_text(list(rows.values())) == "coverage 4/7 · 2 passed, 2 failed"


def test_staleness_against_training_end_first():
    spec = _spec(rubric={"max_model_age": "30 days"})
    old = rubric.staleness(spec, T0, T0 - timedelta(days=5), T0 - timedelta(days=45))
    assert old.status == "failed" and "45 days" in old.evidence and "training rows" in old.evidence
    assert rubric.staleness(spec, T0, T0 - timedelta(days=5), None).status == "passed"
    assert rubric.staleness(spec, T0, None, None).status == "not measured"


def test_numeric_stability_nan_inf_and_range():
    spec = _spec()
    assert rubric.numeric_stability(spec, [_group(nan=3)]).status == "failed"
    assert rubric.numeric_stability(spec, [_group(inf=1)]).status == "failed"
    bad = rubric.numeric_stability(spec, [_group(lo=-0.2)])
    assert bad.status == "failed" and "leaves [0, 1]" in bad.evidence
    assert rubric.numeric_stability(spec, [_group()]).status == "passed"
    no_score = SimpleNamespace(key=SimpleNamespace(slice=None), profile=SimpleNamespace(columns={}))
    assert rubric.numeric_stability(spec, [no_score]).status == "not measured"


def test_keeping_up_sees_gaps_and_lag():
    spec = _spec()
    day = timedelta(days=1)
    ok = rubric.keeping_up(spec, [(T0, T0 + day), (T0 + day, T0 + 3 * day)], T0 + 3 * day)
    assert ok.status == "passed"
    gap = rubric.keeping_up(spec, [(T0, T0 + day), (T0 + 2 * day, T0 + 3 * day)], T0 + 3 * day)
    assert gap.status == "failed" and "1 gap" in gap.evidence
    behind = rubric.keeping_up(spec, [(T0, T0 + day)], T0 + 5 * day)
    assert behind.status == "failed" and "4.0 days after" in behind.evidence
