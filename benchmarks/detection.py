"""Detection benchmark: does an audit flag injected faults, and stay quiet on stable data?

One command::

    .venv/bin/python benchmarks/detection.py            # every scenario (about 12 minutes on 2 shared cores)
    .venv/bin/python benchmarks/detection.py --quick    # smaller tables, for a smoke run
    .venv/bin/python benchmarks/detection.py --only nan_burst,stable_30

Each scenario generates its own scored binary-classifier table with Spark
(seeded ``rand``/``randn``; local session from ``spark_audit.session.get_spark``),
writes it as Delta under a temp folder, builds a reference from 7 stable days
with ``build_reference`` (MLflow on a SQLite file in the same folder), infers a
data contract from that reference profile with ``infer_contract`` (as
``spark-audit contract infer`` does), and audits the following days in 1-day
windows with ``run_audit``, sliced by ``region``.

The table: a timestamp, 7 numeric features (normal, clipped normal, log-normal,
power-of-uniform, exponential, an integer count, an integer credit score), two
categorical features (``plan``; ``channel`` with 2% nulls), a 4-valued ``region``
(15/25/25/35% of rows, with small effects on income and on the label), the
model's ``score`` (a logistic model with slightly wrong coefficients, so it has
real but imperfect skill), ``prediction`` (score >= 0.5) and ``label`` drawn from
the true logistic model. The score is computed from the clean feature values;
faults in feature columns are applied afterwards (a pipeline bug between the
scoring job and the logged table), so each scenario has exactly one fault.

Every finding of an audit is put in one of three buckets:

* hit: kind, column, window (a faulted day), model version and slice (where the
  scenario names one) as expected, severity at least the expected minimum;
* related: on a faulted day and about the faulted column (or metric), but of
  another kind or a lower severity (e.g. the contract also catching a NaN burst);
* false alarm: everything else, counted by severity, overall vs slice.

This is a benchmark, not a test: it always exits 0 and prints PASS/FAIL per target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import yaml  # noqa: E402
from pyspark.sql import Column, DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from spark_audit.audit import run_audit  # noqa: E402
from spark_audit.reference_build import build_reference  # noqa: E402
from spark_audit.contract import infer_contract  # noqa: E402
from spark_audit.contract import logical_type_of  # noqa: E402
from spark_audit.findings import SEVERITIES, Finding  # noqa: E402
from spark_audit.session import get_spark  # noqa: E402

import rhythms  # noqa: E402  (benchmarks/rhythms.py: the real-world table shapes)
from spark_audit.spec import parse_spec  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
REF_DAYS = 7
PARTITIONS = 4  # fixed, so Spark's seeded rand/randn give the same rows on any machine
QUALITY_METRICS = ("accuracy", "f1", "roc_auc")  # the metrics a binary audit with a score watches by default
MIN_GROUP_ROWS = 500  # stable_30 counts findings of the overall groups and of slices at least this big
NUMERIC = ["age", "income", "balance", "utilization", "days_since_login", "num_products", "credit_score"]
FEATURES = [*NUMERIC, {"name": "plan", "kind": "categorical"}, {"name": "channel", "kind": "categorical"}, "score"]


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def day_iso(day: int) -> str:
    return (START + timedelta(days=day)).isoformat().replace("+00:00", "Z")


def parse_when(s: str | None) -> datetime | None:
    if s is None:
        return None
    dt = datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- data


def sigmoid(x: Column) -> Column:
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-x))


def generate(
    spark: SparkSession, first_day: int, n_days: int, rows_per_day: int, seed: int, *,
    concept_from: int | None = None, flips_from: int | None = None, flip_share: float = 0.15,
    version: str | None = None, south_bug: bool = False,
) -> DataFrame:
    """``n_days`` x ``rows_per_day`` scored rows from ``first_day`` on; helper columns start with ``_``.

    ``concept_from``: from that day the label's dependence on ``utilization`` flips sign
    (inputs and scores unchanged). ``flips_from``: from that day ``flip_share`` of the
    labels are flipped. ``version``/``south_bug``: score with a retrained model ``version``
    whose utilization term has the wrong sign for region ``south``.
    """
    n = n_days * rows_per_day
    s = seed * 1000
    raw = spark.range(0, n, 1, PARTITIONS).select(
        (F.floor(F.col("id") / rows_per_day) + first_day).cast("int").alias("_day"),
        (F.col("id") % rows_per_day).cast("int").alias("_idx"),
        *[F.rand(s + i).alias(f"_u{i}") for i in range(1, 16)],
        *[F.randn(s + 100 + i).alias(f"_z{i}") for i in range(1, 5)],
    )
    u = lambda i: F.col(f"_u{i}")  # noqa: E731
    z = lambda i: F.col(f"_z{i}")  # noqa: E731
    region = (F.when(u(11) < 0.15, "north").when(u(11) < 0.40, "south").when(u(11) < 0.65, "east")
              .otherwise("west"))
    region_income = {"north": 0.0, "south": -0.10, "east": 0.05, "west": 0.10}
    df = raw.select(
        "*",
        F.timestamp_seconds(F.lit(int(START.timestamp())) + F.col("_day").cast("long") * 86400
                            + (u(1) * 86399).cast("long")).alias("event_ts"),
        region.alias("region"),
    )
    income_offset = F.coalesce(*[F.when(F.col("region") == k, F.lit(v)) for k, v in region_income.items()])
    channel = (F.when(u(10) < 0.45, "web").when(u(10) < 0.80, "app").when(u(10) < 0.95, "store")
               .otherwise("phone"))
    df = df.select(
        "*",
        F.round(F.least(F.greatest(F.lit(45.0) + F.lit(12.0) * z(1), F.lit(18.0)), F.lit(95.0)), 0).alias("age"),
        F.round(F.exp(F.lit(10.6) + F.lit(0.45) * z(2) + income_offset), 2).alias("income"),
        F.round(F.lit(1500.0) + F.lit(600.0) * z(3), 2).alias("balance"),
        F.round(F.pow(u(4), F.lit(1.5)), 4).alias("utilization"),
        F.round(F.lit(-12.0) * F.log(F.lit(1.0) - u(5)), 1).alias("days_since_login"),
        F.least(F.floor(F.lit(-1.5) * F.log(F.lit(1.0) - u(6))) + 1, F.lit(10)).cast("int").alias("num_products"),
        F.round(F.least(F.greatest(F.lit(680.0) + F.lit(70.0) * z(4), F.lit(300.0)), F.lit(850.0)))
        .cast("int").alias("credit_score"),
        F.when(u(8) < 0.40, "basic").when(u(8) < 0.70, "silver").when(u(8) < 0.90, "gold")
        .otherwise("platinum").alias("plan"),
        F.when(u(9) < 0.02, F.lit(None).cast("string")).otherwise(channel).alias("channel"),
    )
    ut = (F.col("utilization") - 0.4) / 0.3
    cs = (F.col("credit_score") - 680.0) / 70.0
    dsl = (F.col("days_since_login") - 12.0) / 12.0
    inc = (F.log(F.col("income")) - 10.6) / 0.45
    bal = (F.col("balance") - 1500.0) / 600.0
    npr = F.col("num_products") - 2.0

    def plan_term(b: float, s_: float, g: float, p: float) -> Column:
        return (F.when(F.col("plan") == "basic", b).when(F.col("plan") == "silver", s_)
                .when(F.col("plan") == "gold", g).otherwise(p))

    region_term = (F.when(F.col("region") == "south", 0.15).when(F.col("region") == "east", -0.10)
                   .when(F.col("region") == "west", 0.05).otherwise(0.0))
    ut_coef = F.lit(0.9) if concept_from is None else F.when(F.col("_day") >= concept_from, -0.9).otherwise(0.9)
    true_logit = (F.lit(-1.0) + ut_coef * ut - 0.6 * cs + 0.5 * dsl - 0.3 * inc + 0.2 * bal + 0.15 * npr
                  + plan_term(0.3, 0.0, -0.3, -0.5) + region_term)
    if version == "2":  # retrained: coefficients a little different, and (bug) a flipped sign on one region
        ut_fit = F.when(F.col("region") == "south", -ut).otherwise(ut) if south_bug else ut
        fit_logit = (F.lit(-0.95) + 0.9 * ut_fit - 0.5 * cs + 0.5 * dsl - 0.3 * inc + 0.1 * npr
                     + plan_term(0.3, 0.0, -0.25, -0.4))
    else:  # version 1: the model in production, fitted a little off the truth (no region, no balance)
        fit_logit = (F.lit(-1.0) + 0.85 * ut - 0.55 * cs + 0.45 * dsl - 0.25 * inc + 0.1 * npr
                     + plan_term(0.25, 0.0, -0.25, -0.45))
    score = F.round(sigmoid(fit_logit), 4)
    label = (u(12) < sigmoid(true_logit)).cast("int")
    if flips_from is not None:
        label = F.when((F.col("_day") >= flips_from) & (u(13) < flip_share), F.lit(1) - label).otherwise(label)
    df = df.select("*", score.alias("score"), label.alias("label"))
    df = df.withColumn("prediction", (F.col("score") >= 0.5).cast("int"))
    if version is not None:
        df = df.withColumn("model_version", F.lit(version))
    return df


def finish(df: DataFrame) -> DataFrame:
    """Drop the helper columns; fixed column order."""
    keep = ["event_ts", *NUMERIC, "plan", "channel", "region"]
    keep += [c for c in ("model_version",) if c in df.columns] + ["score", "prediction", "label"]
    return df.select(*keep)


def write_delta(df: DataFrame, path: Path) -> None:
    df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(path))


# --------------------------------------------------------------------------- scenarios


@dataclass
class Fault:
    kinds: tuple[str, ...]
    columns: tuple[str, ...]
    days: tuple[int, ...]  # faulted days (day index from START)
    min_severity: str
    model_version: str | None = None
    slice_has: str | None = None  # e.g. "region=south"

    def describe(self) -> str:
        days = sorted(self.days)
        when = day_iso(days[0])[:10] + (f"..{day_iso(days[-1])[:10]}" if len(days) > 1 else "")
        who = (f", model v{self.model_version}" if self.model_version else "") + (
            f", slice {self.slice_has}" if self.slice_has else "")
        return f"{'|'.join(self.kinds)} on {'|'.join(c or 'the table' for c in self.columns)}, {when}{who}, >= {self.min_severity}"


@dataclass
class Scenario:
    name: str
    what: str
    rows_per_day: int  # audited window rows (per model version)
    ref_rows_per_day: int
    audit_days: int
    build: Callable[[SparkSession, "Scenario", Path], dict[str, Path]]  # writes tables; returns ref/audit paths
    fault: Fault | None = None
    mode: str = "fault"  # fault | stable | tiny
    required: bool = True  # counts towards "every fault flagged"
    version_column: str | None = None
    seed: int = 1
    tiny_day: int | None = None
    note: str = ""
    ref_days: int = REF_DAYS
    table: str = "bank"  # bank (generate), rhythm / rare (rhythms.generate_rhythm), four (rhythms.generate_four)
    threshold: float = 0.5  # the model's cut-off (quality.threshold)
    min_counted_rows: int = MIN_GROUP_ROWS  # a stable run counts findings of slices at least this big

    @property
    def first_audit_day(self) -> int:
        return self.ref_days

    @property
    def audit_end_day(self) -> int:
        return self.ref_days + self.audit_days


def _one_table(spark: SparkSession, sc: Scenario, home: Path, transform: Callable[[DataFrame], DataFrame] | None = None,
               **gen) -> dict[str, Path]:
    ref = generate(spark, 0, REF_DAYS, sc.ref_rows_per_day, sc.seed, **gen)
    cur = generate(spark, REF_DAYS, sc.audit_days, sc.rows_per_day, sc.seed + 500, **gen)
    df = ref.unionByName(cur)
    if transform is not None:
        df = transform(df)
    path = home / "table"
    write_delta(finish(df), path)
    return {"ref": path, "audit": path}


def _day() -> Column:
    return F.col("_day")


def _rhythm_table(spark: SparkSession, sc: Scenario, home: Path,
                  transform: Callable[[DataFrame], DataFrame] | None = None, **gen) -> dict[str, Path]:
    """A table of rhythms.py's kinds: ``sc.ref_days`` reference days, then ``sc.audit_days`` audited ones."""
    if sc.table == "four":
        df = rhythms.generate_four(spark, 0, sc.ref_days + sc.audit_days, sc.rows_per_day, sc.seed)
    else:
        gen = {"weekly": sc.table == "rhythm", "cutoff": sc.threshold,
               "intercept": -4.1 if sc.table == "rare" else -2.3, **gen}
        df = rhythms.generate_rhythm(spark, 0, sc.ref_days + sc.audit_days, sc.rows_per_day, sc.seed, **gen)
    if transform is not None:
        df = transform(df)
    path = home / "table"
    write_delta(rhythms.finish(df), path)
    return {"ref": path, "audit": path}


