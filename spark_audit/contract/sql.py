"""Rules of ODCS ``type: sql``, in the two shapes contracts write them.

- A **boolean row expression** (``age >= 18 OR plan = 'kids'``): rows where it is false or null fail; it
  is one ``count_if`` in the shared aggregation (kind ``sql``).
- A **query that returns one value** (``SELECT count(*) FROM {object} WHERE {property} < 0``), compared
  with the rule's operator (kind ``sqlQuery``): ``{object}`` is bound to the rows of one window (a
  temporary view), ``{property}`` to the property's column. All of a window's value queries run as
  scalar subqueries of one ``SELECT``: one Spark job per window, whatever the number of rules (a query
  that fails is then run alone, to name it).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from spark_audit.contract.columns import Site, Skip, first_line
from spark_audit.contract.results import PlanRule, RuleResult, read_value, result, skipped
from spark_audit.contract.values import ValueReader
from spark_audit.errors import SpecError
from spark_audit.names import quote_name

# a SELECT or WITH query, after any comments and opening parentheses; or one with ODCS's placeholders
_SELECT = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/|\()\s*)*(?:select|with)\b", re.IGNORECASE | re.DOTALL)
_PLACEHOLDER = re.compile(r"\{(object|property)\}")
_LEADING_COMMENTS = re.compile(r"\A(?:\s*(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/))*", re.DOTALL)


def is_value_query(query: str) -> bool:
    """Whether a ``type: sql`` query returns a value (a SELECT, or ODCS's ``{object}``/``{property}``) rather
    than being a row expression.

    >>> is_value_query("-- note\\n(SELECT count(*) FROM {object})"), is_value_query("age >= 18")
    (True, False)
    """
    return bool(_SELECT.match(query) or _PLACEHOLDER.search(query))


def _query(reader: ValueReader, args: Mapping[str, Any], path: str) -> str:
    query = reader.string(args, "query", path, required=True)
    assert query is not None
    # leading comments and a trailing semicolon would break the query once it is a scalar subquery
    query = _LEADING_COMMENTS.sub("", query).strip().rstrip(";").strip()
    if not query:
        raise reader.fail(f"{path}.query", "the query is empty (comments only)")
    return query


def read_row_rule(reader: ValueReader, args: Mapping[str, Any], path: str, level: str, ltype: str) -> dict[str, Any]:
    query = _query(reader, args, path)
    if is_value_query(query):  # the reader picks sqlQuery for these; a row rule never holds one
        raise reader.fail(f"{path}.query", "a query that returns a value is a sqlQuery rule, not a row expression")
    return {"query": query}


def read_value_rule(reader: ValueReader, args: Mapping[str, Any], path: str, level: str,
                    ltype: str) -> dict[str, Any]:
    query = _query(reader, args, path)
    if "{property}" in query and level == "table":
        raise reader.fail(f"{path}.query", "{property} names a property's column: a table-level query has none")
    return {"query": query}


def build_row_rule(site: Site, a: Mapping[str, Any], path: str) -> Column:
    """``NOT coalesce(query, false)``; checked against the schema when a session is active."""
    if site.prop is not None:
        site.field()  # a property's rule needs its column
    key = f"{path}.query"
    try:
        e = F.expr(a["query"])
    except ParseException as exc:
        raise SpecError(f"query does not parse: {first_line(exc)}", file=site.file, key=key) from None
    spark = SparkSession.getActiveSession()
    if spark is not None:
        empty = spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in site.schema.fields])
        try:
            dt = empty.select(e.alias("ok")).schema["ok"].dataType
        except ParseException as exc:
            raise SpecError(f"query does not parse: {first_line(exc)}", file=site.file, key=key) from None
        except AnalysisException as exc:
            raise Skip(f"query cannot run on this table: {first_line(exc)}") from None
        if not isinstance(dt, BooleanType):
            raise SpecError(f"query must be a boolean row expression; it gives {dt.simpleString()}",
                            file=site.file, key=key)
    return ~F.coalesce(e, F.lit(False))


def build_value_rule(site: Site, a: Mapping[str, Any], path: str) -> str:
    """The query with ``{property}`` bound to the column (``{object}`` is bound per window when it runs)."""
    query = a["query"]
    if "{property}" in query:
        query = query.replace("{property}", quote_name(site.field().name))
    return query


def value_results(rows: DataFrame, rules: Sequence[PlanRule], total: int,
                  explained: Callable[[PlanRule], bool] = lambda r: False) -> list[RuleResult]:
    """The value queries of ``rules`` on ``rows`` (one window's): one job for all of them. A rule that cannot
    run (its column is missing) is not evaluated where ``explained`` says a schema result reports why."""
    out = [skipped(r, total, explained(r)) for r in rules if r.skip_reason is not None]
    live = [r for r in rules if r.query is not None and r.skip_reason is None]
    if not live:
        return out
    return out + _run(rows, live, total)


def _run(rows: DataFrame, live: Sequence[PlanRule], total: int) -> list[RuleResult]:
    spark = rows.sparkSession
    view = f"__sa_contract_rows_{uuid.uuid4().hex[:12]}"
    rows.createOrReplaceTempView(view)
    bound = [r.query.replace("{object}", quote_name(view)) for r in live]  # type: ignore[union-attr]
    try:
        try:
            # a newline after each query: a trailing comment must not swallow the closing parenthesis
            select = "SELECT " + ", ".join(f"({q}\n) AS v{i}" for i, q in enumerate(bound))
            values = list(spark.sql(select).first())
            return [read_value(r, v, total) for r, v in zip(live, values, strict=True)]
        except Exception:  # noqa: BLE001 - one of them cannot run: run each alone to say which and why
            return [_alone(spark, r, q, total) for r, q in zip(live, bound, strict=True)]
    finally:
        spark.catalog.dropTempView(view)


def _alone(spark: SparkSession, r: PlanRule, query: str, total: int) -> RuleResult:
    try:
        got = spark.sql(query).collect()
    except Exception as exc:  # noqa: BLE001 - the user's SQL: any failure is that rule's result
        return result(r, 1, total, False, f"the query cannot run on this window: {first_line(exc)}", 1.0)
    if len(got) != 1 or len(got[0]) != 1:
        shape = f"{len(got)} row(s) of {len(got[0]) if got else 0} column(s)"
        return result(r, 1, total, False, f"the query must return one value, it returned {shape}", 1.0)
    return read_value(r, got[0][0], total)
