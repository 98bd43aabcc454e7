"""Compile a :class:`DataContract` into aggregate expressions and judge their values.

The plan's :attr:`ContractPlan.exprs` go into the same
``groupBy(window, slice, model_version).agg(...)`` as the column profile: one
expression per row-level rule, aliased ``prefix + safe(rule_id)`` (``c__age_range``),
whose value is the number of failing rows; ``rowCount`` rules give ``count(1)`` and
``freshness`` rules ``unix_micros(max(ts))``. :meth:`ContractPlan.evaluate` turns one
aggregated row into :class:`RuleResult` rows of the ``contract_violations`` table.

Only uniqueness needs grouping work: :func:`uniqueness_results` is one extra
grouped pass, run only when the contract marks something unique.

Everything is DataFrame API and built-in SQL functions (Spark Connect safe). Column
names are quoted with backticks and values passed with ``F.lit``; the only SQL text
is the user's own ``type: sql`` query, parsed with ``F.expr``.

Rule kinds (the ``rule`` column): ``required, nullValues, missingValues,
invalidValues, allowedValues, pattern, length, range, specialValue, nanValues,
infValues, sql, rowCount, freshness, duplicateValues``, and from
:meth:`ContractPlan.schema_results` ``missingColumn`` (error), ``typeChange`` (error)
and ``unexpectedColumn`` (info, or the schema object's ``unexpectedColumns``).
For ``rowCount`` and ``freshness`` ``failing_count`` is 1 when the table fails and
0 when it passes.

A rule that cannot run on this table is left out of ``exprs``, with the reason in
``message``. When its column is missing or no longer has the contract's type, the
schema result (once per audit) is the finding: the rule comes back *not evaluated*,
``passed`` None, in every group, and callers raise no finding for it. Any other rule
that cannot run (a ``sql`` query the table cannot answer, a freshness column that is
not a timestamp) comes back failed: nothing else reports it.

Rule ids are the ``id`` given in the contract, else generated as
``<column>.<kind>`` (``age.range``, ``plan.allowedValues``, ``age.specialValue[-1]``,
``country.nullValues``) or ``<schema object>.<metric>`` for table rules; a clash
gets a ``_2`` suffix.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import reduce
from typing import Any, NamedTuple

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    CharType,
    DataType,
    DateType,
    DoubleType,
    FloatType,
    IntegralType,
    LongType,
    NumericType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
    VarcharType,
)
from pyspark.sql.window import Window

from spark_audit.contract.model import (
    TIME_UNITS,
    ZERO_ROWS,
    DataContract,
    Property,
    QualityRule,
    SchemaObject,
    Threshold,
    logical_type_of,
    logical_types_compatible,
    normalise_physical_type,
    parse_iso_datetime,
)
from spark_audit.errors import SpecError
from spark_audit.findings import worst
from spark_audit.names import col as _col
from spark_audit.names import quote_name

__all__ = [
    "BAD_ROWS_SCHEMA",
    "CONTRACT_VIOLATIONS_FIELDS",
    "ContractPlan",
    "GroupedRuleResult",
    "PlanRule",
    "RuleResult",
    "check_dataframe",
    "compile_contract",
    "quote_name",
    "sample_bad_rows",
    "uniqueness_results",
    "worst_severity",
]



# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- helpers




def _all(conds: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a & b, conds)


def _any(conds: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a | b, conds)


class _Skip(Exception):
    """A rule that cannot run on this table (missing column, wrong type)."""


_STRING_TYPES = (StringType, VarcharType, CharType)
_TIME_TYPES = (DateType, TimestampType, TimestampNTZType)
_ATOMIC_VALUE_TYPES = (*_STRING_TYPES, NumericType, BooleanType, *_TIME_TYPES)


def _lit(value: Any, dt: DataType) -> Column:
    """``value`` as a literal of column type ``dt``; _Skip when it does not fit."""
    if isinstance(dt, _STRING_TYPES):
        if isinstance(value, str):
            return F.lit(value)
    elif isinstance(dt, NumericType):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(dt, IntegralType) and isinstance(value, float) and value.is_integer():
                value = int(value)
            return F.lit(value)
    elif isinstance(dt, BooleanType):
        if isinstance(value, bool):
            return F.lit(value)
    elif isinstance(dt, _TIME_TYPES):
        text = value.isoformat() if isinstance(value, (_dt.date, _dt.datetime)) else value
        if isinstance(text, str):
            try:
                parse_iso_datetime(text)
            except ValueError:
                pass
            else:
                return F.lit(text).cast(dt)
    else:
        raise _Skip(f"values cannot be compared on a {dt.simpleString()} column")
    raise _Skip(f"value {value!r} does not fit column type {dt.simpleString()}")


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v) if isinstance(v, str) else str(v)


def _now_seconds(now: Any) -> float:
    if now is None:
        return time.time()
    if isinstance(now, _dt.datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=_dt.timezone.utc)
        return now.timestamp()
    if isinstance(now, (int, float)) and not isinstance(now, bool):
        return float(now)
    raise TypeError(f"now must be a datetime or epoch seconds, got {now!r}")


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True, eq=False)
class PlanRule:
    """One compiled rule. ``measure`` says what its aggregate value is.

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

    @property
    def threshold_text(self) -> str:
        if self.measure == "rowCount":
            subject = "row count"
        elif self.measure == "freshness":
            subject = "age"
        elif self.measure == "duplicates":
            subject = "duplicate %" if self.threshold.unit == "percent" else "duplicate rows"
        else:
            subject = "failing %" if self.threshold.unit == "percent" else "failing rows"
        return self.threshold.describe(subject)


