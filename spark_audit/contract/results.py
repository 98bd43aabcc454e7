"""Rows of the ``contract_violations`` table, and the measures that read them from aggregates.

A rule kind (:mod:`spark_audit.contract.rules`) names one :class:`Measure`: what its
aggregate value is, how values of disjoint groups merge, and how a value becomes a
:class:`RuleResult`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from pyspark.sql import Column
from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

from spark_audit.contract.model import COUNT_UNITS, TIME_UNITS, Threshold
from spark_audit.findings import worst


@dataclass(frozen=True)
class RuleResult:
    """One row of the ``contract_violations`` table (without run and group keys)."""

    rule_id: str
    rule: str  # kind: required, range, nullValues, rowCount, missingColumn, ...
    column: str | None
    severity: str
    failing_count: int
    total_count: int
    fraction: float
    threshold: str
    passed: bool | None  # None: not evaluated, the column's schema result (missing, type change) says why
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CONTRACT_VIOLATIONS_FIELDS = StructType([
    StructField("rule_id", StringType(), False),
    StructField("rule", StringType(), False),
    StructField("column", StringType(), True),
    StructField("severity", StringType(), False),
    StructField("failing_count", LongType(), False),
    StructField("total_count", LongType(), False),
    StructField("fraction", DoubleType(), False),
    StructField("threshold", StringType(), False),
    StructField("passed", BooleanType(), True),
    StructField("message", StringType(), False),
])

BAD_ROWS_SCHEMA = StructType([
    StructField("rule_id", StringType(), False),
    StructField("column", StringType(), True),
    StructField("row_json", StringType(), False),
])


class GroupedRuleResult(NamedTuple):
    """A result of a grouped pass, with the group's key values (``{}`` when ungrouped)."""

    group: dict[str, Any]
    result: RuleResult


def worst_severity(results: Iterable[RuleResult]) -> str | None:
    """The most severe severity among failing results; None when all pass (or were not evaluated)."""
    return worst(r.severity for r in results if r.passed is False)


def result(r: PlanRule, failing: int, total: int, passed: bool, message: str,
           fraction: float | None = None) -> RuleResult:
    if fraction is None:
        fraction = failing / total if total else 0.0
    return RuleResult(
        rule_id=r.rule_id, rule=r.kind, column=r.column, severity=r.severity,
        failing_count=int(failing), total_count=int(total), fraction=float(fraction),
        threshold=r.threshold_text, passed=bool(passed), message=message,
    )


def skipped(r: PlanRule, total: int, explained: bool = False) -> RuleResult:
    """A rule that could not run: not evaluated (None) when a schema result explains it, else failed."""
    why = f"not evaluated: {r.skip_reason}" + ("; see the column's schema result" if explained else "")
    return RuleResult(rule_id=r.rule_id, rule=r.kind, column=r.column, severity=r.severity, failing_count=0,
                      total_count=int(total), fraction=0.0, threshold=r.threshold_text,
                      passed=None if explained else False, message=why)


def structural(rule_id: str, kind: str, column: str, severity: str, threshold: str, message: str) -> RuleResult:
    """A schema result (missing column, type change, unexpected column): one failing row."""
    return RuleResult(rule_id=rule_id, rule=kind, column=column, severity=severity, failing_count=1,
                      total_count=1, fraction=1.0, threshold=threshold, passed=False, message=message)


# --------------------------------------------------------------------------- measures


def read_count(r: PlanRule, value: Any, total: int, now_s: float) -> RuleResult:
    """Failing rows (or duplicate rows), compared in rows or percent of the group's rows."""
    failing = int(value or 0)
    fraction = failing / total if total else 0.0
    observed = fraction * 100 if r.threshold.unit == "percent" else failing
    passed = r.threshold.check(observed)
    msg = f"{failing} of {total} rows ({fraction * 100:.2f}%) have {r.description}"
    if not passed:
        msg += f"; expected {r.threshold_text}"
    return result(r, failing, total, passed, msg, fraction)