def scenarios(quick: bool) -> list[Scenario]:
    rpd = 1500 if quick else 4000
    big, big_ref = (50_000, 20_000) if quick else (250_000, 50_000)
    stable_days = 10 if quick else 30
    D = REF_DAYS  # first audited day
    out: list[Scenario] = []

    def add(**kw) -> None:
        kw.setdefault("rows_per_day", rpd)
        kw.setdefault("ref_rows_per_day", kw["rows_per_day"])
        kw.setdefault("audit_days", 7)
        kw["seed"] = len(out) + 1
        out.append(Scenario(**kw))

    add(name="nan_burst", what="balance all NaN on one audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.withColumn(
            "balance", F.when(_day() == D + 2, F.lit(float("nan"))).otherwise(F.col("balance")))),
        fault=Fault(("missing",), ("balance",), (D + 2,), "critical"))
    add(name="unit_change", what="income x100 from the 4th audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.withColumn(
            "income", F.when(_day() >= D + 3, F.col("income") * 100).otherwise(F.col("income")))),
        fault=Fault(("drift",), ("income",), tuple(range(D + 3, D + 7)), "critical"))
    add(name="renamed_category", what="plan 'gold' renamed 'GOLD' from the 4th audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.withColumn(
            "plan", F.when((_day() >= D + 3) & (F.col("plan") == "gold"), F.lit("GOLD")).otherwise(F.col("plan")))),
        fault=Fault(("drift",), ("plan",), tuple(range(D + 3, D + 7)), "warning"))
    for sd, required in ((0.1, False), (0.2, True)):
        add(name=f"mean_shift_{sd}sd", what=f"balance +{sd} sd from the 3rd audited day, big windows",
            rows_per_day=big, ref_rows_per_day=big_ref, audit_days=4,
            build=lambda s, sc, h, sd=sd: _one_table(s, sc, h, lambda df: df.withColumn(
                "balance", F.when(_day() >= D + 2, F.col("balance") + sd * 600.0).otherwise(F.col("balance")))),
            fault=Fault(("drift",), ("balance",), (D + 2, D + 3), "warning"), required=required,
            note=f"reference {REF_DAYS} days x {big_ref:,} rows (smaller than the audited windows)")
    add(name="type_change", what="credit_score written as string (the audited table's schema)",
        build=_build_type_change,
        fault=Fault(("schema",), ("credit_score",), tuple(range(D, D + 7)), "warning"),
        note="reference and audit read different Delta paths; a type is per table version, so every "
             "audited window is faulted")
    add(name="concept_drift", what="label's dependence on utilization flips sign from the 4th audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, concept_from=D + 3),
        fault=Fault(("quality",), QUALITY_METRICS, tuple(range(D + 3, D + 7)), "warning"))
    add(name="label_flips_15pct", what="15% of labels flipped from the 4th audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, flips_from=D + 3),
        fault=Fault(("quality",), QUALITY_METRICS, tuple(range(D + 3, D + 7)), "warning"))
    add(name="new_version_worse_on_slice",
        what="model v2 shadow-scores every audited row; its score is poor on region=south",
        build=_build_versions, version_column="model_version",
        fault=Fault(("quality", "drift"), (*QUALITY_METRICS, "score"), tuple(range(D, D + 7)), "warning",
                    model_version="2", slice_has="region=south"),
        note="v2 is new: it has no reference period of its own, so the spec names v1's reference "
             "(reference.uri) for every version, and v2's windows are compared with v1's reference")
    add(name="sentinel_1pct", what="1% of age replaced by -999 from the 4th audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.withColumn(
            "age", F.when((_day() >= D + 3) & (F.col("_u14") < 0.01), F.lit(-999.0)).otherwise(F.col("age")))),
        fault=Fault(("drift", "contract"), ("age",), tuple(range(D + 3, D + 7)), "warning"))
    add(name="null_spike_categorical", what="30% of channel null on one audited day",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.withColumn(
            "channel", F.when((_day() == D + 2) & (F.col("_u15") < 0.30), F.lit(None).cast("string"))
            .otherwise(F.col("channel")))),
        fault=Fault(("missing",), ("channel",), (D + 2,), "warning"))
    # faults a column-by-column profile cannot see (table-level findings have no column)
    add(name="missing_days_end", what="the last two audited days never arrive",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.where(_day() < D + 5)),
        fault=Fault(("missing_window", "stale"), (None,), (D + 5, D + 6), "warning"))
    add(name="duplicate_day", what="one audited day loaded twice",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.unionByName(df.where(_day() == D + 2))),
        fault=Fault(("duplicates",), (None,), (D + 2,), "warning"))
    add(name="halved_day", what="half of one audited day's rows are lost",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.where((_day() != D + 2) | (F.col("_u14") < 0.5))),
        fault=Fault(("volume",), (None,), (D + 2,), "warning"))
    # income correlated with age (0.8) in the reference; from the 4th audited day it follows an independent
    # draw with the same distribution: both marginals kept, the joint distribution changed
    add(name="decorrelated_pair", what="income decorrelated from age from the 4th audited day, marginals kept",
        build=lambda s, sc, h: _one_table(s, sc, h, lambda df: df.withColumn(
            "income", F.round(F.exp(F.lit(10.6) + F.lit(0.45) * (
                F.lit(0.8) * F.when(_day() >= D + 3, F.col("_z4")).otherwise(F.col("_z1"))
                + F.lit(0.6) * F.col("_z3"))), 2))),
        fault=Fault(("multivariate_drift",), (None,), tuple(range(D + 3, D + 7)), "warning"))
    add(name="stable_30", what=f"{stable_days} stable daily windows, inferred contract", audit_days=stable_days,
        build=lambda s, sc, h: _one_table(s, sc, h), mode="stable")
    add(name="tiny_window", what="one audited day has only 20 rows, drifted (balance +2 sd, credit_score -100)",
        build=_build_tiny, mode="tiny", tiny_day=D + 3)
    # real-world shapes (rhythms.py): a weekly rhythm in reference and audit, a rare positive class with a high
    # cut-off, a four-feature table; 28-day references, every slice counted in the stable runs
    R, wk = 28, (3000 if quick else 5000)
    rhythm_days = 14 if quick else 28
    rhythm = dict(ref_days=R, rows_per_day=wk, table="rhythm", min_counted_rows=0, build=_rhythm_table)
    add(name="rhythm_stable_28", what=f"weekly rhythm: weekends with 60% of the rows, later hours, larger amounts, "
        f"another merchant and device mix; {rhythm_days} stable days", audit_days=rhythm_days, mode="stable",
        **rhythm)
    add(name="rare_positive_stable_28", what=f"3% positives, cut-off 0.25 (few predicted positives); {rhythm_days} "
        "stable days", audit_days=rhythm_days, mode="stable",
        **{**rhythm, "table": "rare", "threshold": 0.25})
    add(name="four_features_stable_28", what=f"four numeric features, no direction left for PCA; {rhythm_days} "
        "stable days", audit_days=rhythm_days, mode="stable", **{**rhythm, "table": "four", "rows_per_day": rpd})
    F0 = R + 7  # the faults start on the 8th audited day, a Thursday
    add(name="rhythm_mean_shift", what="weekly rhythm; amount x1.5 from the 8th audited day", audit_days=14,
        fault=Fault(("drift",), ("amount",), tuple(range(F0, R + 14)), "warning"), **{**rhythm, "build": lambda s, sc, h:
        _rhythm_table(s, sc, h, lambda df: df.withColumn(
            "amount", F.when(_day() >= F0, F.round(F.col("amount") * 1.5, 2)).otherwise(F.col("amount"))))})
    add(name="rhythm_nan_burst", what="weekly rhythm; account_age_days all NaN on the 9th audited day (a Friday)",
        audit_days=14, fault=Fault(("missing",), ("account_age_days",), (F0 + 1,), "critical"),
        **{**rhythm, "build": lambda s, sc, h: _rhythm_table(s, sc, h, lambda df: df.withColumn(
            "account_age_days", F.when(_day() == F0 + 1, F.lit(float("nan"))).otherwise(F.col("account_age_days"))))})
    add(name="rhythm_renamed_category", what="weekly rhythm; merchant 'online' renamed 'ONLINE' from the 8th "
        "audited day", audit_days=14, fault=Fault(("drift",), ("merchant",), tuple(range(F0, R + 14)), "warning"),
        **{**rhythm, "build": lambda s, sc, h: _rhythm_table(s, sc, h, lambda df: df.withColumn(
            "merchant", F.when((_day() >= F0) & (F.col("merchant") == "online"), F.lit("ONLINE"))
            .otherwise(F.col("merchant"))))})
    add(name="rhythm_concept_drift", what="weekly rhythm; the label's dependence on the amount flips sign from the "
        "8th audited day", audit_days=14, fault=Fault(("quality",), QUALITY_METRICS, tuple(range(F0, R + 14)),
                                                      "warning"),
        **{**rhythm, "build": lambda s, sc, h: _rhythm_table(s, sc, h, concept_from=F0)})
    return out


