"""Read a contract file (YAML in the shape of ODCS v3) into the model, validating it completely.

A contract is read with ``yaml.safe_load`` and validated before any Spark job starts, in
two steps. First its structure, against the official ODCS v3.1.0 JSON schema
(:mod:`spark_audit.contract.odcs`: keys, types, enums, exactly one operator per quality
rule...); then spark-audit's own checks: values against the property's logicalType, bounds
in order, regular expressions, rule arguments, columns a rule names. Every error is a
:class:`~spark_audit.errors.SpecError` naming the file, the key path
(``schema[0].properties[2].quality[0].mustBeBetwen``) and what was expected.

What spark-audit reads
======================

Top level
    ``apiVersion`` (``v3.x[.y]``), ``kind: DataContract``, ``id``, ``version`` (a string:
    quote ``"1.0"``), ``status``, ``schema`` (a non-empty list); ``name``, ``description``
    (``{usage, purpose, limitations}``). Other ODCS keys are checked by the schema and ignored.

Schema object (``schema[i]``: one table)
    ``name``, ``properties`` (required), ``physicalName``, ``description``, ``quality``
    (table-level rules), and the ``customProperties`` entry ``unexpectedColumns``: the
    severity of a table column the contract does not list (``info``, the default,
    ``warning``, ``error``, ``critical``, or ``ignore`` to not report them).

Property (``schema[i].properties[j]``: one top-level column; nested properties are not supported)
    ``name``, ``logicalType`` (one of :data:`~spark_audit.contract.logical_types.LOGICAL_TYPES`)
    required; ``physicalType`` (the Spark type, e.g. ``double``; compared with the table's
    type when given), ``required`` (no nulls), ``unique`` (no duplicate non-null values; a
    separate grouped pass), ``description``, ``quality``, and options, given in
    ``logicalTypeOptions`` (where ODCS defines them for the type) or as ``customProperties``
    ``{property, value}`` entries: those of the rule kinds in
    :data:`~spark_audit.contract.rules.RULES` (``minimum``, ``maximum``,
    ``exclusiveMinimum``, ``exclusiveMaximum``, ``allowedValues``, ``pattern``,
    ``minLength``, ``maxLength``, ``specialValues``, ``maxNanPercent``, ``maxInfPercent``),
    plus ``severity``: the severity of the property's declared checks (default ``error``).

    Value checks (bounds, allowed values, pattern, length, ``invalidValues``) ignore nulls,
    NaN, the column's declared special values and, when ``maxInfPercent`` is set, +/-inf:
    those are governed by their own rules. Without ``maxInfPercent`` an infinity counts as
    out of range. Value checks are zero tolerance (any bad row fails); use a ``quality``
    rule with ``unit: percent`` for a tolerance (for bounds, ``invalidValues`` with
    ``arguments.minimum/maximum``).

Quality rules (``quality[k]``)
    ``type: library`` (the ODCS default) with a ``metric``; ``type: sql`` with a ``query``
    (a Spark SQL *boolean row expression*); ``type: text`` (accepted, not run); ``type:
    custom`` with ``engine: spark-audit`` and ``implementation: {metric, arguments,
    <operator>}`` for this engine's extensions (``freshness``). Every rule has exactly one
    operator (``mustBe, mustNotBe, mustBeGreaterThan, mustBeGreaterOrEqualTo,
    mustBeLessThan, mustBeLessOrEqualTo, mustBeBetween, mustNotBeBetween``; between is
    ``[low, high]``, inclusive), optional ``unit`` (``rows`` or ``percent`` of the group's
    rows for counts; ``seconds, minutes, hours, days`` for an age), ``severity`` (one of
    :data:`spark_audit.findings.SEVERITIES`, default ``error``), ``id``, ``name``,
    ``description``. The metrics, their levels and arguments are the kinds of
    :data:`~spark_audit.contract.rules.RULES`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from spark_audit.contract import odcs
from spark_audit.contract.logical_types import (
    LOGICAL_TYPES,
    logical_type_of,
    names_spark_type,
)
from spark_audit.contract.model import (
    OPERATORS,
    DataContract,
    NotRun,
    Property,
    QualityRule,
    SchemaObject,
    Threshold,
    Unrun,
)
from spark_audit.contract.rules import (
    RULES,
    SEVERITY_OPTION,
    RuleKind,
    custom_property_names,
    option_names,
    quality_kinds,
)
from spark_audit.contract.sql import is_value_query
from spark_audit.contract.values import ValueReader
from spark_audit.findings import SEVERITIES
from spark_audit.yamlread import join as _join
from spark_audit.yamlread import load_yaml, loads_yaml

__all__ = ["ENGINE", "Reader", "load_contract", "loads_contract", "parse_contract"]

ENGINE = "spark-audit"  # the engine of the type: custom rules this package runs
_DESCRIPTIVE_OPTIONS = ("format", "timezone", "defaultTimezone")  # logicalTypeOptions read by nobody
UNREAD_TYPES = (None, "time")  # logical types whose option and argument values spark-audit does not read
_NESTED = ("properties", "items")  # nested structure under a property: listed as not checked (the column is)


def _rule_name(item: Any) -> str:
    """How a quality rule is named in the list of what is not run: its id, else its type and metric."""
    if not isinstance(item, Mapping):
        return "a quality rule"
    if item.get("id"):
        return f"rule {item['id']}"
    return f"a {item.get('type', 'library')} rule" + (f" ({item['metric']})" if item.get("metric") else "") + \
        (f" of engine {item['engine']}" if item.get("engine") else "")


def load_contract(path: str | Path) -> DataContract:
    """Read and validate a contract YAML file."""
    return parse_contract(load_yaml(path, "contract"), file=str(path))


def loads_contract(text: str, *, file: str = "<contract>") -> DataContract:
    """Parse and validate contract YAML text."""
    return parse_contract(loads_yaml(text, file=file), file=file)


def parse_contract(data: Any, *, file: str = "<contract>") -> DataContract:
    """Validate an already-parsed contract (e.g. from :func:`infer_contract`)."""
    return Reader(file).contract(data)


class Reader(ValueReader):
    """Builds the model from a JSON-like document; the rule kinds' readers use its value helpers."""

    def __init__(self, file: str):
        super().__init__(file)
        self.explicit_ids: dict[str, str] = {}
        self.doc: Any = None
        self.unrun: list[Unrun] = []  # what the contract says and spark-audit does not check
        self.foreign_types: list[tuple[str, str]] = []  # physicalTypes of another system: (path, type)

    def not_run(self, path: str, what: str, reason: str) -> None:
        self.unrun.append(Unrun(path, what, reason))

    # ---- contract
    def contract(self, data: Any) -> DataContract:
        if data is None:
            raise self.fail("", "the contract is empty")
        self.mapping(data, "", "a mapping at the top of the contract")
        m = self.doc = odcs.jsonable(data, file=self.file)
        odcs.check(m, file=self.file, hint=self.hint)
        api = self.string(m, "apiVersion", "", required=True)
        assert api is not None
        if not re.fullmatch(r"v3\.\d+(\.\d+)?", api):
            raise self.fail("apiVersion", f"expected an ODCS v3 version like v3.0.2 or v3.1.0, got {api!r}")
        cid = self.string(m, "id", "", required=True)
        version = self.string(m, "version", "", required=True)
        status = self.string(m, "status", "", required=True)
        items = self.seq(m.get("schema") or [], "schema", "a list of schema objects")
        if not items:  # a contract of servers, roles or SLAs only: valid, with no table to check
            self.not_run("schema", "the schema", "the contract describes no table: nothing to check")
        objects = tuple(self.schema_object(o, _join("schema", i)) for i, o in enumerate(items))
        seen: set[str] = set()
        for i, obj in enumerate(objects):
            if obj.name in seen:
                raise self.fail(_join(_join("schema", i), "name"), f"duplicate schema object {obj.name!r}")
            seen.add(obj.name)
        return DataContract(
            api_version=api, kind=m["kind"], id=cid or "", version=version or "", status=status or "",
            name=self.string(m, "name", ""), description=self.description(m.get("description"), "description"),
            schema=objects, file=self.file, unrun=tuple(self.unrun) + self.foreign_type_note(),
        )

    def foreign_type_note(self) -> tuple[Unrun, ...]:
        """One entry for every physicalType that is not a Spark type name (a Postgres contract has one per
        column): recorded, not compared, and listed once."""
        if not self.foreign_types:
            return ()
        kinds = sorted({t for _, t in self.foreign_types})
        shown = ", ".join(kinds[:6]) + (f" and {len(kinds) - 6} more" if len(kinds) > 6 else "")
        return (Unrun(self.foreign_types[0][0], f"the physicalType of {len(self.foreign_types)} propert"
                      f"{'y' if len(self.foreign_types) == 1 else 'ies'} ({shown})",
                      "not Spark type names: recorded, not compared with the columns' types"),)

    def hint(self, problem: odcs.Problem) -> str:
        """Advice for a schema problem that has a known cause."""
        last = problem.path[-1] if problem.path else None
        parent = self._at(problem.path[:-1])
        if last == "metric" and problem.validator == "enum" and problem.instance in quality_kinds("custom"):
            return (f" ({problem.instance} is a spark-audit extension: write type: custom, engine: {ENGINE}, "
                    f"implementation: {{metric: {problem.instance}, arguments: ..., <operator>: ...}})")
        if last == "rule" or (last == "metric" and isinstance(parent, Mapping) and "rule" in parent):
            return " (rule is the ODCS 3.0 name of metric: write metric)"
        if last == "query" and problem.unknown_key:
            return " (a query belongs to a rule of type: sql)"
        if len(problem.path) >= 2 and problem.path[-2] == "logicalTypeOptions":
            prop = self._at(problem.path[:-2])
            if isinstance(prop, Mapping) and isinstance(prop.get("logicalType"), str):
                return f" (for logicalType {prop['logicalType']})"
        return ""

    def _at(self, path: Sequence[str | int]) -> Any:
        node = self.doc
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def description(self, value: Any, path: str) -> str | None:
        if not isinstance(value, Mapping):
            return value if isinstance(value, str) else None
        self.keys(value, path, list(odcs.official_schema()["properties"]["description"]["properties"]))
        parts = [f"{k}: {value[k]}" for k in ("purpose", "usage", "limitations") if isinstance(value.get(k), str)]
        return "\n".join(parts) or None

    def schema_object(self, value: Any, path: str) -> SchemaObject:
        m = self.mapping(value, path, "a schema object (a mapping)")
        name = self.string(m, "name", path, required=True)
        assert name is not None
        props_path = _join(path, "properties")
        if not m.get("properties"):
            self.not_run(props_path, f"the properties of {name!r}", "none are given: no column to check")
        props = tuple(
            self.property(p, _join(props_path, i))
            for i, p in enumerate(self.seq(m.get("properties") or [], props_path, "a list of properties"))
        )
        seen: set[str] = set()
        for i, p in enumerate(props):
            if p.name in seen:
                raise self.fail(_join(_join(props_path, i), "name"), f"duplicate property {p.name!r}")
            seen.add(p.name)
        quality = self.quality_list(m.get("quality"), _join(path, "quality"), level="table", prop=None)
        for rule in quality:  # arguments naming columns must name properties of this object
            where = _join(rule.path, "implementation") if rule.type == "custom" else rule.path
            for key, cols in rule.arguments.items():
                named = (cols,) if key == "property" else cols if key == "properties" else ()
                for col in named:
                    if col not in seen:
                        raise self.fail(_join(_join(where, "arguments"), key),
                                        f"{col!r} is not a property of schema object {name!r}")
        unexpected = "info"  # the one schema-level customProperty read; others stay ignored
        for i, item in enumerate(m.get("customProperties") or []):
            if item.get("property") == "unexpectedColumns":
                unexpected = self.string(item, "value", f"{path}.customProperties[{i}]", required=True,
                                         choices=(*SEVERITIES, "ignore")) or unexpected
        return SchemaObject(
            name=name, path=path, properties=props, quality=quality,
            physical_name=self.string(m, "physicalName", path),
            description=m.get("description") if isinstance(m.get("description"), str) else None,
            unexpected_columns=unexpected,
        )

    def property(self, value: Any, path: str) -> Property:
        m = self.mapping(value, path, "a property (a mapping)")
        name = self.string(m, "name", path, required=True)
        assert name is not None
        physical_type = self.string(m, "physicalType", path)
        ltype = self.string(m, "logicalType", path, choices=LOGICAL_TYPES)
        if physical_type and not names_spark_type(physical_type):
            self.foreign_types.append((_join(path, "physicalType"), physical_type))
        elif ltype is None and physical_type and logical_type_of(physical_type) in LOGICAL_TYPES:
            ltype = logical_type_of(physical_type)  # ODCS makes logicalType optional: a Spark physicalType says it
        for key in _NESTED:
            if key in m:
                self.not_run(_join(path, key), f"the nested properties of {name!r}",
                             "the leaves of structs and arrays are not checked yet; the column itself is")
        opts = self.options(m, path)
        severity = "error"
        if SEVERITY_OPTION in opts:
            v, p = opts.pop(SEVERITY_OPTION)
            if v not in SEVERITIES:
                raise self.fail(p, f"expected one of {', '.join(SEVERITIES)}, got {v!r}")
            severity = v
        fields: dict[str, Any] = {}
        for kind in RULES.values():
            given = {o: opts[o] for o in kind.options if o in opts}
            if given and kind.read_options is not None:
                if ltype in UNREAD_TYPES:  # the options' values are read as the declared type: there is none
                    for o, (_, op) in given.items():
                        self.not_run(op, f"{o} of {name!r}", "the property has no logicalType to read it as"
                                     if ltype is None else f"spark-audit reads no values of logicalType {ltype}")
                    continue
                fields.update(kind.read_options(self, given, ltype))
        quality = self.quality_list(m.get("quality"), _join(path, "quality"), level="property", prop=(name, ltype))
        position = m.get("primaryKeyPosition")
        return Property(
            name=name, logical_type=ltype, path=path, physical_type=physical_type,
            physical_name=self.string(m, "physicalName", path),
            required=m.get("required") is True, unique=m.get("unique") is True,
            primary_key=m.get("primaryKey") is True,
            primary_key_position=position if isinstance(position, int) and position >= 0 else None,
            description=m.get("description") if isinstance(m.get("description"), str) else None,
            severity=severity, quality=quality, **fields,
        )

    def options(self, m: Mapping[str, Any], path: str) -> dict[str, tuple[Any, str]]:
        """The property's options: name -> (value, key path), from logicalTypeOptions and customProperties."""
        opts: dict[str, tuple[Any, str]] = {}
        known = option_names()
        lto_path = _join(path, "logicalTypeOptions")
        for key, v in (m.get("logicalTypeOptions") or {}).items():
            if key in _DESCRIPTIVE_OPTIONS or v is None:
                continue
            if key not in known:  # e.g. multipleOf, minItems: ODCS constraints spark-audit does not check
                self.not_run(_join(lto_path, key), f"logicalTypeOptions.{key}",
                             f"spark-audit checks {', '.join(known)}")
                continue
            opts[key] = (v, _join(lto_path, key))
        allowed = custom_property_names()
        for i, item in enumerate(m.get("customProperties") or []):
            ip = _join(_join(path, "customProperties"), i)
            prop_name = item["property"]
            if prop_name not in allowed:  # ODCS custom properties are free-form (pii, tags, ...): kept as data
                close = difflib.get_close_matches(str(prop_name), allowed, n=1, cutoff=0.85)
                if close:  # most likely a misspelt spark-audit option: say so rather than drop it unseen
                    self.not_run(_join(ip, "property"), f"custom property {prop_name!r}",
                                 f"not a spark-audit option; did you mean {close[0]!r}?")
                continue
            if prop_name in opts:
                raise self.fail(_join(ip, "property"), f"{prop_name} is already set at {opts[prop_name][1]}")
            opts[prop_name] = (item["value"], _join(ip, "value"))
        return opts

    # ---- quality
    def quality_list(self, value: Any, path: str, *, level: str,
                     prop: tuple[str, str | None] | None) -> tuple[QualityRule, ...]:
        rules = []
        for i, item in enumerate(value or []):
            at = _join(path, i)
            try:
                rule = self.quality(item, at, level=level, prop=prop)
            except NotRun as why:
                self.not_run(at, _rule_name(item), str(why))
                continue
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def quality(self, m: Mapping[str, Any], path: str, *, level: str,
                prop: tuple[str, str | None] | None) -> QualityRule | None:
        qtype = m.get("type", "library")
        rid = self.string(m, "id", path)
        if rid is not None:
            if rid in self.explicit_ids:
                raise self.fail(_join(path, "id"), f"duplicate rule id {rid!r} (also at {self.explicit_ids[rid]})")
            self.explicit_ids[rid] = _join(path, "id")
        if qtype == "text":
            return None
        if qtype == "custom":  # a spark-audit extension: {metric, arguments, operator} under implementation
            if m["engine"] != ENGINE:
                raise NotRun(f"spark-audit runs the type: custom rules of engine {ENGINE} only")
            spec_path = _join(path, "implementation")
            spec = self.mapping(m["implementation"], spec_path, f"a mapping {{metric, arguments, <operator>}} "
                                                                f"(the implementation of engine {ENGINE})")
            self.keys(spec, spec_path, ("metric", "arguments", *OPERATORS), required=("metric",))
        else:
            spec, spec_path = m, path
        if "rule" in spec:
            raise self.fail(_join(path, "rule"), "rule is the ODCS 3.0 name of metric: give metric only")
        kind = self.kind(qtype, spec, spec_path, level)
        if prop and prop[1] in UNREAD_TYPES and kind.read_arguments is not None and kind.quality != "sql" \
                and spec.get("arguments"):
            raise NotRun(f"its arguments are read as the property's logicalType, and {prop[0]!r} has none"
                         if prop[1] is None else f"spark-audit reads no values of logicalType {prop[1]}")
        ltype = (prop[1] if prop else None) or "string"
        if kind.quality == "sql":
            arguments = kind.read_arguments(self, {"query": spec.get("query")}, spec_path, level, ltype) \
                if kind.read_arguments else {}
        else:
            args_path = _join(spec_path, "arguments")
            args = self.mapping(spec.get("arguments") or {}, args_path)
            if args and not kind.arguments:
                raise self.fail(_join(args_path, next(iter(args))), f"{kind.name} takes no arguments")
            self.keys(args, args_path, kind.arguments)
            arguments = kind.read_arguments(self, args, args_path, level, ltype) if kind.read_arguments else {}
        units = kind.units
        unit = self.string(m, "unit", path, required="rows" not in units, choices=units) or "rows"
        return QualityRule(
            metric=kind.name, threshold=self.threshold(spec, spec_path, unit), path=path, id=rid,
            name=self.string(m, "name", path), type=qtype,
            severity=self.string(m, "severity", path, choices=SEVERITIES) or kind.severity,
            arguments=MappingProxyType(arguments),
            description=m.get("description") if isinstance(m.get("description"), str) else None,
        )

    def kind(self, qtype: str, spec: Mapping[str, Any], path: str, level: str) -> RuleKind:
        """The rule kind a quality entry selects, from the kinds of RULES of its type and level."""
        allowed = quality_kinds(qtype, level)
        if qtype == "sql":
            if "sql" not in allowed:
                raise self.fail(_join(path, "type"), f"type sql is not supported at {level} level")
            query = spec.get("query")
            return RULES["sqlQuery" if isinstance(query, str) and is_value_query(query) else "sql"]
        metric = spec.get("metric")
        key = _join(path, "metric")
        if metric is None:
            raise self.fail(key, f"required key is missing; one of {', '.join(allowed)}")
        if metric not in allowed:
            other = quality_kinds(qtype, "table" if level == "property" else "property")
            hint = f" ({metric} is a {'table' if level == 'property' else 'property'}-level metric)" \
                if metric in other else ""
            raise self.fail(key, f"unsupported metric {metric!r}{hint}; expected one of {', '.join(allowed)}")
        return RULES[metric]

    def threshold(self, spec: Mapping[str, Any], path: str, unit: str) -> Threshold:
        ops = [k for k in OPERATORS if k in spec]
        if len(ops) != 1:
            got = ", ".join(ops) if ops else "none"
            raise self.fail(_join(path, ops[1]) if ops else path,
                            f"expected exactly one of {', '.join(OPERATORS)}; got {got}")
        op = ops[0]
        op_path = _join(path, op)
        raw = spec[op]
        if op in ("mustBeBetween", "mustNotBeBetween"):
            if not isinstance(raw, list) or len(raw) != 2:
                raise self.fail(op_path, f"expected [low, high], got {raw!r}")
            lo = self.number(raw[0], _join(op_path, 0))
            hi = self.number(raw[1], _join(op_path, 1))
            if lo > hi:
                raise self.fail(op_path, f"low {lo} is above high {hi}")
            return Threshold(op, (lo, hi), unit)
        return Threshold(op, self.number(raw, op_path), unit)
