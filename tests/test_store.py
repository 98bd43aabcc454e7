"""Result tables: idempotent MERGE per audit, stale rows removed, concurrent writers retried."""

import threading
from datetime import datetime, timezone

from spark_audit import store
from spark_audit.spec import OutputSpec

W = datetime(2026, 1, 1, tzinfo=timezone.utc)


def rows(key, columns, value=1.0):
    return [dict(audit_key=key, audit_run_id=f"run-{key}", audit_name="a", source="s", source_version=0,
                 window_start=W, window_end=W, slice=None, model_version="1", drift_type="reference",
                 baseline="ref", column=c, kind="numeric", statistic="psi", value=value, p_value=None,
                 threshold=0.1, drifted=False, critical=False, is_default=True, n_reference=1, n_current=1,
                 material=False, q_value=None, noise=None)
            for c in columns]


def run_row(**fields):
    """An audit_runs row: the given columns, None for the rest."""
    return {**dict.fromkeys(store.columns("audit_runs")), **fields}


def test_rewrite_replaces_and_removes_stale_rows(spark, tmp_path):
    out = OutputSpec(path=str(tmp_path))
    store.write_rows(spark, out, "drift_metrics", rows("k1", ["a", "b", "c"]), audit_key="k1")
    store.write_rows(spark, out, "drift_metrics", rows("k2", ["a"]), audit_key="k2")
    store.write_rows(spark, out, "drift_metrics", rows("k1", ["a", "b"], value=2.0), audit_key="k1")
    df = store.read(spark, out, "drift_metrics")
    got = sorted((r.audit_key, r.column, r.value) for r in df.collect())
    assert got == [("k1", "a", 2.0), ("k1", "b", 2.0), ("k2", "a", 1.0)]


def test_concurrent_writers_of_different_audits_both_land(spark, tmp_path):
    """Two audits MERGE into one table at once: Delta raises ConcurrentAppendException for one of them
    (seen 3 times in a trial run of this test), and write_rows retries it."""
    out = OutputSpec(path=str(tmp_path))
    store.write_rows(spark, out, "drift_metrics", rows("seed", ["x"]), audit_key="seed")
    errors = []

    def writer(key):
        try:
            for i in range(3):
                store.write_rows(spark, out, "drift_metrics", rows(key, ["a", "b"], value=float(i)), audit_key=key)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    df = store.read(spark, out, "drift_metrics")
    got = sorted((r.audit_key, r.column, r.value) for r in df.collect())
    assert got == [("seed", "x", 1.0), ("t1", "a", 2.0), ("t1", "b", 2.0), ("t2", "a", 2.0), ("t2", "b", 2.0)]


def test_complete_hides_runs_that_did_not_finish(spark, tmp_path):
    out = OutputSpec(path=str(tmp_path))
    store.write_rows(spark, out, "drift_metrics", rows("k1", ["a"]), audit_key="k1")
    run = run_row(audit_key="k1", audit_run_id="run-k1", audit_name="a", status="running")
    store.write_rows(spark, out, "audit_runs", [run], audit_key="k1")
    assert store.complete(spark, out, "drift_metrics").count() == 0
    store.write_rows(spark, out, "audit_runs", [dict(run, status="complete", finished_at=W)], audit_key="k1")
    assert store.complete(spark, out, "drift_metrics").count() == 1
    assert store.read(spark, out, "audit_runs").count() == 1


def test_a_table_written_with_an_older_schema_gains_the_new_columns(spark, tmp_path):
    """drift_metrics written by the previous release (no material / q_value / noise columns) is evolved
    by the next MERGE, and its old rows read back with the new columns null."""
    out = OutputSpec(path=str(tmp_path))
    schema, _ = store.TABLES["drift_metrics"]
    old_names = [n for n in schema.fieldNames() if n not in ("material", "q_value", "noise")]
    old = spark.createDataFrame([tuple(r.get(n) for n in old_names) for r in rows("old", ["a"])],
                                store._schema(*[(f.name, f.dataType) for f in schema.fields if f.name in old_names]))
    old.write.format("delta").save(store.location(out, "drift_metrics"))
    new = [dict(r, material=True, q_value=0.01, noise=0.02) for r in rows("new", ["a"])]
    store.write_rows(spark, out, "drift_metrics", new, audit_key="new")
    df = store.read(spark, out, "drift_metrics")
    assert {"material", "q_value", "noise"} <= set(df.columns)
    got = sorted((r.audit_key, r.material, r.q_value) for r in df.collect())
    assert got == [("new", True, 0.01), ("old", None, None)]


def test_complete_keeps_the_newest_run_per_model_version(spark, tmp_path):
    """Version 2's audit of a window finished after version 1's: both stay visible."""
    out = OutputSpec(path=str(tmp_path))
    for key, version, fin in (("k1", "1", datetime(2026, 1, 2, tzinfo=timezone.utc)),
                              ("k2", "2", datetime(2026, 1, 3, tzinfo=timezone.utc))):
        store.write_rows(spark, out, "drift_metrics", [dict(r, model_version=version) for r in rows(key, ["a"])],
                         audit_key=key)
        store.write_rows(spark, out, "audit_runs", [run_row(audit_key=key, audit_run_id=f"run-{key}", audit_name="a",
                                                         status="complete", finished_at=fin)], audit_key=key)
    got = sorted(r.model_version for r in store.complete(spark, out, "drift_metrics").collect())
    assert got == ["1", "2"]


def test_a_row_with_an_unknown_or_missing_column_is_refused(spark, tmp_path):
    """A misspelled key used to become a NULL nobody noticed; now the builder and the writer refuse it."""
    import pytest

    [good] = rows("k", ["a"])
    assert store.row("drift_metrics", **good) == good
    bad = dict(good, qvalue=0.1)  # misspelled q_value
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['qvalue'\]"):
        store.row("drift_metrics", **bad)
    short = {k: v for k, v in good.items() if k != "noise"}
    with pytest.raises(ValueError, match=r"missing column\(s\) \['noise'\]"):
        store.write_rows(spark, OutputSpec(path=str(tmp_path)), "drift_metrics", [short], audit_key="k")
    assert store.read(spark, OutputSpec(path=str(tmp_path)), "drift_metrics") is None  # nothing written


def test_window_history_reads_complete_runs_of_the_audit_other_than_this_one(spark, tmp_path):
    from pyspark.sql import functions as F

    out = OutputSpec(path=str(tmp_path))
    runs = (("k1", 1, "complete"), ("k2", 2, "complete"), ("k3", 3, "running"), ("now", 4, "complete"))
    for key, day, status in runs:
        w = datetime(2026, 1, day, tzinfo=timezone.utc)
        written = [dict(r, window_start=w) for r in rows(key, ["a"], value=float(day))]
        store.write_rows(spark, out, "drift_metrics", written, audit_key=key)
        store.write_rows(spark, out, "audit_runs", [run_row(audit_key=key, audit_run_id=f"run-{key}", audit_name="a",
                                                            status=status, finished_at=w)], audit_key=key)
    got = store.window_history(spark, out, "drift_metrics", "a", "now", ("slice", "column"), "value",
                               F.col("value") > 0)
    # the running run and this audit's own key are left out; oldest first
    assert got == {(None, "a"): [("2026-01-01T00:00:00Z", 1.0), ("2026-01-02T00:00:00Z", 2.0)]}
    assert store.window_history(spark, out, "findings", "a", "now", ("slice",), "value", F.lit(True)) == {}
