"""The result tables as pandas frames, read without a Spark session where possible.

A report over a handful of small result tables (``spark-audit compare``, the notebook's version
table) should answer in about a second, not after a JVM start and a dozen Spark jobs. For an
``output.path`` the Delta tables are read straight from their logs by delta-rs (``deltalake``);
tables in a metastore (``output.database``) go through the Spark session the caller gives.

``complete_frame`` is ``store.complete`` on frames: the same rule (rows of complete runs; per
audit, window and model version only the run that finished last), tested to agree with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from spark_audit import store
from spark_audit.errors import DataError
from spark_audit.spec import OutputSpec

if TYPE_CHECKING:
    import pandas as pd


def needs_spark(output: OutputSpec) -> bool:
    """Metastore tables are read through Spark; a folder of Delta tables is not."""
    return bool(output.database)


def read_frame(output: OutputSpec, table: str, spark=None, columns: Sequence[str] | None = None
               ) -> pd.DataFrame | None:
    """One result table (only ``columns``, when given) as a pandas frame; None when it does not exist."""
    if needs_spark(output):
        if spark is None:
            raise DataError(f"reading {output.database}.{table} needs a Spark session (a metastore table)")
        df = store.read(spark, output, table)
        return None if df is None else (df.select(*columns) if columns else df).toPandas()
    try:
        return DeltaTable(store.location(output, table)).to_pandas(columns=list(columns) if columns else None)
    except TableNotFoundError:
        return None


def records(frame: pd.DataFrame | None) -> list[dict]:
    """A frame's rows as dicts of plain values, as Spark's ``Row.asDict`` gives them: pandas' missing
    markers (NaN, NaT, None) become None and timestamps become datetimes."""
    return [] if frame is None else [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _plain(v):
    if isinstance(v, (float, datetime)) and v != v:  # NaN, and NaT (a datetime subclass): not equal to itself
        return None
    return v.to_pydatetime() if hasattr(v, "to_pydatetime") else v


def complete_frame(rows: pd.DataFrame | None, runs: pd.DataFrame | None, *, latest: bool = True
                   ) -> pd.DataFrame | None:
    """``store.complete`` on frames: ``rows`` of runs recorded complete in ``runs`` (the audit_runs
    table), and with ``latest`` per (audit, window, model version) only the run that finished last."""
    if rows is None or runs is None:
        return None
    done = runs[runs["status"] == "complete"]
    if rows is runs:
        return done
    ids = done[["audit_key", "audit_run_id", "finished_at"]].rename(columns={"audit_run_id": "_rid",
                                                                             "finished_at": "_fin"})
    out = rows.merge(ids, on="audit_key")
    out = out[out["audit_run_id"] == out["_rid"]]
    if latest and "window_start" in out.columns:
        by = ["audit_name", "window_start"] + (["model_version"] if "model_version" in out.columns else [])
        newest = out.groupby(by, dropna=False)["_fin"].transform("max")
        out = out[out["_fin"] == newest]
    return out.drop(columns=["_rid", "_fin"]).reset_index(drop=True)


# what complete_frame reads of a table, besides the columns a caller wants
RUN_KEYS = ("audit_key", "audit_run_id", "audit_name", "window_start", "model_version")


def complete_frames(output: OutputSpec, tables: Mapping[str, Sequence[str]], spark=None
                    ) -> dict[str, pd.DataFrame | None]:
    """Each table's complete rows (``complete_frame``), audit_runs read once. ``tables`` maps a table to
    the columns wanted (empty: all); the run keys are read too. The profile rows' sketch bytes, say, are
    not read for a report that counts rows."""
    runs = read_frame(output, "audit_runs", spark)
    out = {}
    for t, wanted in tables.items():
        if t == "audit_runs":
            out[t] = complete_frame(runs, runs)
            continue
        columns = list(dict.fromkeys([*RUN_KEYS, *wanted])) if wanted else None
        out[t] = complete_frame(read_frame(output, t, spark, columns), runs)
    return out