def _build_type_change(spark: SparkSession, sc: Scenario, home: Path) -> dict[str, Path]:
    ref = generate(spark, 0, REF_DAYS, sc.ref_rows_per_day, sc.seed)
    cur = generate(spark, REF_DAYS, sc.audit_days, sc.rows_per_day, sc.seed + 500)
    cur = cur.withColumn("credit_score", F.col("credit_score").cast("string"))
    write_delta(finish(ref), home / "table_reference")
    write_delta(finish(cur), home / "table_audit")
    return {"ref": home / "table_reference", "audit": home / "table_audit"}


def _build_versions(spark: SparkSession, sc: Scenario, home: Path) -> dict[str, Path]:
    ref = generate(spark, 0, REF_DAYS, sc.ref_rows_per_day, sc.seed, version="1")
    # the same events (same seed) scored by both versions: two rows per event
    v1 = generate(spark, REF_DAYS, sc.audit_days, sc.rows_per_day, sc.seed + 500, version="1")
    v2 = generate(spark, REF_DAYS, sc.audit_days, sc.rows_per_day, sc.seed + 500, version="2", south_bug=True)
    path = home / "table"
    write_delta(finish(ref).unionByName(finish(v1)).unionByName(finish(v2)), path)
    return {"ref": path, "audit": path}


