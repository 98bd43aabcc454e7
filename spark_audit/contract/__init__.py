"""Data contracts (ODCS v3 shape): reading and validation (``reader``, against the official
ODCS JSON schema in ``odcs``), the model (``model``), the table of rule kinds (``rules``),
compilation to aggregate expressions (``compile``), evaluation into ``contract_violations``
rows (``results``), and inference from a profile (``infer``).

Typical use::

    contract = load_contract("conf/contract_example.yaml")
    plan = compile_contract(contract, df.schema, now=run_time)
    rows = df.groupBy(*keys).agg(*profile_exprs, *plan.exprs).collect()
    results = plan.schema_results(df.schema) + [
        r for row in rows for r in plan.evaluate(row, total_rows=row["n"])
    ]
"""

from spark_audit.contract.compile import ContractPlan, PlanRule, compile_contract, quote_name
from spark_audit.contract.infer import infer_contract
from spark_audit.contract.logical_types import logical_type_of
from spark_audit.contract.model import (
    DataContract,
    Property,
    QualityRule,
    SchemaObject,
    SpecialValue,
    Threshold,
    Unrun,
)
from spark_audit.contract.passes import check_dataframe, sample_bad_rows, uniqueness_results
from spark_audit.contract.reader import load_contract, loads_contract, parse_contract
from spark_audit.contract.results import (
    BAD_ROWS_SCHEMA,
    CONTRACT_VIOLATIONS_FIELDS,
    GroupedRuleResult,
    RuleResult,
    worst_severity,
)
from spark_audit.contract.rules import RULES, RuleKind

__all__ = [
    "BAD_ROWS_SCHEMA",
    "CONTRACT_VIOLATIONS_FIELDS",
    "ContractPlan",
    "DataContract",
    "GroupedRuleResult",
    "PlanRule",
    "Property",
    "QualityRule",
    "RULES",
    "RuleKind",
    "RuleResult",
    "SchemaObject",
    "SpecialValue",
    "Threshold",
    "Unrun",
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
