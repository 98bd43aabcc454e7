"""Compile a :class:`DataContract` into aggregate expressions and judge their values.

The plan's :attr:`ContractPlan.exprs` go into the same
``groupBy(window, slice, model_version).agg(...)`` as the column profile: one
expression per rule, aliased ``prefix + safe(rule_id)`` (``c__age_range``). What a rule
compiles to, and how its value is read, is its kind's entry in
:data:`spark_audit.contract.rules.RULES` and that entry's measure
(:data:`spark_audit.contract.results.MEASURES`): a ``count`` rule's value is the number of
failing rows, ``rowCount`` gives ``count(1)`` and ``freshness`` ``unix_micros(max(ts))``.
:meth:`ContractPlan.evaluate` turns one aggregated row into :class:`RuleResult` rows of the
``contract_violations`` table.

Only uniqueness needs grouping work: :func:`uniqueness_results` is one extra
grouped pass, run only when the contract marks something unique.

Everything is DataFrame API and built-in SQL functions (Spark Connect safe). Column
names are quoted with backticks and values passed with ``F.lit``; the only SQL text
is the user's own ``type: sql`` query, parsed with ``F.expr``.

The ``rule`` column holds the kind's name, and from :meth:`ContractPlan.schema_results`
``missingColumn`` (error), ``typeChange`` (error) and ``unexpectedColumn`` (info, or the
schema object's ``unexpectedColumns``). For ``rowCount`` and ``freshness``
``failing_count`` is 1 when the table fails and 0 when it passes.

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
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType
from pyspark.sql.window import Window

from spark_audit.contract.columns import FieldLookup, Site, Skip, all_of
from spark_audit.contract.logical_types import logical_type_of, logical_types_compatible, normalise_physical_type
from spark_audit.contract.model import ZERO_ROWS, DataContract, Property, SchemaObject, Threshold
from spark_audit.contract.results import (
    BAD_ROWS_SCHEMA,
    CONTRACT_VIOLATIONS_FIELDS,
    MEASURES,
    GroupedRuleResult,
    PlanRule,
    RuleResult,
    read_count,
    skipped,
    structural,
    worst_severity,
)
from spark_audit.contract.rules import RULES, RuleKind
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
    "tolerates_share",
    "uniqueness_results",
    "worst_severity",
]


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
        lookup = FieldLookup(schema)
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
        lookup = FieldLookup(schema)
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
                out.append(structural(f"{prop.name}.{kind}", kind, prop.name, "error", expected, message))
        severity = self.object.unexpected_columns
        for f in schema.fields:
            if f.name not in known and f.name not in ignored and severity != "ignore":
                out.append(structural(f"{f.name}.unexpectedColumn", "unexpectedColumn", f.name, severity,
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
            if MEASURES[r.measure].merge is None:  # not in the shared aggregation (uniqueness)
                continue
            if r.skip_reason is not None:
                out.append(skipped(r, total, self.not_evaluated(r)))
                continue
            if r.alias not in data:
                raise KeyError(f"the aggregated row has no {r.alias!r}: put plan.exprs into the aggregation")
            out.append(MEASURES[r.measure].read(r, data[r.alias], total, now_s))
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
                out[r.alias] = MEASURES[r.measure].merge(values)  # type: ignore[misc]
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
            return all_of([k.isNotNull() for k in keys]) & (F.count(F.lit(1)).over(Window.partitionBy(*keys)) > 1)
        raise ValueError(f"rule {rule_id!r} ({r.kind}) is a table-level metric with no bad rows")


def tolerates_share(t: Threshold | None) -> bool:
    """An upper bound on a share of rows that is above zero (a tolerance, not a ban)."""
    return (t is not None and t.unit == "percent" and t.operator in ("mustBeLessOrEqualTo", "mustBeLessThan")
            and isinstance(t.value, (int, float)) and float(t.value) > 0)


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
    builder.table(obj)
    return ContractPlan(contract, obj, schema, builder.rules, now=now)


class _Builder:
    def __init__(self, contract: DataContract, schema: StructType, prefix: str, timestamp_column: str | None):
        self.contract = contract
        self.schema = schema
        self.prefix = prefix
        self.timestamp_column = timestamp_column
        self.fields = FieldLookup(schema)
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

    def site(self, prop: Property | None) -> Site:
        return Site(self.fields, prop, schema=self.schema, file=self.contract.file,
                    timestamp_column=self.timestamp_column)

    def add(self, kind: RuleKind, site: Site, *, rule_id: str, severity: str, threshold: Threshold,
            arguments: Mapping[str, Any], path: str) -> None:
        """Compile one rule of ``kind``; a rule its table cannot answer is kept with the reason."""
        column = kind.column(site, arguments, path) if kind.column is not None else site.column
        alias = self._alias(rule_id)
        condition = expr = None
        keys: tuple[str, ...] = ()
        skip = None
        try:
            built = kind.build(site, arguments, path)
            if kind.measure == "duplicates":  # key columns, for the grouped pass
                keys = tuple(built)
                missing = [k for k in keys if self.fields.get(k) is None]
                if missing:
                    raise Skip(f"column(s) {', '.join(map(repr, missing))} missing from the table")
                keys = tuple(self.fields.get(k).name for k in keys)  # type: ignore[union-attr]
            elif kind.measure == "count":  # a row condition
                condition = built
                expr = F.count_if(condition).alias(alias)
            else:  # an aggregate
                expr = built.alias(alias)
        except Skip as exc:
            skip = str(exc)
            condition = expr = None
        self.rules.append(PlanRule(
            rule_id=rule_id, kind=kind.name, column=column, severity=severity, threshold=threshold,
            measure=kind.measure, alias=alias, description=kind.describe(arguments), path=path,
            condition=condition, expr=expr, key_columns=keys, skip_reason=skip,
        ))

    def property(self, prop: Property) -> None:
        """The checks ``prop`` declares (in the order of RULES), then its quality rules."""
        site = self.site(prop)
        for kind in RULES.values():
            for d in kind.declared(prop) if kind.declared is not None else ():
                self.add(kind, site, rule_id=self._id(None, f"{prop.name}.{d.suffix}"), severity=prop.severity,
                         threshold=d.threshold, arguments=d.arguments, path=d.path)
        for q in prop.quality:
            self.add(RULES[q.metric], site, rule_id=self._id(q.id, f"{prop.name}.{q.metric}"), severity=q.severity,
                     threshold=q.threshold, arguments=q.arguments, path=q.path)

    def table(self, obj: SchemaObject) -> None:
        site = self.site(None)
        for q in obj.quality:
            self.add(RULES[q.metric], site, rule_id=self._id(q.id, f"{obj.name}.{q.metric}"), severity=q.severity,
                     threshold=q.threshold, arguments=q.arguments, path=q.path)


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
            builder.add(RULES["duplicateValues"], builder.site(None), rule_id=rid, severity=severity,
                        threshold=ZERO_ROWS, arguments={"properties": keys}, path="")
        rules = builder.rules
    if not rules:
        return []
    fields = FieldLookup(df.schema)
    live = [r for r in rules if r.skip_reason is None and all(fields.get(k) is not None for k in r.key_columns)]
    total_alias = "__spark_audit_rows__"
    aggs = [F.count(F.lit(1)).alias(total_alias)]
    for r in live:
        keys = [_col(fields.get(k).name) for k in r.key_columns]  # type: ignore[union-attr]
        aggs.append((F.count_if(all_of([k.isNotNull() for k in keys])) - F.count_distinct(*keys)).alias(r.alias))
    grouped = df.groupBy(*[_col(g) for g in group_cols]) if group_cols else df.groupBy()
    out: list[GroupedRuleResult] = []
    for row in grouped.agg(*aggs).collect():
        group = {g: row[i] for i, g in enumerate(group_cols)}
        total = int(row[total_alias])
        for r in rules:
            if r in live:
                out.append(GroupedRuleResult(group, read_count(r, row[r.alias], total, 0.0)))
            else:
                missing = r if r.skip_reason else replace(r, skip_reason="key column missing from the table")
                out.append(GroupedRuleResult(group, skipped(missing, total,
                                                             plan is not None and plan.not_evaluated(missing))))
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