def _build_tiny(spark: SparkSession, sc: Scenario, home: Path) -> dict[str, Path]:
    day = sc.tiny_day

    def transform(df: DataFrame) -> DataFrame:
        tiny = _day() == day
        df = df.where(~tiny | (F.col("_idx") < 20))
        return (df.withColumn("balance", F.when(tiny, F.col("balance") + 1200.0).otherwise(F.col("balance")))
                .withColumn("credit_score", F.when(tiny, F.col("credit_score") - 100).otherwise(F.col("credit_score"))))

    return _one_table(spark, sc, home, transform)


# --------------------------------------------------------------------------- audit


TABLE_FEATURES = {"bank": (FEATURES, ["region"]), "rhythm": (rhythms.RHYTHM_FEATURES, ["device"]),
                  "rare": (rhythms.RHYTHM_FEATURES, ["device"]), "four": (rhythms.FOUR_FEATURES, ["segment"])}


def spec_dict(sc: Scenario, home: Path, root: Path, source: Path, *, contract: Path | None = None,
              reference_uri: str | None = None) -> dict:
    features, slices = TABLE_FEATURES[sc.table]
    d = {
        "name": f"bench-{sc.name}",
        "source": {"path": str(source), "timestamp_column": "event_ts"},
        "window": {"size": "1 day", "start": day_iso(sc.first_audit_day), "end": day_iso(sc.audit_end_day)},
        "features": features,
        "slices": slices,
        "reference": {"start": day_iso(0), "end": day_iso(sc.ref_days)},
        "quality": {"task": "binary", "label": "label", "score": "score", "threshold": sc.threshold,
                    **({"prediction": "prediction"} if sc.table != "bank" else {})},
        "output": {"path": str(home / "results")},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "spark-audit-detection-bench"},
    }
    if sc.version_column:
        d["model"] = {"version_column": sc.version_column}
        d["reference"]["where"] = f"{sc.version_column} = '1'"
    if reference_uri:
        d["reference"]["uri"] = reference_uri
    if contract is not None:
        d["contract"] = {"path": str(contract), "sample_rows": 0}
    return d