def read_row_count(r: PlanRule, value: Any, total: int, now_s: float) -> RuleResult:
    n = int(value) if value is not None else total
    passed = r.threshold.check(n)
    msg = f"{n} rows" + ("" if passed else f"; expected {r.threshold_text}")
    return result(r, 0 if passed else 1, n, passed, msg)


def read_freshness(r: PlanRule, value: Any, total: int, now_s: float) -> RuleResult:
    """The age of the newest value (epoch microseconds) at ``now_s``, in the threshold's unit."""
    if value is None:
        why = "the table is empty" if total == 0 else f"{r.column!r} has no values"
        return result(r, 1, total, False, f"cannot tell freshness: {why}", 1.0)
    latest = int(value) / 1e6
    age = (now_s - latest) / TIME_UNITS[r.threshold.unit]
    passed = r.threshold.check(age)
    stamp = _dt.datetime.fromtimestamp(latest, _dt.timezone.utc).isoformat()
    msg = f"latest {r.column} is {stamp}, {age:.3g} {r.threshold.unit} old"
    if not passed:
        msg += f"; expected {r.threshold_text}"
    return result(r, 0 if passed else 1, total, passed, msg, 0.0 if passed else 1.0)


def read_value(r: PlanRule, value: Any, total: int, now_s: float = 0.0) -> RuleResult:
    """A query's value against the rule's operator."""
    if value is None:
        return result(r, 1, total, False, f"the query gave no value; expected {r.threshold_text}", 1.0)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return result(r, 1, total, False, f"the query gave {value!r}, not a number; expected {r.threshold_text}",
                      1.0)
    passed = r.threshold.check(v)
    msg = f"the query gave {value}" + ("" if passed else f"; expected {r.threshold_text}")
    return result(r, 0 if passed else 1, total, passed, msg, 0.0 if passed else 1.0)


@dataclass(frozen=True)
class Measure:
    """What a compiled rule's value is.

    ``merge`` combines the values of disjoint groups (None: the value is not part of the
    shared aggregation); ``read`` turns a value into a result; ``units`` are the units its
    threshold may be in (the first is the default).
    """

    name: str
    subject: Callable[[Threshold], str]
    merge: Callable[[list[Any]], Any] | None
    read: Callable[[PlanRule, Any, int, float], RuleResult]
    units: tuple[str, ...] = COUNT_UNITS


MEASURES: dict[str, Measure] = {m.name: m for m in (
    # count_if(condition): the rows breaking the rule
    Measure("count", lambda t: "failing %" if t.unit == "percent" else "failing rows", sum, read_count),
    # count(1)
    Measure("rowCount", lambda t: "row count", sum, read_row_count, units=("rows",)),
    # unix_micros(max(column)): the newest value
    Measure("freshness", lambda t: "age", max, read_freshness, units=tuple(TIME_UNITS)),
    # non-null keys minus distinct keys, in a separate grouped pass (uniqueness_results)
    Measure("duplicates", lambda t: "duplicate %" if t.unit == "percent" else "duplicate rows", None, read_count),
    # the one value of a type: sql query, run per window (spark_audit.contract.sql.value_results)
    Measure("value", lambda t: "query value", None, read_value),
)}


@dataclass(frozen=True, eq=False)
class PlanRule:
    """One compiled rule. ``measure`` (a key of MEASURES) says what its aggregate value is.

    ``count``: failing rows (``count_if(condition)``); ``rowCount``: rows;
    ``freshness``: ``unix_micros(max(column))``; ``duplicates``: computed by
    :func:`uniqueness_results`, not part of :attr:`ContractPlan.exprs`.
    """

    rule_id: str
    kind: str
    column: str | None
    severity: str
    threshold: Threshold
    measure: str
    alias: str
    description: str
    path: str
    condition: Column | None = None
    expr: Column | None = None
    key_columns: tuple[str, ...] = ()
    skip_reason: str | None = None
    query: str | None = None  # a value query (measure ``value``), {object} still to bind

    @property
    def threshold_text(self) -> str:
        return self.threshold.describe(MEASURES[self.measure].subject(self.threshold))
