"""Data contracts (ODCS v3 shape): model and loading, compilation to aggregate
expressions, evaluation into ``contract_violations`` rows, and inference from a profile.

Typical use::

    contract = load_contract("conf/contract_example.yaml")
    plan = compile_contract(contract, df.schema, now=run_time)
    rows = df.groupBy(*keys).agg(*profile_exprs, *plan.exprs).collect()
    results = plan.schema_results(df.schema) + [
        r for row in rows for r in plan.evaluate(row, total_rows=row["n"])
    ]
"""

from spark_audit.contract.compile import (
    BAD_ROWS_SCHEMA,
    CONTRACT_VIOLATIONS_FIELDS,
    ContractPlan,
    GroupedRuleResult,
    PlanRule,
    RuleResult,
    check_dataframe,
    compile_contract,
    quote_name,
    sample_bad_rows,
    uniqueness_results,
    worst_severity,
)
from spark_audit.contract.infer import infer_contract
from spark_audit.contract.model import (
    DataContract,
    Property,
    QualityRule,
    SchemaObject,
    SpecialValue,
    Threshold,
    load_contract,
    loads_contract,
    logical_type_of,
    parse_contract,
)

__all__ = [
    "BAD_ROWS_SCHEMA",
    "CONTRACT_VIOLATIONS_FIELDS",
    "ContractPlan",
    "DataContract",
    "GroupedRuleResult",
    "PlanRule",
    "Property",
    "QualityRule",
    "RuleResult",
    "SchemaObject",
    "SpecialValue",
    "Threshold",
    "check_dataframe",
    "compile_contract",
    "infer_contract",
    "load_contract",
    "loads_contract",
    "logical_type_of",
    "parse_contract",
    "quote_name",
    "sample_bad_rows",
    "uniqueness_results",
    "worst_severity",
]