@dataclass
class Outcome:
    sc: Scenario
    seconds: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    hits: list[Finding] = field(default_factory=list)
    weak: list[Finding] = field(default_factory=list)  # right kind/column/window, severity below the minimum
    related: list[Finding] = field(default_factory=list)
    false: list[Finding] = field(default_factory=list)
    group_rows: dict[tuple, int] = field(default_factory=dict)
    error: str | None = None
    tiny_drift_quality: list[Finding] = field(default_factory=list)

    def rows(self, f: Finding) -> int | None:
        return self.group_rows.get((f.window_start, f.slice, f.model_version))

    def counted(self, f: Finding) -> bool:
        """A stable run counts overall findings and findings of slices with at least ``min_counted_rows`` rows."""
        if f.slice is None:
            return True
        n = self.rows(f)
        return n is None or n >= self.sc.min_counted_rows


def _on_faulted_day(f: Finding, fault: Fault) -> bool:
    w = parse_when(f.window_start)
    if w is None:  # audit-wide (e.g. a contract's schema rule): faulted if the audit covers a faulted day
        return True
    return any(w == parse_when(day_iso(d)) for d in fault.days)


def _version_and_slice(f: Finding, fault: Fault, *, need_slice: bool) -> bool:
    if fault.model_version is not None and f.model_version != fault.model_version:
        return False
    if fault.slice_has is None:
        return True
    if f.slice is None:
        return not need_slice
    return fault.slice_has in f.slice.split(",")


