"""The gate's one scan: both versions' weighted quality states per (slice, bootstrap replicate).

Every evaluation row is repeated once per bootstrap replicate (replicate 0 is the data as it is) with a
Poisson(1) weight, and the quality states of both versions (``spark_audit.decay.metrics``, weighted) are
aggregated per (slice, replicate) in one ``groupBy(...).agg(...)``: no UDF, no second read. The weight of
a row in a replicate is a function of its key (``gate.key``) and the replicate, so the champion's row and
the candidate's row of the same example carry the same weight: the bootstrap is paired, which is what
makes the difference of two correlated metrics precise. Without a key (each version in its own columns of
one row) the weight is ``rand(seed)`` per row and replicate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_audit.decay.metrics import merge_states, quality_exprs
from spark_audit.errors import DataError, SpecError
from spark_audit.names import col as _col
from spark_audit.session import codegen_fields
from spark_audit.spec import AuditSpec, QualitySpec

REP, WEIGHT = "__gate_rep", "__gate_w"
CHAMPION, CANDIDATE = "a__", "b__"
PAIRING = "k__"
# Poisson(1) cumulative probabilities P(X <= k), k = 0..12 (P(X > 12) < 1e-10)
POISSON_CDF = tuple(float(sum(math.exp(-1.0) / math.factorial(j) for j in range(k + 1))) for k in range(13))


def poisson_weight(u: Column) -> Column:
    """A Poisson(1) draw from a uniform ``u`` in [0, 1), by the inverse CDF: the number of k with
    P(X <= k) <= u. A plain expression (thirteen comparisons), code-generated, Spark Connect safe."""
    return sum((F.when(u >= F.lit(c), F.lit(1)).otherwise(F.lit(0)) for c in POISSON_CDF), F.lit(0))


def uniform_from_hash(columns: list[Column]) -> Column:
    """A uniform in [0, 1) from the 64-bit xxhash of ``columns`` (53 bits: exact in a double)."""
    return F.pmod(F.xxhash64(*columns), F.lit(2**53)).cast("double") / F.lit(float(2**53))


def replicated(df: DataFrame, key: tuple[str, ...], replicates: int, seed: int) -> DataFrame:
    """``df`` with every row repeated for replicates 0..``replicates`` (``REP``) and its weight (``WEIGHT``):
    1 in replicate 0, Poisson(1) in the others, the same for every row of the same ``key``."""
    out = df.select("*", F.explode(F.sequence(F.lit(0), F.lit(int(replicates)))).alias(REP))
    if key:
        u = uniform_from_hash([*(_col(k) for k in key), F.col(REP), F.lit(int(seed))])
    else:
        u = F.rand(int(seed))
    return out.withColumn(WEIGHT, F.when(F.col(REP) == 0, F.lit(1)).otherwise(poisson_weight(u)))


@dataclass(frozen=True)
class Side:
    """One version in the scan: its quality columns, its rows (``rows``: a condition, None = every row)."""

    version: str
    measure: QualitySpec
    prefix: str
    rows: Column | None = None

    def weight(self) -> Column:
        w = F.col(WEIGHT)
        return w if self.rows is None else F.when(self.rows, w).otherwise(F.lit(0))


def sides(spec: AuditSpec, candidate: str, champion: str) -> tuple[Side, Side]:
    """The champion's and the candidate's side: a row per version (``model.version_column``), or each
    version's own columns (``gate.columns``) on shared rows."""
    cfg, q = spec.gate, spec.quality
    assert cfg is not None and q is not None
    out = []
    for version, prefix in ((champion, CHAMPION), (candidate, CANDIDATE)):
        if cfg.columns:
            vc = cfg.version_columns(version)
            if vc is None:
                raise SpecError(f"gate.columns names no columns for model version {version}; it has "
                                f"{[c.version for c in cfg.columns]}", file=spec.file, key="gate.columns")
            measure = QualitySpec(task=q.measure.task, label=q.measure.label, prediction=vc.prediction,
                                  score=vc.score, positive=q.measure.positive, threshold=q.measure.threshold,
                                  score_bins=q.measure.score_bins)
            out.append(Side(version, measure, prefix))
        else:
            rows = _col(spec.model.version_column).cast("string") == F.lit(str(version))
            out.append(Side(version, q.measure, prefix, rows))
    return out[0], out[1]


