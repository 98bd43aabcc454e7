"""The contract's part of an audit: its scan part (every rule an aggregate expression in the shared scan),
and its results per group as rows, findings and bad-row samples.

Uniqueness needs a grouped pass of its own, and a failed count rule gets a bounded sample of its bad
rows (one limited query per rule and window, at most ``MAX_SAMPLED_FAILURES``); everything else comes
from the states the scan already holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame

from spark_audit import store
from spark_audit.contract.compile import ContractPlan, tolerates_share
from spark_audit.contract.passes import sample_bad_rows, uniqueness_results
from spark_audit.contract.sql import value_results
from spark_audit.findings import Finding
from spark_audit.profile.profiler import MODEL_VERSION, W_START, Grouping, GroupResult, with_group_columns
from spark_audit.profile.state import GroupKey
from spark_audit.rows import group_fields
from spark_audit.scan import ScanPart
from spark_audit.source import group_rows
from spark_audit.spec import AuditSpec
from spark_audit.timeutil import iso_utc

NAMESPACE = "c"
MAX_SAMPLED_FAILURES = 50  # (rule, window) pairs whose bad rows are sampled, one limited query each


def contract_part(plan: ContractPlan) -> ScanPart:
    """The contract's scan part: its rules' counts (freshness keeps the latest time)."""
    return ScanPart(NAMESPACE, tuple(plan.exprs), merge=lambda a, b: plan.merge_rows([a, b]))


@dataclass
class ContractOutcome:
    """The contract's results of one audit: ``contract_violations`` rows, findings, bad-row samples."""

    violations: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    bad_rows: list[dict[str, Any]] = field(default_factory=list)


def check_contract(df: DataFrame, spec: AuditSpec, plan: ContractPlan, grouping: Grouping,
                   groups: list[GroupResult], common: dict[str, Any], now: datetime) -> ContractOutcome:
    """Contract results per group from the shared scan; uniqueness and bad-row samples as extra passes."""
    assert spec.contract is not None
    out = ContractOutcome()
    # what the contract says and spark-audit does not check: said once per audit, never silently dropped
    out.findings += [Finding("info", "contract", f"not checked: {u.describe()}") for u in plan.contract.unrun]
    per_group: list[tuple[GroupKey | None, Any]] = [(None, r) for r in plan.schema_results(df.schema)]
    unique: dict[tuple, list] = {}
    if plan.has_uniqueness:
        cols = [W_START, MODEL_VERSION] if W_START in grouping.columns() else [MODEL_VERSION]
        for g in uniqueness_results(with_group_columns(df, grouping), plan, cols):
            unique.setdefault((iso_utc(g.group.get(W_START)), g.group[MODEL_VERSION]), []).append(g.result)
    for g in groups:
        rules = plan.evaluate(g.states[NAMESPACE], total_rows=g.profile.row_count, now=now)
        if g.key.slice is None:
            rules += unique.get((g.key.window_start, g.key.model_version), [])
            if plan.value_rules:  # the window's rows as {object}: one job for all of its value queries
                rows = group_rows(df, g.key, timestamp_column=spec.source.timestamp_column,
                                  version_column=spec.model.version_column)
                rules += value_results(rows, plan.value_rules, g.profile.row_count, plan.not_evaluated)
        per_group += [(g.key, r) for r in rules]
    sampled = 0
    key_rows = {g.key: g.profile.row_count for g in groups}
    for key, r in per_group:
        k = key or GroupKey()
        out.violations.append(store.row("contract_violations", **common, **group_fields(k), **r.as_dict()))
        if r.passed is not False:  # True: passed; None: not evaluated, the schema result is the finding
            continue
        if key is not None and key_rows.get(key, spec.findings.min_rows) < spec.findings.min_rows \
                and tolerates_share(plan.rule(r.rule_id).threshold):
            continue  # a share tolerance says nothing on a group too small to judge: recorded only
        out.findings.append(Finding(r.severity, "contract", f"{r.rule_id}: {r.message}", r.column,
                                    k.window_start, k.slice, k.model_version))
        if key is None or key.slice is not None or sampled >= MAX_SAMPLED_FAILURES or not spec.contract.sample_rows:
            continue
        if plan.rule(r.rule_id).measure not in ("count", "duplicates"):
            continue
        sampled += 1
        rows = group_rows(df, k, timestamp_column=spec.source.timestamp_column,
                          version_column=spec.model.version_column)
        for i, bad in enumerate(sample_bad_rows(rows, plan, limit_per_rule=spec.contract.sample_rows,
                                                mask_columns=spec.contract.mask_columns, rules=[r.rule_id])):
            out.bad_rows.append(store.row("contract_bad_rows", **common, **group_fields(k), sample=i, **bad))
    return out