class ContractPlan:
    """A contract compiled against one table schema. Build with :func:`compile_contract`."""

    def __init__(self, contract: DataContract, obj: SchemaObject, schema: StructType,
                 rules: Sequence[PlanRule], now: Any = None):
        self.contract = contract
        self.object = obj
        self.schema = schema
        self.rules: tuple[PlanRule, ...] = tuple(rules)
        self.now = now
        self._by_id = {r.rule_id: r for r in self.rules}
        lookup = _FieldLookup(schema)
        # columns with a missingColumn or typeChange result: their rules that cannot run are not evaluated
        self.broken_columns = frozenset(p.name.lower() for p in obj.properties
                                        if _schema_problem(p, lookup.get(p.name)) is not None)

    def not_evaluated(self, r: PlanRule) -> bool:
        """Whether ``r`` cannot run because of a column the schema results already report."""
        cols = r.key_columns or ((r.column,) if r.column else ())
        return r.skip_reason is not None and any(c.lower() in self.broken_columns for c in cols)

    @property
    def exprs(self) -> list[Column]:
        """Aggregate expressions for the shared ``groupBy(...).agg(...)``."""
        return [r.expr for r in self.rules if r.expr is not None and r.skip_reason is None]

    @property
    def uniqueness_rules(self) -> tuple[PlanRule, ...]:
        return tuple(r for r in self.rules if r.measure == "duplicates")

    @property
    def has_uniqueness(self) -> bool:
        """Whether :func:`uniqueness_results` has anything to do."""
        return bool(self.uniqueness_rules)

    def rule(self, rule_id: str) -> PlanRule:
        try:
            return self._by_id[rule_id]
        except KeyError:
            raise KeyError(f"no rule {rule_id!r}; have {sorted(self._by_id)}") from None

    # ---- schema checks
    def schema_results(self, schema: StructType | None = None, *,
                       ignore: Iterable[str] = ()) -> list[RuleResult]:
        """Failing results for missing columns, type changes and unexpected columns.

        ``ignore`` names columns that may be present without being in the contract
        (e.g. columns the audit adds). Only problems are returned.
        """
        schema = schema if schema is not None else self.schema
        lookup = _FieldLookup(schema)
        ignored = set(ignore)
        out: list[RuleResult] = []
        known: set[str] = set()
        for prop in self.object.properties:
            f = lookup.get(prop.name)
            if f is not None:
                known.add(f.name)
            problem = _schema_problem(prop, f)
            if problem is not None:
                kind, expected, message = problem
                out.append(_structural(f"{prop.name}.{kind}", kind, prop.name, "error", expected, message))
        severity = self.object.unexpected_columns
        for f in schema.fields:
            if f.name not in known and f.name not in ignored and severity != "ignore":
                out.append(_structural(f"{f.name}.unexpectedColumn", "unexpectedColumn", f.name, severity,
                                       "no columns beyond the contract",
                                       f"column {f.name!r} ({f.dataType.simpleString()}) is not in the contract"))
        return out

    # ---- evaluation
    def evaluate(self, row: Mapping[str, Any] | Any, *, total_rows: int, now: Any = None) -> list[RuleResult]:
        """Pass/fail results for every non-uniqueness rule from one aggregated row.

        ``row`` is a ``Row`` or mapping holding (at least) the plan's aliases;
        ``total_rows`` the group's row count. Rules that could not be compiled come
        back with the reason: not evaluated (``passed`` None) when their column is
        missing or changed type (:meth:`schema_results` reports that once), else failed.
        """
        data = row.asDict() if hasattr(row, "asDict") else row
        total = int(total_rows or 0)
        now_s = _now_seconds(now if now is not None else self.now)
        out: list[RuleResult] = []
        for r in self.rules:
            if r.measure == "duplicates":
                continue
            if r.skip_reason is not None:
                out.append(_skipped(r, total, self.not_evaluated(r)))
                continue
            if r.alias not in data:
                raise KeyError(f"the aggregated row has no {r.alias!r}: put plan.exprs into the aggregation")
            value = data[r.alias]
            if r.measure == "count":
                out.append(_count_result(r, value, total))
            elif r.measure == "rowCount":
                n = int(value) if value is not None else total
                passed = r.threshold.check(n)
                msg = f"{n} rows" + ("" if passed else f"; expected {r.threshold_text}")
                out.append(_result(r, 0 if passed else 1, n, passed, msg))
            elif r.measure == "freshness":
                out.append(_freshness_result(r, value, total, now_s))
            else:  # pragma: no cover - measures are fixed above
                raise ValueError(f"unknown measure {r.measure}")
        return out

    def merge_rows(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Combine aggregated rows of disjoint groups (e.g. slices) into the row of their union.

        Counts add; freshness keeps the latest timestamp. So a window's contract
        result is evaluated from its slices without rescanning.
        """
        rows = list(rows)
        out: dict[str, Any] = {}
        for r in self.rules:
            if r.expr is None or r.skip_reason is not None:
                continue
            values = [row[r.alias] for row in rows if row.get(r.alias) is not None]
            if not values:
                out[r.alias] = None
            else:
                out[r.alias] = max(values) if r.measure == "freshness" else sum(values)
        return out

    def failing_condition(self, rule_id: str) -> Column:
        """Row-level boolean, true for a row that breaks the rule (for sampling)."""
        r = self.rule(rule_id)
        if r.skip_reason is not None:
            raise ValueError(f"rule {rule_id!r} was not compiled: {r.skip_reason}")
        if r.measure == "count" and r.condition is not None:
            return r.condition
        if r.measure == "duplicates":
            keys = [_col(k) for k in r.key_columns]
            return _all([k.isNotNull() for k in keys]) & (F.count(F.lit(1)).over(Window.partitionBy(*keys)) > 1)
        raise ValueError(f"rule {rule_id!r} ({r.kind}) is a table-level metric with no bad rows")


def _result(r: PlanRule, failing: int, total: int, passed: bool, message: str,
            fraction: float | None = None) -> RuleResult:
    if fraction is None:
        fraction = failing / total if total else 0.0
    return RuleResult(
        rule_id=r.rule_id, rule=r.kind, column=r.column, severity=r.severity,
        failing_count=int(failing), total_count=int(total), fraction=float(fraction),
        threshold=r.threshold_text, passed=bool(passed), message=message,
    )


def tolerates_share(t) -> bool:
    """An upper bound on a share of rows that is above zero (a tolerance, not a ban)."""
    return (t is not None and t.unit == "percent" and t.operator in ("mustBeLessOrEqualTo", "mustBeLessThan")
            and isinstance(t.value, (int, float)) and float(t.value) > 0)


def _count_result(r: PlanRule, value: Any, total: int) -> RuleResult:
    failing = int(value or 0)
    fraction = failing / total if total else 0.0
    observed = fraction * 100 if r.threshold.unit == "percent" else failing
    passed = r.threshold.check(observed)
    msg = f"{failing} of {total} rows ({fraction * 100:.2f}%) have {r.description}"
    if not passed:
        msg += f"; expected {r.threshold_text}"
    return _result(r, failing, total, passed, msg, fraction)


def _freshness_result(r: PlanRule, value: Any, total: int, now_s: float) -> RuleResult:
    if value is None:
        why = "the table is empty" if total == 0 else f"{r.column!r} has no values"
        return _result(r, 1, total, False, f"cannot tell freshness: {why}", 1.0)
    latest = int(value) / 1e6
    age = (now_s - latest) / TIME_UNITS[r.threshold.unit]
    passed = r.threshold.check(age)
    stamp = _dt.datetime.fromtimestamp(latest, _dt.timezone.utc).isoformat()
    msg = f"latest {r.column} is {stamp}, {age:.3g} {r.threshold.unit} old"
    if not passed:
        msg += f"; expected {r.threshold_text}"
    return _result(r, 0 if passed else 1, total, passed, msg, 0.0 if passed else 1.0)


def _skipped(r: PlanRule, total: int, explained: bool = False) -> RuleResult:
    """A rule that could not run: not evaluated (None) when a schema result explains it, else failed."""
    why = f"not evaluated: {r.skip_reason}" + ("; see the column's schema result" if explained else "")
    return RuleResult(rule_id=r.rule_id, rule=r.kind, column=r.column, severity=r.severity, failing_count=0,
                      total_count=int(total), fraction=0.0, threshold=r.threshold_text,
                      passed=None if explained else False, message=why)


def _schema_problem(prop: Property, f: StructField | None) -> tuple[str, str, str] | None:
    """(kind, expected, message) when ``prop``'s column is missing or has another type; else None."""
    if f is None:
        return "missingColumn", "column present", f"column {prop.name!r} is missing from the table"
    actual = f.dataType.simpleString()
    problems = []
    if not logical_types_compatible(prop.logical_type, actual):
        problems.append(f"logicalType {prop.logical_type} expected, the column is {actual} "
                        f"({logical_type_of(actual)})")
    if prop.physical_type and normalise_physical_type(prop.physical_type) != normalise_physical_type(actual):
        problems.append(f"physicalType {prop.physical_type} expected, the column is {actual}")
    if not problems:
        return None
    expected = f"logicalType {prop.logical_type}" + (f", physicalType {prop.physical_type}" if prop.physical_type
                                                      else "")
    return "typeChange", expected, f"column {prop.name!r}: " + "; ".join(problems)


def _structural(rule_id: str, kind: str, column: str, severity: str, threshold: str, message: str) -> RuleResult:
    return RuleResult(rule_id=rule_id, rule=kind, column=column, severity=severity, failing_count=1,
                      total_count=1, fraction=1.0, threshold=threshold, passed=False, message=message)


class _FieldLookup:
    """Find a column by exact name, else by case-insensitive name (Spark's default)."""

    def __init__(self, schema: StructType):
        self.exact = {f.name: f for f in schema.fields}
        lower: dict[str, list[StructField]] = {}
        for f in schema.fields:
            lower.setdefault(f.name.lower(), []).append(f)
        self.lower = lower

    def get(self, name: str) -> StructField | None:
        if name in self.exact:
            return self.exact[name]
        matches = self.lower.get(name.lower(), [])
        return matches[0] if len(matches) == 1 else None


# --------------------------------------------------------------------------- compile


def compile_contract(
    contract: DataContract,
    schema: StructType,
    *,
    prefix: str = "c__",
    now: Any = None,
    timestamp_column: str | None = None,
    object_name: str | None = None,
) -> ContractPlan:
    """Compile ``contract`` against a table ``schema`` into a :class:`ContractPlan`.

    ``now`` (datetime, naive = UTC, or epoch seconds; default: the time of
    evaluation) is the reference for freshness; ``timestamp_column`` is the
    column a freshness rule checks when it names none. ``object_name`` picks the
    schema object when the contract has several. Rules that cannot run on this
    schema are kept, skipped from ``exprs`` and reported failed by ``evaluate``.
    Raises SpecError for contract mistakes only visible now (unparsable or
    non-boolean sql query, freshness without a column).
    """
    obj = contract.schema_object(object_name)
    builder = _Builder(contract, schema, prefix, timestamp_column)
    for prop in obj.properties:
        builder.property(prop)
    for rule in obj.quality:
        builder.table_rule(obj, rule)
    return ContractPlan(contract, obj, schema, builder.rules, now=now)


class _Builder:
    def __init__(self, contract: DataContract, schema: StructType, prefix: str, timestamp_column: str | None):
        self.contract = contract
        self.schema = schema
        self.prefix = prefix
        self.timestamp_column = timestamp_column
        self.fields = _FieldLookup(schema)
        self.rules: list[PlanRule] = []
        self.ids: set[str] = {
            q.id for o in contract.schema for q in (*o.quality, *(q for p in o.properties for q in p.quality))
            if q.id is not None
        }
        self.aliases: set[str] = set()

    # ---- bookkeeping
    def _id(self, explicit: str | None, base: str) -> str:
        if explicit is not None:
            return explicit
        rid, n = base, 2
        while rid in self.ids:
            rid, n = f"{base}_{n}", n + 1
        self.ids.add(rid)
        return rid

    def _alias(self, rule_id: str) -> str:
        base = self.prefix + re.sub(r"[^0-9A-Za-z_]", "_", rule_id)
        alias, n = base, 2
        while alias in self.aliases:
            alias, n = f"{base}_{n}", n + 1
        self.aliases.add(alias)
        return alias

    def add(self, *, rule_id: str, kind: str, column: str | None, severity: str, threshold: Threshold,
            measure: str, description: str, path: str, build: Any = None,
            key_columns: tuple[str, ...] = ()) -> None:
        """Add a rule; ``build()`` returns its condition (count) or aggregate, or raises _Skip."""
        alias = self._alias(rule_id)
        condition = expr = None
        skip = None
        try:
            if measure == "duplicates":
                missing = [k for k in key_columns if self.fields.get(k) is None]
                if missing:
                    raise _Skip(f"column(s) {', '.join(map(repr, missing))} missing from the table")
                key_columns = tuple(self.fields.get(k).name for k in key_columns)  # type: ignore[union-attr]
            elif measure == "count":
                condition = build()
                expr = F.count_if(condition).alias(alias)
            else:
                expr = build().alias(alias)
        except _Skip as exc:
            skip = str(exc)
            condition = expr = None
        self.rules.append(PlanRule(
            rule_id=rule_id, kind=kind, column=column, severity=severity, threshold=threshold,
            measure=measure, alias=alias, description=description, path=path, condition=condition,
            expr=expr, key_columns=key_columns, skip_reason=skip,
        ))

    # ---- property rules
    def property(self, prop: Property) -> None:
        name = prop.name
        f = self.fields.get(name)

        def field() -> StructField:
            if f is None:
                raise _Skip(f"column {name!r} is missing from the table")
            return f

        def c() -> Column:
            return _col(field().name)

        def dtype() -> DataType:
            return field().dataType

        sev = prop.severity
        path = prop.path

        def eligible() -> Column:
            """Values that value checks look at: not null, NaN, special, or (declared) inf."""
            col, dt = c(), dtype()
            conds = [col.isNotNull()]
            if isinstance(dt, (FloatType, DoubleType)):
                conds.append(~F.isnan(col))
                if prop.max_inf_percent is not None:
                    conds.append(~_is_inf(col))
            specials = []
            for s in prop.special_values:
                try:
                    specials.append(_lit(s.value, dt))
                except _Skip:
                    pass
            if specials:
                conds.append(~col.isin(*specials))
            return _all(conds)

        if prop.required:
            self.add(rule_id=self._id(None, f"{name}.required"), kind="required", column=name, severity=sev,
                     threshold=ZERO_ROWS, measure="count", description="null values",
                     path=f"{path}.required", build=lambda: c().isNull())
        if prop.unique:
            self.add(rule_id=self._id(None, f"{name}.unique"), kind="duplicateValues", column=name,
                     severity=sev, threshold=ZERO_ROWS, measure="duplicates", description="duplicate values",
                     path=f"{path}.unique", key_columns=(name,))

        def float_check(what: str, make: Any) -> Any:
            def build() -> Column:
                col, dt = c(), dtype()
                if isinstance(dt, (FloatType, DoubleType)):
                    return make(col)
                if isinstance(dt, NumericType):
                    return F.lit(False)  # integers and decimals have no NaN or inf
                raise _Skip(f"{what} is only defined for numeric columns, not {dt.simpleString()}")
            return build

        if prop.max_nan_percent is not None:
            self.add(rule_id=self._id(None, f"{name}.nanValues"), kind="nanValues", column=name, severity=sev,
                     threshold=Threshold("mustBeLessOrEqualTo", prop.max_nan_percent, "percent"),
                     measure="count", description="NaN values", path=f"{path}.maxNanPercent",
                     build=float_check("NaN", F.isnan))
        if prop.max_inf_percent is not None:
            self.add(rule_id=self._id(None, f"{name}.infValues"), kind="infValues", column=name, severity=sev,
                     threshold=Threshold("mustBeLessOrEqualTo", prop.max_inf_percent, "percent"),
                     measure="count", description="infinite values", path=f"{path}.maxInfPercent",
                     build=float_check("infinity", _is_inf))

        for s in prop.special_values:
            threshold = (Threshold("mustBeLessOrEqualTo", s.max_percent, "percent") if s.max_percent is not None
                         else Threshold("mustBeLessOrEqualTo", s.max_count or 0, "rows"))
            self.add(rule_id=self._id(None, f"{name}.specialValue[{s.value}]"), kind="specialValue",
                     column=name, severity=sev, threshold=threshold, measure="count",
                     description=f"the special value {_fmt(s.value)}", path=f"{path}.specialValues",
                     build=lambda s=s: c() == _lit(s.value, dtype()))

        if prop.minimum is not None or prop.maximum is not None:
            lo = "-inf" if prop.minimum is None else _fmt(prop.minimum)
            hi = "inf" if prop.maximum is None else _fmt(prop.maximum)
            interval = f"{'(' if prop.exclusive_minimum else '['}{lo}, {hi}{')' if prop.exclusive_maximum else ']'}"

            def range_cond() -> Column:
                return eligible() & _outside(c(), dtype(), prop.minimum, prop.maximum,
                                             prop.exclusive_minimum, prop.exclusive_maximum)

            self.add(rule_id=self._id(None, f"{name}.range"), kind="range", column=name, severity=sev,
                     threshold=ZERO_ROWS, measure="count", description=f"values outside {interval}",
                     path=f"{path}.minimum/maximum", build=range_cond)

        if prop.allowed_values is not None:
            values = prop.allowed_values
            self.add(rule_id=self._id(None, f"{name}.allowedValues"), kind="allowedValues", column=name,
                     severity=sev, threshold=ZERO_ROWS, measure="count",
                     description=f"values not in {_preview(values)}", path=f"{path}.allowedValues",
                     build=lambda: self._not_in(c(), dtype(), values, eligible))

        if prop.pattern is not None:
            pattern = prop.pattern
            self.add(rule_id=self._id(None, f"{name}.pattern"), kind="pattern", column=name, severity=sev,
                     threshold=ZERO_ROWS, measure="count", description=f"values not matching {pattern!r}",
                     path=f"{path}.pattern", build=lambda: eligible() & ~_as_string(c(), dtype()).rlike(pattern))

        if prop.min_length is not None or prop.max_length is not None:
            lo_n, hi_n = prop.min_length, prop.max_length

            def length_cond() -> Column:
                n = F.char_length(_as_string(c(), dtype()))
                bad = []
                if lo_n is not None:
                    bad.append(n < F.lit(lo_n))
                if hi_n is not None:
                    bad.append(n > F.lit(hi_n))
                return eligible() & _any(bad)

            self.add(rule_id=self._id(None, f"{name}.length"), kind="length", column=name, severity=sev,
                     threshold=ZERO_ROWS, measure="count",
                     description=f"lengths outside [{lo_n if lo_n is not None else 0}, "
                                 f"{hi_n if hi_n is not None else 'inf'}]",
                     path=f"{path}.minLength/maxLength", build=length_cond)

        for q in prop.quality:
            self.property_quality(prop, q, c, dtype, eligible)

    def _not_in(self, col: Column, dt: DataType, values: Sequence[Any], eligible: Any) -> Column:
        if not isinstance(dt, _ATOMIC_VALUE_TYPES):
            raise _Skip(f"allowed values need an atomic column, not {dt.simpleString()}")
        lits = [_lit(v, dt) for v in values]
        return eligible() & ~col.isin(*lits)

    def property_quality(self, prop: Property, q: QualityRule, c: Any, dtype: Any, eligible: Any) -> None:
        name = prop.name
        rid = self._id(q.id, f"{name}.{q.metric}")
        common = dict(rule_id=rid, kind=q.metric, column=name, severity=q.severity, threshold=q.threshold,
                      path=q.path)
        if q.metric == "nullValues":
            self.add(**common, measure="count", description="null values", build=lambda: c().isNull())
        elif q.metric == "missingValues":
            values = q.arguments.get("missingValues", ())

            def missing() -> Column:
                col = c()
                if not values:
                    return col.isNull()
                return col.isNull() | col.isin(*[_lit(v, dtype()) for v in values])

            desc = "null values" + (f" or {_preview(values)}" if values else "")
            self.add(**common, measure="count", description=f"missing values ({desc})", build=missing)
        elif q.metric == "invalidValues":
            valid = q.arguments.get("validValues")
            pattern = q.arguments.get("pattern")
            lo, hi = q.arguments.get("minimum"), q.arguments.get("maximum")

            def invalid() -> Column:
                bad = []
                if valid is not None:
                    bad.append(self._not_in(c(), dtype(), valid, eligible))
                if pattern is not None:
                    bad.append(eligible() & ~_as_string(c(), dtype()).rlike(pattern))
                if lo is not None or hi is not None:
                    bad.append(eligible() & _outside(c(), dtype(), lo, hi))
                return _any(bad)

            parts = ([f"not in {_preview(valid)}"] if valid is not None else []) + (
                [f"not matching {pattern!r}"] if pattern is not None else []) + (
                [f"outside [{'-inf' if lo is None else _fmt(lo)}, {'inf' if hi is None else _fmt(hi)}]"]
                if lo is not None or hi is not None else [])
            self.add(**common, measure="count", description=f"invalid values ({' or '.join(parts)})",
                     build=invalid)
        elif q.metric == "duplicateValues":
            self.add(**common, measure="duplicates", description="duplicate values", key_columns=(name,))
        elif q.metric == "sql":
            self.add(**common, measure="count", description=f"`{q.query}` false or null",
                     build=lambda: (c(), self._sql_condition(q))[1])
        else:  # pragma: no cover - the model rejects other metrics
            raise SpecError(f"unsupported metric {q.metric}", file=self.contract.file, key=q.path)

    # ---- table rules
    def table_rule(self, obj: SchemaObject, q: QualityRule) -> None:
        rid = self._id(q.id, f"{obj.name}.{q.metric}")
        common = dict(rule_id=rid, kind=q.metric, severity=q.severity, threshold=q.threshold, path=q.path)
        if q.metric == "rowCount":
            self.add(**common, column=None, measure="rowCount", description="rows",
                     build=lambda: F.count(F.lit(1)))
        elif q.metric == "duplicateValues":
            keys = tuple(q.arguments["properties"])
            self.add(**common, column=", ".join(keys), measure="duplicates", description="duplicate keys",
                     key_columns=keys)
        elif q.metric == "freshness":
            column = q.arguments.get("property") or self.timestamp_column
            if column is None:
                raise SpecError("freshness needs arguments.property (or a timestamp column in the audit spec)",
                                file=self.contract.file, key=f"{q.path}.arguments.property")

            def latest() -> Column:
                f = self.fields.get(column)
                if f is None:
                    raise _Skip(f"column {column!r} is missing from the table")
                if not isinstance(f.dataType, _TIME_TYPES):
                    raise _Skip(f"freshness needs a date or timestamp column; {column!r} is "
                                f"{f.dataType.simpleString()}")
                return F.unix_micros(F.max(_col(f.name).cast("timestamp")))

            self.add(**common, column=column, measure="freshness", description="age", build=latest)
        elif q.metric == "sql":
            self.add(**common, column=None, measure="count", description=f"`{q.query}` false or null",
                     build=lambda: self._sql_condition(q))
        else:  # pragma: no cover
            raise SpecError(f"unsupported table metric {q.metric}", file=self.contract.file, key=q.path)

    def _sql_condition(self, q: QualityRule) -> Column:
        """``NOT coalesce(query, false)``; checked against the schema when a session is active."""
        key = f"{q.path}.query"
        try:
            e = F.expr(q.query or "")
        except ParseException as exc:
            raise SpecError(f"query does not parse: {_first_line(exc)}", file=self.contract.file, key=key) from None
        spark = SparkSession.getActiveSession()
        if spark is not None:
            empty = spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in self.schema.fields])
            try:
                dt = empty.select(e.alias("ok")).schema["ok"].dataType
            except ParseException as exc:
                raise SpecError(f"query does not parse: {_first_line(exc)}", file=self.contract.file,
                                key=key) from None
            except AnalysisException as exc:
                raise _Skip(f"query cannot run on this table: {_first_line(exc)}") from None
            if not isinstance(dt, BooleanType):
                raise SpecError(f"query must be a boolean row expression; it gives {dt.simpleString()}",
                                file=self.contract.file, key=key)
        return ~F.coalesce(e, F.lit(False))