def classify(o: Outcome) -> None:
    sc, fault = o.sc, o.sc.fault
    for f in o.findings:
        if sc.mode == "tiny":
            if parse_when(f.window_start) == parse_when(day_iso(sc.tiny_day)) and f.kind in ("drift", "quality"):
                o.tiny_drift_quality.append(f)
            o.false.append(f)
            continue
        if fault is None:
            o.false.append(f)
            continue
        # a table-level finding (no column: volume, multivariate drift, ...) on a faulted window of the faulted
        # model version is caused by the fault too: related, not a false alarm
        about = (f.column in fault.columns or f.column is None) and _on_faulted_day(f, fault)
        if about and f.kind in fault.kinds and _version_and_slice(f, fault, need_slice=True):
            (o.hits if rank(f.severity) >= rank(fault.min_severity) else o.weak).append(f)
        elif about and _version_and_slice(f, fault, need_slice=False):
            o.related.append(f)
        else:
            o.false.append(f)


def best(fs: list[Finding]) -> Finding | None:
    return max(fs, key=lambda f: (rank(f.severity), f.slice is None, -(parse_when(f.window_start) or START)
                                  .timestamp()), default=None)


def complete_contract(contract: dict, schema) -> dict:
    """Add the table's columns the profile does not cover (timestamp, slice, label...) with their types only,
    as a reviewer of the inferred contract would; else each audit warns that they are unexpected columns."""
    obj = contract["schema"][0]
    known = {p["name"] for p in obj["properties"]}
    obj["properties"] += [{"name": f.name, "logicalType": logical_type_of(f.dataType.simpleString()),
                           "physicalType": f.dataType.simpleString()} for f in schema.fields if f.name not in known]
    return contract


def run_scenario(spark: SparkSession, sc: Scenario, root: Path, log: Callable[[str], None], *,
                 raw_contract: bool = False) -> Outcome:
    o = Outcome(sc)
    home = root / sc.name
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        paths = sc.build(spark, sc, home)
        t1 = time.perf_counter()
        o.seconds["generate"] = t1 - t0
        ref_spec = parse_spec(spec_dict(sc, home, root, paths["ref"]), file=f"{sc.name} (reference)")
        run_id, profile = build_reference(spark, ref_spec)
        contract = infer_contract(profile, table_name=sc.name)  # as `spark-audit contract infer` does
        if not raw_contract:
            contract = complete_contract(contract, spark.read.format("delta").load(str(paths["ref"])).schema)
        contract_path = home / "contract.yaml"
        contract_path.write_text(yaml.safe_dump(contract, sort_keys=False))
        t2 = time.perf_counter()
        o.seconds["reference"] = t2 - t1
        audit_spec = parse_spec(spec_dict(sc, home, root, paths["audit"], contract=contract_path,
                                          reference_uri=f"runs:/{run_id}"), file=f"{sc.name} (audit)")
        result = run_audit(spark, audit_spec)
        o.seconds["audit"] = time.perf_counter() - t2
        o.findings = list(result.findings)
        o.group_rows = {(g.key.window_start, g.key.slice, g.key.model_version): g.profile.row_count
                        for g in result.groups}
    except Exception as e:  # noqa: BLE001 - a benchmark reports an engine failure and goes on
        o.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
        log(traceback.format_exc())
    o.seconds["total"] = time.perf_counter() - t0
    classify(o)
    return o


# --------------------------------------------------------------------------- report


def sev_counts(fs: list[Finding]) -> str:
    c = Counter(f.severity for f in fs)
    return "/".join(str(c.get(s, 0)) for s in reversed(SEVERITIES))


def kinds(fs: list[Finding]) -> str:
    c = Counter(f.kind for f in fs)
    return ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


def show(f: Finding, o: Outcome) -> str:
    rows = o.rows(f)
    where = (f.window_start or "audit")[:10] + (f" v{f.model_version}" if f.model_version else "") + (
        f" [{f.slice}]" if f.slice else "")
    return (f"{f.severity.upper():8} {f.kind:14} {str(f.column):16} {where}"
            + (f" ({rows} rows)" if rows is not None else "") + f": {f.message}")


def expected_text(sc: Scenario) -> str:
    if sc.mode == "stable":
        return (f"no findings (0 critical, 0 error, <= 2 warnings; overall + "
                + (f"slices >= {sc.min_counted_rows} rows)" if sc.min_counted_rows else "every slice)"))
    if sc.mode == "tiny":
        return f"no drift/quality finding on the 20-row window {day_iso(sc.tiny_day)[:10]}"
    assert sc.fault is not None
    return sc.fault.describe()


