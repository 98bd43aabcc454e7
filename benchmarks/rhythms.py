"""Tables of the shapes real production tables have, for ``detection.py``: a weekly rhythm, a rare positive
class, few features. Generated with Spark (seeded ``rand``/``randn``, fixed partitions), like the
benchmark's other table, but unlike it in every column:

* ``rhythm``: card transactions. A weekday has ``rows_per_day`` rows, a weekend day about 60 % of them
  (each row kept with probability 0.6), with later hours, larger amounts, another merchant mix and more
  mobile traffic; ``device`` is the slice. The fraud label depends on the amount, the hour (night) and
  the merchant, so the weekend's fraud rate, and with it the model's quality, differ too.
* ``rare``: the same columns with no weekly rhythm, a fraud rate of about 3 % and a cut-off well above it,
  so precision, recall and F1 rest on a handful of rows per window.
* ``four``: four numeric features (the score one of them) whose correlations leave no direction for a
  principal-component check to drop.

Helper columns start with ``_``; ``finish`` drops them. Day 0 is ``detection.START`` (a Thursday).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

PARTITIONS = 4
START_WEEKDAY = 3  # 2026-01-01 is a Thursday (Monday = 0)
RHYTHM_NUMERIC = ["hour_of_day", "amount", "account_age_days", "n_prev_tx_7d"]
RHYTHM_FEATURES = [*RHYTHM_NUMERIC, {"name": "merchant", "kind": "categorical"}, "score"]
FOUR_FEATURES = ["x1", "x2", "x3", "score"]


def sigmoid(x: Column) -> Column:
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-x))


def _base(spark: SparkSession, first_day: int, n_days: int, rows_per_day: int, seed: int, uniforms: int,
          normals: int) -> DataFrame:
    n = n_days * rows_per_day
    s = seed * 1000
    return spark.range(0, n, 1, PARTITIONS).select(
        (F.floor(F.col("id") / rows_per_day) + first_day).cast("int").alias("_day"),
        (F.col("id") % rows_per_day).cast("int").alias("_idx"),
        *[F.rand(s + i).alias(f"_u{i}") for i in range(1, uniforms + 1)],
        *[F.randn(s + 100 + i).alias(f"_z{i}") for i in range(1, normals + 1)],
    )


def weekend(day: Column) -> Column:
    """Saturday or Sunday for a day index from the benchmark's start."""
    return ((day + START_WEEKDAY) % 7) >= 5


def _pick(u: Column, probs: list[tuple[str, float]]) -> Column:
    out, acc = None, 0.0
    for value, p in probs[:-1]:
        acc += p
        out = (F.when(u < acc, value) if out is None else out.when(u < acc, value))
    return out.otherwise(probs[-1][0])