def _outside(col: Column, dt: DataType, minimum: Any, maximum: Any,
             exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> Column:
    """True for a value below ``minimum`` or above ``maximum`` (None: unbounded)."""
    if not isinstance(dt, (NumericType, *_TIME_TYPES)):
        raise _Skip(f"bounds need a numeric, date or timestamp column, not {dt.simpleString()}")
    bad = []
    if minimum is not None:
        m = _lit(minimum, dt)
        bad.append(col <= m if exclusive_minimum else col < m)
    if maximum is not None:
        m = _lit(maximum, dt)
        bad.append(col >= m if exclusive_maximum else col > m)
    return _any(bad)


def _is_inf(col: Column) -> Column:
    return (col == F.lit(math.inf)) | (col == F.lit(-math.inf))


def _as_string(col: Column, dt: DataType) -> Column:
    if isinstance(dt, _STRING_TYPES):
        return col
    if isinstance(dt, _ATOMIC_VALUE_TYPES):
        return col.cast("string")
    raise _Skip(f"string checks need an atomic column, not {dt.simpleString()}")


def _preview(values: Sequence[Any], n: int = 5) -> str:
    shown = ", ".join(_fmt(v) for v in list(values)[:n])
    more = f", ... ({len(values)} values)" if len(values) > n else ""
    return f"[{shown}{more}]"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- extra passes


def uniqueness_results(
    df: DataFrame,
    columns: ContractPlan | Sequence[str | Sequence[str]],
    group_cols: Sequence[str] = (),
    *,
    severity: str = "error",
) -> list[GroupedRuleResult]:
    """Duplicate counts in one grouped pass, per group of ``group_cols``.

    ``columns`` is a plan (its ``unique`` properties and ``duplicateValues`` rules)
    or column names (a tuple of names is a composite key). The failing count is
    non-null keys minus distinct non-null keys. Does nothing (no Spark job) when
    there is no uniqueness rule.
    """
    plan = columns if isinstance(columns, ContractPlan) else None
    if plan is not None:
        rules = list(plan.uniqueness_rules)
    else:
        builder = _Builder(DataContract("v3.1.0", "adhoc", "0", "adhoc", ()), df.schema, "u__", None)
        for item in columns:
            keys = (item,) if isinstance(item, str) else tuple(item)
            rid = builder._id(None, f"{'+'.join(keys)}.unique")
            builder.add(rule_id=rid, kind="duplicateValues", column=", ".join(keys), severity=severity,
                        threshold=ZERO_ROWS, measure="duplicates", description="duplicate values",
                        path="", key_columns=keys)
        rules = builder.rules
    if not rules:
        return []
    fields = _FieldLookup(df.schema)
    live = [r for r in rules if r.skip_reason is None and all(fields.get(k) is not None for k in r.key_columns)]
    total_alias = "__spark_audit_rows__"
    aggs = [F.count(F.lit(1)).alias(total_alias)]
    for r in live:
        keys = [_col(fields.get(k).name) for k in r.key_columns]  # type: ignore[union-attr]
        aggs.append((F.count_if(_all([k.isNotNull() for k in keys])) - F.count_distinct(*keys)).alias(r.alias))
    grouped = df.groupBy(*[_col(g) for g in group_cols]) if group_cols else df.groupBy()
    out: list[GroupedRuleResult] = []
    for row in grouped.agg(*aggs).collect():
        group = {g: row[i] for i, g in enumerate(group_cols)}
        total = int(row[total_alias])
        for r in rules:
            if r in live:
                out.append(GroupedRuleResult(group, _count_result(r, row[r.alias], total)))
            else:
                skipped = r if r.skip_reason else replace(r, skip_reason="key column missing from the table")
                out.append(GroupedRuleResult(group, _skipped(skipped, total,
                                                             plan is not None and plan.not_evaluated(skipped))))
    return out


def sample_bad_rows(
    df: DataFrame,
    plan: ContractPlan,
    *,
    limit_per_rule: int = 10,
    mask_columns: Iterable[str] = (),
    rules: Iterable[str | RuleResult] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit_per_rule`` offending rows per rule, as BAD_ROWS_SCHEMA dicts.

    ``rules`` are the rules to sample (ids, or results: passing ones are skipped);
    by default every rule with a row-level condition. One limited query per rule.
    Rows are JSON strings of all columns, ``mask_columns`` replaced by ``"***"``.
    """
    if limit_per_rule <= 0:
        return []
    if rules is None:
        targets = [r.rule_id for r in plan.rules
                   if r.skip_reason is None and (r.measure == "duplicates" or r.condition is not None)]
    else:
        targets = []
        for item in rules:
            if isinstance(item, RuleResult):
                if item.passed is not False or item.rule_id not in plan._by_id:
                    continue
                targets.append(item.rule_id)
            else:
                targets.append(item)
    masked = set(mask_columns)
    row_json = F.to_json(F.struct(*[
        (F.lit("***") if f.name in masked else _col(f.name)).alias(f.name) for f in df.schema.fields
    ]), {"ignoreNullFields": "false"})
    flag = "__spark_audit_bad__"
    while flag in df.columns:
        flag += "_"
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rule_id in targets:
        if rule_id in seen:
            continue
        seen.add(rule_id)
        r = plan.rule(rule_id)
        try:
            cond = plan.failing_condition(rule_id)
        except ValueError:
            continue
        rows = (df.withColumn(flag, cond).filter(F.col(flag)).select(row_json.alias("row_json"))
                .limit(limit_per_rule).collect())
        out.extend({"rule_id": r.rule_id, "column": r.column, "row_json": row["row_json"]} for row in rows)
    return out


def check_dataframe(df: DataFrame, plan: ContractPlan, *, ignore: Iterable[str] = ()) -> list[RuleResult]:
    """Schema results, every rule on the whole DataFrame (one aggregation) and uniqueness.

    A convenience for notebooks and tests; the audit runs ``plan.exprs`` in its own
    grouped aggregation instead.
    """
    total_alias = "__spark_audit_rows__"
    row = df.agg(F.count(F.lit(1)).alias(total_alias), *plan.exprs).first()
    assert row is not None
    data = row.asDict()
    results = plan.schema_results(df.schema, ignore=ignore)
    results += plan.evaluate(data, total_rows=int(data[total_alias]))
    results += [g.result for g in uniqueness_results(df, plan)]
    return results