def detected_text(o: Outcome) -> str:
    sc = o.sc
    if o.error:
        return f"ENGINE ERROR: {o.error}"
    if sc.mode == "stable":
        counted = [f for f in o.false if o.counted(f)]
        return f"{len(counted)} counted finding(s) (c/e/w/i {sev_counts(counted)})"
    if sc.mode == "tiny":
        n = len(o.tiny_drift_quality)
        return "clean" if n == 0 else f"{n} drift/quality finding(s) on the tiny window"
    b = best(o.hits)
    if b is not None:
        return f"yes: {b.severity} {b.kind} {b.column} {(b.window_start or '')[:10]}" + (
            f" [{b.slice}]" if b.slice else "") + f": {b.message}"
    w = best(o.weak)
    if w is not None:
        return f"weak: only {w.severity} (< {sc.fault.min_severity}) {w.kind} {w.column}: {w.message}"
    return "no"


def report(o: Outcome, out) -> None:
    sc = o.sc
    p = lambda s="": print(s, file=out, flush=True)  # noqa: E731
    p(f"== {sc.name}: {sc.what}")
    p(f"   rows/window {sc.rows_per_day:,}" + (" per model version" if sc.version_column else "")
      + f"; reference {sc.ref_days} days x {sc.ref_rows_per_day:,}; audited {sc.audit_days} day(s)"
      + (f"; {sc.note}" if sc.note else ""))
    p(f"   expected   {expected_text(sc)}")
    p(f"   detected   {detected_text(o)}")
    if sc.mode == "fault":
        p(f"   hits       {len(o.hits)} (c/e/w/i {sev_counts(o.hits)}); weak {len(o.weak)}; related {len(o.related)}"
          f" ({kinds(o.related)})")
    overall = [f for f in o.false if f.slice is None]
    slices = [f for f in o.false if f.slice is not None]
    p(f"   false alarms  overall c/e/w/i {sev_counts(overall)}   slices c/e/w/i {sev_counts(slices)}"
      f"   by kind: {kinds(o.false)}")
    shown = sorted(o.false, key=lambda f: (-rank(f.severity), f.slice is not None, f.window_start or ""))
    for f in shown[:8]:
        p(f"      {show(f, o)}")
    if len(shown) > 8:
        p(f"      ... {len(shown) - 8} more")
    secs = o.seconds
    p(f"   seconds    {secs.get('total', 0):.1f} (generate {secs.get('generate', 0):.1f}, reference "
      f"{secs.get('reference', 0):.1f}, audit {secs.get('audit', 0):.1f})")
    p()


def summary(outcomes: list[Outcome], out) -> None:
    p = lambda s="": print(s, file=out, flush=True)  # noqa: E731
    p("== summary (false alarms as critical/error/warning/info)")
    head = f"{'scenario':28} {'rows/window':>11}  {'detected':10} {'best finding':44} {'FA overall':>10} " \
           f"{'FA slices':>10} {'seconds':>8}"
    p(head)
    p("-" * len(head))
    for o in outcomes:
        sc = o.sc
        if o.error:
            det, bf = "error", o.error[:44]
        elif sc.mode == "stable":
            counted = [f for f in o.false if o.counted(f)]
            det, bf = ("quiet" if not counted else f"{len(counted)} found"), f"counted c/e/w/i {sev_counts(counted)}"
        elif sc.mode == "tiny":
            det = "quiet" if not o.tiny_drift_quality else "ALARM"
            bf = f"{len(o.tiny_drift_quality)} drift/quality on tiny day"
        else:
            b = best(o.hits) or best(o.weak)
            det = "yes" if o.hits else ("weak" if o.weak else "no")
            bf = f"{b.severity} {b.kind} {b.column}" if b else "-"
        overall = [f for f in o.false if f.slice is None]
        slices = [f for f in o.false if f.slice is not None]
        p(f"{sc.name:28} {sc.rows_per_day:>11,}  {det:10} {bf[:44]:44} {sev_counts(overall):>10} "
          f"{sev_counts(slices):>10} {o.seconds.get('total', 0):>8.1f}")
    faulted = [o for o in outcomes if o.sc.mode == "fault"]
    all_false = [f for o in outcomes for f in o.false]
    p()
    p(f"totals: {sum(bool(o.hits) for o in faulted)}/{len(faulted)} faults detected at the expected severity; "
      f"false alarms overall c/e/w/i {sev_counts([f for f in all_false if f.slice is None])}, slices c/e/w/i "
      f"{sev_counts([f for f in all_false if f.slice is not None])} ({kinds(all_false)}); "
      f"{sum(o.seconds.get('total', 0) for o in outcomes):.0f} s")


