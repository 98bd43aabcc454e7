"""The contract's passes beside the shared aggregation: duplicate keys (one grouped pass, only when the
contract marks something unique or has a primary key), samples of failing rows, and a whole table checked
at once (``spark-audit contract check``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_audit.contract.columns import FieldLookup, all_of
from spark_audit.contract.compile import ContractPlan, PlanBuilder
from spark_audit.contract.model import ZERO_ROWS, DataContract
from spark_audit.contract.results import (
    GroupedRuleResult,
    RuleResult,
    read_count,
    skipped,
)
from spark_audit.contract.rules import RULES
from spark_audit.contract.sql import value_results
from spark_audit.names import col as _col


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
        builder = PlanBuilder(DataContract("v3.1.0", "adhoc", "0", "adhoc", ()), df.schema, "u__", None)
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
    """Schema results, every rule on the whole DataFrame (one aggregation), uniqueness and the value queries
    (``{object}``: the whole DataFrame).

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
    results += value_results(df, plan.value_rules, int(data[total_alias]), plan.not_evaluated)
    return results
