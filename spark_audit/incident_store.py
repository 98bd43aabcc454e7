"""The incidents and what people said of them, in Delta: read before an audit tracks its incidents,
written after its results are complete (``spark_audit.incidents`` is the logic, this is the storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_audit import store
from spark_audit.incidents import ACK, NOT_AN_ISSUE, UNACK, Ack, Incident, from_row, latest_acks, to_row
from spark_audit.spec import AuditSpec, OutputSpec
from spark_audit.timeutil import iso_utc

ACTIONS = (ACK, NOT_AN_ISSUE, UNACK)


@dataclass
class Stored:
    """An audit's incidents as the tables hold them: its open incidents, and the newest acknowledgement of
    every incident."""

    open: list[Incident] = field(default_factory=list)
    acks: dict[str, Ack] = field(default_factory=dict)


def _rows(df) -> list[dict]:
    """Rows with their timestamps as epoch microseconds turned into ISO strings (the same instant whatever
    the session's time zone)."""
    stamps = [f.name for f in df.schema.fields if isinstance(f.dataType, T.TimestampType)]
    out = df.select(*[F.unix_micros(c).alias(c) if c in stamps else F.col(c) for c in df.columns]).collect()
    return [{k: (iso_utc(v) if k in stamps and v is not None else v) for k, v in r.asDict().items()} for r in out]


def load(spark: SparkSession, spec: AuditSpec, model_version: str | None) -> Stored:
    """The audit's open incidents of this model version, and every acknowledgement."""
    out = Stored()
    df = store.read(spark, spec.output, "incidents")
    if df is not None:
        mine = (F.col("audit_name") == spec.name) & (F.col("status") == "open")
        mine &= F.col("model_version").isNull() if model_version is None \
            else F.col("model_version") == F.lit(str(model_version))
        out.open = [from_row(r) for r in _rows(df.where(mine))]
    out.acks = read_acks(spark, spec.output)
    return out


def read_acks(spark: SparkSession, output: OutputSpec) -> dict[str, Ack]:
    df = store.read(spark, output, "incident_acks")
    if df is None:
        return {}
    acks = []
    for r in _rows(df):
        acks.append(Ack(r["incident_id"], r["action"], _dt(r["until"]), r["reason"], r["by"], _dt(r["at"])))
    return latest_acks(acks)


def _dt(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v.replace("Z", "+00:00"))


def save(spark: SparkSession, spec: AuditSpec, incidents: list[Incident], common: dict, mlflow_run_id: str | None
         ) -> int:
    """Upsert the incidents an audit changed (by incident id: a re-run rewrites the same rows)."""
    rows = [store.row("incidents", **to_row(i, {**common, "audit_name": spec.name}, mlflow_run_id))
            for i in incidents]
    return store.upsert_rows(spark, spec.output, "incidents", rows)


def acknowledge(spark: SparkSession, output: OutputSpec, incident_id: str, action: str, *,
                until: datetime | None = None, reason: str | None = None, by: str | None = None) -> Ack:
    """Record what someone said of an incident; the newest word counts."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    at = datetime.now(timezone.utc)
    row = store.row("incident_acks", incident_id=incident_id, action=action, until=until, reason=reason, by=by, at=at)
    store.upsert_rows(spark, output, "incident_acks", [row])
    return Ack(incident_id, action, until, reason, by, at)


def find(spark: SparkSession, output: OutputSpec, incident_id: str) -> dict | None:
    """An incident's stored row (None when there is none of that id)."""
    df = store.read(spark, output, "incidents")
    if df is None:
        return None
    rows = _rows(df.where(F.col("incident_id") == F.lit(incident_id)))
    return rows[0] if rows else None