def targets(outcomes: list[Outcome], out) -> None:
    p = lambda s="": print(s, file=out, flush=True)  # noqa: E731
    by = {o.sc.name: o for o in outcomes}

    def verdict(name: str, ok: bool | None, detail: str) -> None:
        p(f"  [{'PASS' if ok else 'FAIL' if ok is not None else 'n/a '}] {name}: {detail}")

    p()
    p("== targets")
    required = [o for o in outcomes if o.sc.mode == "fault" and o.sc.required]
    if required:
        # flagged: right kind, column, window (and version/slice), at warning or above
        flagged = [o for o in required if any(rank(f.severity) >= rank("warning") for f in o.hits + o.weak)]
        missed = [o.sc.name for o in required if o not in flagged]
        verdict("every fault flagged with the right kind and column", not missed,
                f"{len(flagged)}/{len(required)}" + (f"; missed: {', '.join(missed)}" if missed else ""))
    else:
        verdict("every fault flagged with the right kind and column", None, "no fault scenario run")
    tiny = by.get("tiny_window")
    verdict("tiny window raises no drift or quality finding",
            None if tiny is None else (tiny.error is None and not tiny.tiny_drift_quality),
            "not run" if tiny is None else tiny.error or f"{len(tiny.tiny_drift_quality)} finding(s)")
    st = by.get("stable_30")
    if st is None:
        verdict("stable_30: 0 critical, 0 error, <= 2 warnings", None, "not run")
    else:
        counted = [f for f in st.false if st.counted(f)]
        c = Counter(f.severity for f in counted)
        ok = st.error is None and c["critical"] == 0 and c["error"] == 0 and c["warning"] <= 2
        verdict(f"stable_30: 0 critical, 0 error, <= 2 warnings (overall + slices >= {MIN_GROUP_ROWS} rows)", ok,
                st.error or f"{c['critical']} critical, {c['error']} error, {c['warning']} warning "
                            f"({st.sc.audit_days} windows)")
    stable = [o for o in outcomes if o.sc.mode == "stable" and o.sc.name != "stable_30"]
    if stable:
        details, good = [], True
        for o in stable:
            c = Counter(f.severity for f in o.false if o.counted(f))
            good &= o.error is None and c["critical"] == 0 and c["error"] == 0 and c["warning"] <= 2
            counts = "/".join(str(c[k]) for k in ("critical", "error", "warning"))
            details.append(f"{o.sc.name} {o.error or counts}")
        verdict("each stable rhythm, rare-positive and four-feature run: 0 critical, 0 error, <= 2 warnings, every "
                "slice", good, "; ".join(details) + " (c/e/w)")
    rhythm_faults = [o for o in outcomes if o.sc.mode == "fault" and o.sc.table == "rhythm"]
    if rhythm_faults:
        missed = [o.sc.name for o in rhythm_faults if not o.hits]
        verdict("faults on the weekly-rhythm table found at the expected severity", not missed,
                f"{len(rhythm_faults) - len(missed)}/{len(rhythm_faults)}" + (f"; missed: {', '.join(missed)}"
                                                                               if missed else ""))
    inside = [(o.sc.name, f) for o in outcomes for f in o.findings if f.inside_band]
    banded = sum(f.band is not None for o in outcomes for f in o.findings)
    verdict("no finding whose value lies inside its own printed noise band", not inside,
            f"{len(inside)} of {banded} findings with a band" + (f"; e.g. {inside[0][0]}: {inside[0][1].message}"
                                                                 if inside else ""))
    parts, oks = [], []
    for name, need in (("mean_shift_0.2sd", "warning"), ("nan_burst", "critical"), ("unit_change", "critical")):
        o = by.get(name)
        if o is None:
            continue
        b = best(o.hits + o.weak)
        ok = o.error is None and b is not None and rank(b.severity) >= rank(need)
        oks.append(ok)
        parts.append(f"{name} {b.severity if b else 'not flagged'}")
    o1 = by.get("mean_shift_0.1sd")
    if o1 is not None:
        b = best(o1.hits + o1.weak)
        parts.append(f"(mean_shift_0.1sd, reported only: {b.severity if b else 'not flagged'})")
    verdict("0.2sd shift at 250k rows flagged; nan_burst and unit_change critical",
            all(oks) if oks else None, "; ".join(parts) or "not run")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller tables (1,500 rows/day, 50k-row big windows, "
                                                         "10 stable windows)")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp folder, removed)")
    ap.add_argument("--raw-contract", action="store_true",
                    help="use infer_contract's output unchanged (it lists only the profiled feature columns)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args(argv)
    all_sc = scenarios(args.quick)
    if args.list:
        for sc in all_sc:
            print(f"{sc.name:28} {sc.what}")
        return 0
    chosen = all_sc
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in {s.name for s in all_sc}]
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)}; --list shows them", file=sys.stderr)
            return 0
        chosen = [s for s in all_sc if s.name in names]
    root = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="spark-audit-detection-"))
    root.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    print(f"detection benchmark: {len(chosen)} scenario(s){' (quick)' if args.quick else ''}, work folder {root}",
          flush=True)
    t0 = time.perf_counter()
    # few shuffle partitions: the grouped passes and result MERGEs are small, and the machine may have 2 cores
    spark = get_spark(app_name="spark-audit-detection-bench", extra_conf={"spark.sql.shuffle.partitions": "2"})
    spark.sparkContext.setLogLevel("ERROR")
    print(f"spark {spark.version} started in {time.perf_counter() - t0:.1f} s\n", flush=True)
    outcomes = []
    try:
        for sc in chosen:
            o = run_scenario(spark, sc, root, log, raw_contract=args.raw_contract)
            report(o, sys.stdout)
            outcomes.append(o)
        summary(outcomes, sys.stdout)
        targets(outcomes, sys.stdout)
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
