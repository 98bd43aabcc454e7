"""Read the audited Delta table at a pinned version, restricted to a time range."""

from __future__ import annotations

from datetime import datetime

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_audit.errors import DataError
from spark_audit.names import col as _c
from spark_audit.names import quote_name as _quote
from spark_audit.profile.state import GroupKey
from spark_audit.spec import SourceSpec
from spark_audit.timeutil import parse_iso


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__


def delta_identifier(source: SourceSpec) -> str:
    """The source in SQL: ``delta.`path` `` or the quoted parts of ``catalog.schema.table``."""
    if source.table:
        return ".".join(_quote(part) for part in source.table.split("."))
    return f"delta.{_quote(str(source.path))}"


def commit_time(spark: SparkSession, source: SourceSpec, version: int):
    """When ``version`` of the source was committed (a datetime), from ``DESCRIBE HISTORY``; None if unknown."""
    try:
        row = (spark.sql(f"DESCRIBE HISTORY {delta_identifier(source)}").where(f"version = {int(version)}")
               .select("timestamp").first())
    except AnalysisException:
        return None
    return None if row is None else row[0]


def current_version(spark: SparkSession, source: SourceSpec) -> int:
    """The table's latest Delta version.

    Plain SQL (``DESCRIBE HISTORY``), not ``delta.tables.DeltaTable``: under Spark Connect the
    latter needs the Delta Connect server plugin, which a plain Spark Connect server lacks.
    """
    try:
        row = spark.sql(f"DESCRIBE HISTORY {delta_identifier(source)} LIMIT 1").select("version").first()
    except AnalysisException as e:
        raise DataError(f"source {source.display!r} is not a readable Delta table: {_first_line(e)}") from None
    if row is None:
        raise DataError(f"source {source.display!r} has no Delta history")
    return int(row[0])


def read_source(
    spark: SparkSession,
    source: SourceSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    where: str | None = None,
) -> tuple[DataFrame, int]:
    """The source rows at a pinned Delta version, and that version.

    With no version in the spec, the table's current version is looked up first
    and read explicitly, so every number in the audit comes from one snapshot.
    """
    version = source.version if source.version is not None else current_version(spark, source)
    reader = spark.read.format("delta").option("versionAsOf", version)
    try:
        df = reader.table(source.table) if source.table else reader.load(str(source.path))
        _ = df.schema  # resolve now: a bad version or path fails here, with its name
    except AnalysisException as e:
        raise DataError(f"cannot read {source.display!r} at version {version}: {_first_line(e)}") from None
    ts = source.timestamp_column
    if ts and ts not in df.columns:
        raise DataError(
            f"timestamp column {ts!r} not found in {source.display!r}; it has: {', '.join(df.columns)}"
        )
    if (start or end) and not ts:
        raise DataError("a time range needs source.timestamp_column")
    if start:
        df = df.where(_c(ts) >= F.lit(start))  # type: ignore[arg-type]
    if end:
        df = df.where(_c(ts) < F.lit(end))  # type: ignore[arg-type]
    for cond in (source.where, where):
        if cond:
            try:
                df = df.where(F.expr(cond))
                _ = df.schema
            except AnalysisException as e:
                raise DataError(f"invalid filter {cond!r}: {_first_line(e)}") from None
    return df, version


def group_rows(df: DataFrame, key: GroupKey, *, timestamp_column: str | None,
               version_column: str | None) -> DataFrame:
    """The rows of ``df`` in one group's window and model version (a window's bad rows are sampled, its
    correlations measured, from these)."""
    if timestamp_column and key.window_start and key.window_end:
        ts = _c(timestamp_column)
        df = df.where((ts >= F.lit(parse_iso(key.window_start))) & (ts < F.lit(parse_iso(key.window_end))))
    if version_column and key.model_version is not None:
        df = df.where(_c(version_column).cast("string") == F.lit(key.model_version))
    return df
