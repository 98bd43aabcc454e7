"""Model versions in the rows: which versions an audit (or a reference build) fans out to, and each
version's own rows.

A table whose rows carry a model version (``model.version_column``) and a spec that names no version
is audited once per version found, each against its own reference; a shadow version scoring the same
rows never mixes into another's profile.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_audit.errors import DataError, EmptyWindowError
from spark_audit.names import col as _c
from spark_audit.reference import resolve_model_version
from spark_audit.result import version_order
from spark_audit.source import read_source
from spark_audit.spec import AuditSpec


def model_version_label(spec: AuditSpec, client=None) -> str | None:
    """The version an audit of ``spec`` audits: the spec's version, or the one its alias names now."""
    if spec.model.version:
        return spec.model.version
    if spec.model.alias and spec.model.name and client is not None:
        return str(resolve_model_version(client, spec.model.name, None, spec.model.alias).version)
    return None


def version_rows(df: DataFrame, spec: AuditSpec, model_version: str | None) -> DataFrame:
    """Only ``model_version``'s rows when the rows carry versions: a version's reference and its audit
    see that version alone (a shadow version scoring the same rows must not mix in)."""
    col = spec.model.version_column
    if not col or model_version is None:
        return df
    if col not in df.columns:
        raise DataError(f"model.version_column {col!r} is not a column of {spec.source.display!r}")
    return df.where(_c(col).cast("string") == F.lit(str(model_version)))


def model_versions(spark: SparkSession, spec: AuditSpec, start: datetime | None = None,
                   end: datetime | None = None, *, reference: bool = False) -> list[str]:
    """The model versions in the rows an audit of [start, end) reads (or the reference rows), in
    version order; one small pass over the version column."""
    col = spec.model.version_column
    if not col:
        return []
    if reference:
        df, _ = read_source(spark, spec.source, start=spec.reference.start, end=spec.reference.end,
                            where=spec.reference.where)
    else:
        df, _ = read_source(spark, spec.source, start=start, end=end)
    if col not in df.columns:
        raise DataError(f"model.version_column {col!r} is not a column of {spec.source.display!r}")
    found = {r[0] for r in df.select(_c(col).cast("string")).distinct().collect() if r[0] is not None}
    return sorted(found, key=version_order)


def version_specs(spark: SparkSession, spec: AuditSpec, start: datetime | None = None, end: datetime | None = None,
                  *, reference: bool = False) -> list[AuditSpec]:
    """One spec per model version to audit (or to build a reference for): the spec itself, unless its
    rows carry versions and it names none (``AuditSpec.versions_in_rows``); an audit with an explicit
    ``reference.uri`` compares every version with that one reference."""
    if not (spec.versions_in_rows if reference else spec.audits_each_version):
        return [spec]
    versions = model_versions(spark, spec, start or spec.window.start, end or spec.window.end, reference=reference)
    if not versions:
        what = "reference rows" if reference else "audited rows"
        raise EmptyWindowError(f"no {what} of {spec.source.display!r} carry a model version "
                               f"({spec.model.version_column!r})")
    return [spec.for_model_version(v) for v in versions]