def generate_rhythm(spark: SparkSession, first_day: int, n_days: int, rows_per_day: int, seed: int, *,
                    weekly: bool = True, intercept: float = -2.3, cutoff: float = 0.5,
                    concept_from: int | None = None) -> DataFrame:
    """Card transactions (see the module's doc). ``intercept`` sets the fraud rate (-2.3: about 15 %,
    -4.1: about 3 %); ``concept_from``: from that day on the label's dependence on the amount flips sign."""
    df = _base(spark, first_day, n_days, rows_per_day, seed, 9, 4)
    u = lambda i: F.col(f"_u{i}")  # noqa: E731
    z = lambda i: F.col(f"_z{i}")  # noqa: E731
    we = weekend(F.col("_day")) if weekly else F.lit(False)
    df = df.where(~we | (u(9) < 0.6)).withColumn("_we", we)
    w = F.col("_we")
    hour = F.when(w, F.lit(19.0) + 3.5 * z(1)).otherwise(F.lit(13.0) + 3.5 * z(1))
    weekday_mix = [("grocery", .30), ("fuel", .20), ("online", .25), ("restaurant", .15), ("travel", .10)]
    weekend_mix = [("grocery", .25), ("fuel", .10), ("online", .20), ("restaurant", .30), ("travel", .15)]
    df = df.select(
        "*",
        F.timestamp_seconds(F.lit(1767225600) + F.col("_day").cast("long") * 86400
                            + (u(1) * 86399).cast("long")).alias("event_ts"),
        F.least(F.greatest(F.round(hour), F.lit(0.0)), F.lit(23.0)).cast("int").alias("hour_of_day"),
        F.round(F.exp(F.when(w, F.lit(3.8)).otherwise(F.lit(3.5)) + 0.9 * z(2)), 2).alias("amount"),
        F.round(F.lit(-400.0) * F.log(F.lit(1.0) - u(2)), 0).alias("account_age_days"),
        F.floor(F.lit(-3.0) * F.log(F.lit(1.0) - u(3))).cast("int").alias("n_prev_tx_7d"),
        F.when(w, _pick(u(4), weekend_mix)).otherwise(_pick(u(4), weekday_mix)).alias("merchant"),
        F.when(w, _pick(u(5), [("mobile", .65), ("web", .25), ("pos", .10)]))
        .otherwise(_pick(u(5), [("mobile", .55), ("web", .35), ("pos", .10)])).alias("device"),
    )
    amt = F.log(F.col("amount")) - 3.6
    night = F.when((F.col("hour_of_day") >= 22) | (F.col("hour_of_day") <= 4), 1.0).otherwise(0.0)
    merchant_term = (F.when(F.col("merchant") == "online", 0.6).when(F.col("merchant") == "travel", 0.4)
                     .when(F.col("merchant") == "fuel", -0.2).otherwise(0.0))
    young = F.when(F.col("account_age_days") < 60, 0.7).otherwise(0.0)
    amt_coef = F.lit(0.8) if concept_from is None else F.when(F.col("_day") >= concept_from, -0.8).otherwise(0.8)
    true_logit = F.lit(intercept) + amt_coef * amt + 0.6 * night + merchant_term + young + 0.1 * F.col("n_prev_tx_7d")
    # the model: the right shape, a little off, with noise of its own
    fit_logit = (F.lit(intercept) + 0.7 * amt + 0.5 * night + 0.8 * merchant_term + 0.6 * young
                 + 0.08 * F.col("n_prev_tx_7d") + 0.3 * z(3))
    return df.select("*", F.round(sigmoid(fit_logit), 4).alias("score"),
                     (u(6) < sigmoid(true_logit)).cast("int").alias("label")) \
        .withColumn("prediction", (F.col("score") >= cutoff).cast("int"))


def generate_four(spark: SparkSession, first_day: int, n_days: int, rows_per_day: int, seed: int) -> DataFrame:
    """Four numeric features (``x1``..``x3`` and the score), about 0.3 correlated, a 20 % positive class."""
    df = _base(spark, first_day, n_days, rows_per_day, seed, 3, 4)
    z = lambda i: F.col(f"_z{i}")  # noqa: E731
    df = df.select(
        "*",
        F.timestamp_seconds(F.lit(1767225600) + F.col("_day").cast("long") * 86400
                            + (F.col("_u1") * 86399).cast("long")).alias("event_ts"),
        F.round(z(1), 4).alias("x1"),
        F.round(0.3 * z(1) + 0.95 * z(2), 4).alias("x2"),
        F.round(F.lit(10.0) + 2.0 * (0.3 * z(2) + 0.95 * z(3)), 4).alias("x3"),
        F.when(F.col("_u2") < 0.5, "a").otherwise("b").alias("segment"),
    )
    logit = F.lit(-1.6) + 0.8 * F.col("x1") - 0.5 * F.col("x2") + 0.2 * (F.col("x3") - 10.0)
    return df.select("*", F.round(sigmoid(logit + 0.4 * z(4)), 4).alias("score"),
                     (F.col("_u3") < sigmoid(logit)).cast("int").alias("label")) \
        .withColumn("prediction", (F.col("score") >= 0.5).cast("int"))


def finish(df: DataFrame) -> DataFrame:
    """Drop the helper columns."""
    return df.select(*[c for c in df.columns if not c.startswith("_")])
