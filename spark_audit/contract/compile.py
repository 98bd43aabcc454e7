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

Only uniqueness needs grouping work: ``spark_audit.contract.passes.uniqueness_results`` is one
extra grouped pass, run only when the contract marks something unique (or has a primary key).

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
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType
from pyspark.sql.window import Window

from spark_audit.contract.columns import FieldLookup, Site, Skip, all_of
from spark_audit.contract.logical_types import (
    logical_type_of,
    logical_types_compatible,
    names_spark_type,
    normalise_physical_type,
)
from spark_audit.contract.model import ZERO_ROWS, DataContract, Property, SchemaObject, Threshold
from spark_audit.contract.results import (
    BAD_ROWS_SCHEMA,
    CONTRACT_VIOLATIONS_FIELDS,
    MEASURES,
    GroupedRuleResult,
    PlanRule,
    RuleResult,
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
    "compile_contract",
    "quote_name",
    "tolerates_share",
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
        self.broken_columns = frozenset(p.column.lower() for p in obj.properties
                                        if _schema_problem(p, lookup.get(p.column)) is not None)

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
    def value_rules(self) -> tuple[PlanRule, ...]:
        """The ``type: sql`` queries that return a value: run per window (``contract.sql.value_results``)."""
        return tuple(r for r in self.rules if r.measure == "value")

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
            f = lookup.get(prop.column)
            if f is not None:
                known.add(f.name)
            problem = _schema_problem(prop, f)
            if problem is not None:
                kind, expected, message = problem
                out.append(structural(f"{prop.name}.{kind}", kind, prop.column, "error", expected, message))
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
    """(kind, expected, message) when ``prop``'s column is missing or has another type; else None. A property
    without a logicalType has no type to check; a physicalType that is not a Spark type name (``int4``,
    ``uuid``: another system's) is recorded by the reader and not compared."""
    named = repr(prop.column) + ("" if prop.column == prop.name else f" (property {prop.name})")
    if f is None:
        return "missingColumn", "column present", f"column {named} is missing from the table"
    actual = f.dataType.simpleString()
    problems = []
    if prop.logical_type is not None and not logical_types_compatible(prop.logical_type, actual):
        problems.append(f"logicalType {prop.logical_type} expected, the column is {actual} "
                        f"({logical_type_of(actual)})")
    physical = prop.physical_type if prop.physical_type and names_spark_type(prop.physical_type) else None
    if physical and normalise_physical_type(physical) != normalise_physical_type(actual):
        problems.append(f"physicalType {physical} expected, the column is {actual}")
    if not problems:
        return None
    expected = ", ".join([*([f"logicalType {prop.logical_type}"] if prop.logical_type else []),
                          *([f"physicalType {physical}"] if physical else [])])
    return "typeChange", expected, f"column {named}: " + "; ".join(problems)


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
    builder = PlanBuilder(contract, schema, prefix, timestamp_column)
    for prop in obj.properties:
        builder.property(prop)
    builder.table(obj)
    return ContractPlan(contract, obj, schema, builder.rules, now=now)


class PlanBuilder:
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
        skip = query = None
        try:
            built = kind.build(site, arguments, path)
            if kind.measure == "duplicates":  # key columns, for the grouped pass
                keys = tuple(built)
                missing = [k for k in keys if self.fields.get(k) is None]
                if missing:
                    raise Skip(f"column(s) {', '.join(map(repr, missing))} missing from the table")
                keys = tuple(self.fields.get(k).name for k in keys)  # type: ignore[union-attr]
            elif kind.measure == "value":  # a query, run per window
                query = built
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
            condition=condition, expr=expr, key_columns=keys, skip_reason=skip, query=query,
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
                     threshold=q.threshold, arguments=_physical(obj, q.arguments), path=q.path)
        key = obj.primary_key()
        if key:  # primaryKey: unique together (composite keys in primaryKeyPosition order) and never null
            for p in key:
                if not p.required:
                    self.add(RULES["required"], self.site(p), rule_id=self._id(None, f"{p.name}.primaryKey.required"),
                             severity=p.severity, threshold=ZERO_ROWS, arguments={}, path=f"{p.path}.primaryKey")
            if len(key) > 1 or not key[0].unique:
                self.add(RULES["duplicateValues"], site, rule_id=self._id(None, f"{obj.name}.primaryKey"),
                         severity=key[0].severity, threshold=ZERO_ROWS,
                         arguments={"properties": tuple(p.column for p in key)}, path=f"{key[0].path}.primaryKey")


def _physical(obj: SchemaObject, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
    """A table rule's arguments with the properties they name as the table's columns (``physicalName``)."""
    def column(name: str) -> str:
        p = obj.property(name)
        return p.column if p is not None else name

    out = dict(arguments)
    if isinstance(out.get("property"), str):
        out["property"] = column(out["property"])
    if out.get("properties"):
        out["properties"] = tuple(column(n) for n in out["properties"])
    return out