def gate_exprs(champion: Side, candidate: Side, key: tuple[str, ...]) -> list[Column]:
    """Both versions' weighted quality states and, for a row per version, each version's row count and a
    fingerprint of its keys in replicate 0 (the pairing check)."""
    exprs = [*quality_exprs(champion.measure, champion.prefix, champion.weight()),
             *quality_exprs(candidate.measure, candidate.prefix, candidate.weight())]
    if champion.rows is not None and key:
        first = F.col(REP) == 0
        fingerprint = F.pmod(F.xxhash64(*(_col(k) for k in key)), F.lit(2147483647))
        for side in (champion, candidate):
            exprs.append(F.sum(F.when(first & side.rows, F.lit(1)).otherwise(F.lit(0))).cast("long")
                         .alias(f"{PAIRING}{side.prefix}rows"))
            exprs.append(F.sum(F.when(first & side.rows, fingerprint).otherwise(F.lit(0))).cast("long")
                         .alias(f"{PAIRING}{side.prefix}keys"))
    return exprs


def _slice_label(slices: tuple[str, ...], row: dict[str, Any]) -> str:
    return ",".join(f"{s}={row[s]}" for s in slices)


def scan(df: DataFrame, spec: AuditSpec, champion: Side, candidate: Side) -> dict[tuple[str | None, int], dict]:
    """The one aggregation: per (slice label, replicate) the aggregated row (both versions' states).
    All rows (slice None) are the merge of the slices, per replicate: no second scan."""
    cfg = spec.gate
    assert cfg is not None
    needed = {spec.quality.measure.label, *spec.slices, *cfg.key}
    for side in (champion, candidate):
        needed |= {c for c in (side.measure.prediction, side.measure.score) if c}
    if spec.model.version_column and not cfg.columns:
        needed.add(spec.model.version_column)
    missing = sorted(c for c in needed if c not in df.columns)
    if missing:
        raise DataError(f"the evaluation rows of {spec.source.display!r} lack column(s) {missing}; "
                        f"they have {df.columns}")
    rows = df.select(*(_col(c) for c in sorted(needed)))
    if champion.rows is not None:
        rows = rows.where(champion.rows | candidate.rows)
    else:  # one row, both versions: compare them where both predicted, so both see the same rows
        for side in (champion, candidate):
            for c in (side.measure.prediction, side.measure.score):
                if c:
                    rows = rows.where(_col(c).isNotNull())
    reps = replicated(rows, cfg.key, cfg.replicates, cfg.seed)
    exprs = gate_exprs(champion, candidate, cfg.key)
    grouped = reps.groupBy(*(_col(s) for s in spec.slices), F.col(REP)).agg(*exprs)
    with codegen_fields(df.sparkSession, len(exprs) + len(spec.slices) + 1):
        collected = grouped.collect()
    out: dict[tuple[str | None, int], dict] = {}
    for r in collected:
        d = r.asDict()
        label = _slice_label(spec.slices, d) if spec.slices else None
        state = {k: v for k, v in d.items() if k not in spec.slices and k != REP}
        out[(label, int(d[REP]))] = state
        if spec.slices:
            out[(None, int(d[REP]))] = merge_states(out.get((None, int(d[REP])), {}), state)
    return out


def check_pairing(states: dict[tuple[str | None, int], dict], champion: Side, candidate: Side) -> int:
    """The rows each version has (replicate 0, all rows); a ``DataError`` when the versions were not scored
    on the same rows (different counts, or different keys by the fingerprint)."""
    whole = states.get((None, 0), {})
    a_rows, b_rows = whole.get(f"{PAIRING}{CHAMPION}rows"), whole.get(f"{PAIRING}{CANDIDATE}rows")
    if a_rows is None:
        return -1
    if not a_rows or not b_rows:
        missing = [s.version for s, n in ((champion, a_rows), (candidate, b_rows)) if not n]
        raise DataError(f"no evaluation rows of model version(s) {missing}: the gate needs both versions' "
                        "predictions on the same rows")
    if a_rows != b_rows or whole.get(f"{PAIRING}{CHAMPION}keys") != whole.get(f"{PAIRING}{CANDIDATE}keys"):
        raise DataError(f"the candidate ({candidate.version}: {b_rows} rows) and the champion "
                        f"({champion.version}: {a_rows} rows) were not scored on the same rows (their keys "
                        "differ): a paired comparison needs the same evaluation rows for both")
    return int(a_rows)
