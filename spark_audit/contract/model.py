"""Data contracts in the shape of the Open Data Contract Standard (ODCS) v3.

A contract file is YAML, read with ``yaml.safe_load`` and validated completely
before any Spark job starts. Every error is a :class:`~spark_audit.errors.SpecError`
naming the file and the key path (``schema[0].properties[2].quality[0].mustBeBetwen``).
Unknown keys are errors everywhere; the message lists the allowed keys.

Supported subset
================

Top level
    ``apiVersion`` (``v3.x[.y]``), ``kind: DataContract``, ``id``, ``version`` (a
    string: quote ``"1.0"``), ``status``, ``schema`` (a non-empty list) are required;
    ``name`` and ``description`` (a string or the ODCS object ``{usage, purpose,
    limitations}``) are optional. The ODCS keys ``tenant, domain, dataProduct,
    servers, team, roles, support, price, slaProperties, slaDefaultElement,
    authoritativeDefinitions, tags, customProperties, contractCreatedTs`` are
    accepted and ignored.

Schema object (``schema[i]``: one table)
    ``name`` and ``properties`` required; ``physicalName``, ``description``,
    ``quality`` (table-level rules). ``id, businessName, logicalType, physicalType,
    dataGranularityDescription, authoritativeDefinitions, tags`` are accepted and
    ignored; so are ``customProperties`` but ``unexpectedColumns``: the severity of a
    table column the contract does not list (``info``, the default, ``warning``,
    ``error``, ``critical``, or ``ignore`` to not report them).

Property (``schema[i].properties[j]``: one top-level column; nested properties are
not supported)
    ``name``, ``logicalType`` (``string|integer|number|boolean|date|timestamp|array|
    object``) required; ``physicalType`` (the Spark type, e.g. ``double``; compared
    with the table's type when given), ``required`` (no nulls), ``unique`` (no
    duplicate non-null values; a separate grouped pass), ``description``,
    ``quality``, ``logicalTypeOptions``, ``customProperties``. ``id, businessName,
    physicalName, primaryKey, primaryKeyPosition, partitioned, partitionKeyPosition,
    classification, encryptedName, transformSourceObjects, transformLogic,
    transformDescription, examples, criticalDataElement, authoritativeDefinitions,
    tags`` are accepted and ignored.

    ``logicalTypeOptions`` (ODCS): ``minimum``, ``maximum``, ``exclusiveMinimum``,
    ``exclusiveMaximum`` (a boolean making the bound exclusive, or the exclusive
    bound itself) for integer/number/date/timestamp; ``minLength``, ``maxLength``,
    ``pattern`` for strings; ``format`` accepted and ignored.

    ``customProperties`` (ODCS list of ``{property, value}``) is this engine's
    extension point; the property names are checked like keys:

    ==================  =======================================================
    ``minimum``         lower bound (same as logicalTypeOptions; not both)
    ``maximum``         upper bound
    ``allowedValues``   list of allowed values (nulls are always allowed here)
    ``pattern``         regular expression (Java syntax; Spark ``rlike``)
    ``minLength``       minimum string length
    ``maxLength``       maximum string length
    ``specialValues``   ``[{value: -1, maxPercent: 5}, {value: 0, maxCount: 10}]``:
                        sentinel values allowed up to a share of rows
    ``maxNanPercent``   at most this % of rows NaN (logicalType number)
    ``maxInfPercent``   at most this % of rows +/-inf (logicalType number)
    ``severity``        default severity of this column's non-``quality`` rules
    ==================  =======================================================

    Value checks (bounds, allowed values, pattern, length, ``invalidValues``) ignore
    nulls, NaN, the column's declared special values and, when ``maxInfPercent`` is
    set, +/-inf: those are governed by their own rules. Without ``maxInfPercent`` an
    infinity counts as out of range. Value checks are zero tolerance (any bad row
    fails); use a ``quality`` rule with ``unit: percent`` for a tolerance (for bounds,
    ``invalidValues`` with ``arguments.minimum/maximum``).

Quality rules (``quality[k]``, ODCS ``type: library`` or ``sql``)
    ``id``, ``name``, ``description``, ``type`` (``library`` is the default, ``sql``
    when ``query`` is given; ``text`` rules are accepted and not executed),
    ``metric`` (ODCS 3.1; ``rule`` as in 3.0 is a synonym), ``arguments``, ``unit``,
    ``severity`` (``info|warning|error|critical``, default ``error``), ``query``
    and exactly one operator: ``mustBe, mustNotBe, mustBeGreaterThan,
    mustBeGreaterOrEqualTo, mustBeLessThan, mustBeLessOrEqualTo, mustBeBetween,
    mustNotBeBetween`` (``[low, high]``, inclusive). Without an operator a
    count rule means ``mustBe: 0``. ``dimension, method, schedule, scheduler,
    businessImpact, tags, authoritativeDefinitions, customProperties`` are accepted
    and ignored.

    ====================  ==========  ==============================================
    metric                level       measures (compared in ``unit``)
    ====================  ==========  ==============================================
    ``nullValues``        property    null rows (rows|percent)
    ``missingValues``     property    null rows plus ``arguments.missingValues``
    ``invalidValues``     property    values outside ``arguments.validValues``, not
                                      matching ``arguments.pattern`` or outside
                                      [``arguments.minimum``, ``maximum``] (inclusive)
    ``duplicateValues``   both        non-null rows minus distinct values; at table
                                      level over ``arguments.properties``
    ``rowCount``          table       rows (unit rows)
    ``freshness``         table       age of ``max(arguments.property)`` against
                                      ``now`` (unit seconds|minutes|hours|days;
                                      extension, not in ODCS)
    ``type: sql``         both        ``query`` is a Spark SQL *boolean row
                                      expression*; rows where it is false or null
                                      count as failing (rows|percent)
    ====================  ==========  ==============================================

Percent is of all rows in the group. ``type: custom`` is rejected.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from spark_audit.errors import SpecError
from spark_audit.findings import SEVERITIES

LOGICAL_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "array", "object")
OPERATORS: dict[str, str] = {
    "mustBe": "==",
    "mustNotBe": "!=",
    "mustBeGreaterThan": ">",
    "mustBeGreaterOrEqualTo": ">=",
    "mustBeLessThan": "<",
    "mustBeLessOrEqualTo": "<=",
    "mustBeBetween": "between",
    "mustNotBeBetween": "not between",
}
COUNT_UNITS = ("rows", "percent")
TIME_UNITS: dict[str, int] = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}

PROPERTY_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues")
TABLE_METRICS = ("rowCount", "duplicateValues", "freshness")
METRIC_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "nullValues": (),
    "missingValues": ("missingValues",),
    "invalidValues": ("validValues", "pattern", "minimum", "maximum"),
    "duplicateValues": ("properties",),
    "rowCount": (),
    "freshness": ("property",),
}

_TOP_KEYS = ("apiVersion", "kind", "id", "version", "status", "name", "description", "schema")
_TOP_IGNORED = (
    "tenant", "domain", "dataProduct", "servers", "team", "roles", "support", "price",
    "slaProperties", "slaDefaultElement", "authoritativeDefinitions", "tags",
    "customProperties", "contractCreatedTs",
)
_DESCRIPTION_KEYS = ("usage", "purpose", "limitations", "authoritativeDefinitions", "customProperties")
_OBJECT_KEYS = ("name", "physicalName", "description", "quality", "properties")
_OBJECT_IGNORED = (
    "id", "businessName", "logicalType", "physicalType", "dataGranularityDescription",
    "authoritativeDefinitions", "tags", "customProperties",
)
_PROPERTY_KEYS = (
    "name", "logicalType", "physicalType", "required", "unique", "description", "quality",
    "logicalTypeOptions", "customProperties",
)
_PROPERTY_IGNORED = (
    "id", "businessName", "physicalName", "primaryKey", "primaryKeyPosition", "partitioned",
    "partitionKeyPosition", "classification", "encryptedName", "transformSourceObjects",
    "transformLogic", "transformDescription", "examples", "criticalDataElement",
    "authoritativeDefinitions", "tags",
)
_QUALITY_KEYS = (
    "id", "name", "description", "type", "metric", "rule", "arguments", "unit", "severity",
    "query", *OPERATORS,
)
_QUALITY_IGNORED = (
    "dimension", "method", "schedule", "scheduler", "businessImpact", "tags",
    "authoritativeDefinitions", "customProperties",
)
_TYPE_OPTIONS = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "pattern", "format",
)
CUSTOM_PROPERTIES = (
    "minimum", "maximum", "allowedValues", "pattern", "minLength", "maxLength",
    "specialValues", "maxNanPercent", "maxInfPercent", "severity",
)
_CUSTOM_ITEM_KEYS = ("property", "value", "id", "description")
_SPECIAL_KEYS = ("value", "maxPercent", "maxCount")

_ORDERED_TYPES = ("integer", "number", "date", "timestamp")
_VALUE_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Threshold:
    """One ODCS operator and its value, compared in ``unit``."""

    operator: str  # a key of OPERATORS
    value: float | tuple[float, float]
    unit: str = "rows"

    def check(self, observed: float) -> bool:
        """True when ``observed`` satisfies the threshold (tolerant of float rounding)."""
        op = self.operator
        if op in ("mustBeBetween", "mustNotBeBetween"):
            lo, hi = self.value  # type: ignore[misc]
            inside = lo - _eps(lo) <= observed <= hi + _eps(hi)
            return inside if op == "mustBeBetween" else not inside
        v = float(self.value)  # type: ignore[arg-type]
        if op == "mustBe":
            return abs(observed - v) <= _eps(v)
        if op == "mustNotBe":
            return abs(observed - v) > _eps(v)
        if op == "mustBeGreaterThan":
            return observed > v
        if op == "mustBeGreaterOrEqualTo":
            return observed >= v - _eps(v)
        if op == "mustBeLessThan":
            return observed < v
        if op == "mustBeLessOrEqualTo":
            return observed <= v + _eps(v)
        raise ValueError(f"unknown operator {op!r}")

    def describe(self, subject: str) -> str:
        """Human-readable form, e.g. ``failing % <= 5`` or ``age in [0, 48] hours``."""
        unit = "" if self.unit in ("rows", "percent") else f" {self.unit}"
        if self.operator in ("mustBeBetween", "mustNotBeBetween"):
            lo, hi = self.value  # type: ignore[misc]
            word = "in" if self.operator == "mustBeBetween" else "not in"
            return f"{subject} {word} [{_fmt(lo)}, {_fmt(hi)}]{unit}"
        return f"{subject} {OPERATORS[self.operator]} {_fmt(self.value)}{unit}"


ZERO_ROWS = Threshold("mustBe", 0, "rows")


def _eps(v: float) -> float:
    return 1e-9 * max(1.0, abs(float(v)))


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class QualityRule:
    """One ODCS ``quality[]`` entry of type library or sql."""

    metric: str  # a library metric, or "sql"
    threshold: Threshold
    path: str  # key path in the file, for messages
    id: str | None = None
    name: str | None = None
    type: str = "library"
    severity: str = "error"
    arguments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    query: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class SpecialValue:
    """A sentinel value (e.g. -1 for "unknown") allowed up to a share of rows."""

    value: Any
    max_percent: float | None = None
    max_count: int | None = None


@dataclass(frozen=True)
class Property:
    """One column of a schema object, with its checks."""

    name: str
    logical_type: str
    path: str
    physical_type: str | None = None
    required: bool = False
    unique: bool = False
    description: str | None = None
    minimum: Any = None
    maximum: Any = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    allowed_values: tuple[Any, ...] | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    special_values: tuple[SpecialValue, ...] = ()
    max_nan_percent: float | None = None
    max_inf_percent: float | None = None
    severity: str = "error"
    quality: tuple[QualityRule, ...] = ()


@dataclass(frozen=True)
class SchemaObject:
    """One table of the contract."""

    name: str
    path: str
    properties: tuple[Property, ...] = ()
    quality: tuple[QualityRule, ...] = ()
    physical_name: str | None = None
    description: str | None = None
    unexpected_columns: str = "info"  # a severity, or "ignore"

    def property(self, name: str) -> Property | None:
        for p in self.properties:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class DataContract:
    """A validated contract. ``file`` is where it came from (for messages)."""

    api_version: str
    id: str
    version: str
    status: str
    schema: tuple[SchemaObject, ...]
    kind: str = "DataContract"
    name: str | None = None
    description: str | None = None
    file: str | None = None

    def schema_object(self, name: str | None = None) -> SchemaObject:
        """The schema object called ``name``; the only one when ``name`` is None."""
        if name is None:
            if len(self.schema) == 1:
                return self.schema[0]
            names = [o.name for o in self.schema]
            raise SpecError(
                f"the contract has {len(names)} schema objects {names}; say which one to check",
                file=self.file, key="schema",
            )
        for obj in self.schema:
            if obj.name == name or obj.physical_name == name:
                return obj
        raise SpecError(
            f"no schema object named {name!r}; have {[o.name for o in self.schema]}",
            file=self.file, key="schema",
        )


# --------------------------------------------------------------------------- loading


def load_contract(path: str | Path) -> DataContract:
    """Read and validate a contract YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read contract: {exc.strerror or exc}", file=str(p)) from exc
    return loads_contract(text, file=str(p))


def loads_contract(text: str, *, file: str = "<contract>") -> DataContract:
    """Parse and validate contract YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"malformed YAML{where}: {problem}", file=file, key=_yaml_scan(text)[0] or None
        ) from exc
    duplicate = _yaml_scan(text)[1]
    if duplicate is not None:
        raise SpecError(f"duplicate key at line {duplicate[1]}", file=file, key=duplicate[0])
    return parse_contract(data, file=file)


def parse_contract(data: Any, *, file: str = "<contract>") -> DataContract:
    """Validate an already-parsed contract (e.g. from :func:`infer_contract`)."""
    return _Reader(file).contract(data)


def _yaml_scan(text: str) -> tuple[str, tuple[str, int] | None]:
    """Walk the YAML events: the key path where parsing failed ("" if it did not),
    and the first duplicate mapping key as (key path, line), which ``safe_load``
    would otherwise silently resolve to the last value."""
    stack: list[list[Any]] = []  # ["map", key, expecting_key, seen keys] | ["seq", index]
    duplicate: tuple[str, int] | None = None

    def render() -> str:
        out = ""
        for entry in stack:
            if entry[0] == "map" and entry[1] is not None:
                out = f"{out}.{entry[1]}" if out else str(entry[1])
            elif entry[0] == "seq" and entry[1] >= 0:
                out = f"{out}[{entry[1]}]"
        return out

    node_events = (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(ev, node_events) and stack:
                top = stack[-1]
                if top[0] == "map":
                    if top[2]:
                        top[1] = ev.value if isinstance(ev, yaml.ScalarEvent) else "?"
                        top[2] = False
                        if isinstance(ev, yaml.ScalarEvent):
                            if ev.value in top[3] and duplicate is None:
                                duplicate = (render(), ev.start_mark.line + 1)
                            top[3].add(ev.value)
                            continue
                    else:
                        top[2] = True
                else:
                    top[1] += 1
            if isinstance(ev, yaml.MappingStartEvent):
                stack.append(["map", None, True, set()])
            elif isinstance(ev, yaml.SequenceStartEvent):
                stack.append(["seq", -1])
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)) and stack:
                stack.pop()
    except yaml.YAMLError:
        return render(), duplicate
    return "", duplicate


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_iso_datetime(value: str) -> _dt.datetime:
    """``datetime.fromisoformat`` that also accepts a trailing ``Z``."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(text)


def check_value(value: Any, logical_type: str) -> Any:
    """Return ``value`` normalised for ``logical_type`` or raise ValueError saying why.

    Dates and timestamps become ISO strings (cast by Spark to the column's type).
    """
    if value is None:
        raise ValueError("null is not a value here")
    if logical_type == "string":
        if isinstance(value, str):
            return value
        hint = " (YAML reads yes/no/on/off as booleans: quote it)" if isinstance(value, bool) else " (quote it)"
        raise ValueError(f"expected a string, got {value!r}{hint}")
    if logical_type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"expected an integer, got {value!r}")
    if logical_type == "number":
        if _is_number(value):
            return value
        raise ValueError(f"expected a number, got {value!r}")
    if logical_type == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if logical_type == "date":
        if isinstance(value, _dt.datetime):
            raise ValueError(f"expected a date, got the timestamp {value!r}")
        if isinstance(value, _dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return _dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ValueError(f"expected an ISO date like 2024-01-31, got {value!r}")
    if logical_type == "timestamp":
        if isinstance(value, _dt.datetime):
            return value.isoformat()
        if isinstance(value, _dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                parse_iso_datetime(value)
                return value.strip()
            except ValueError:
                pass
        raise ValueError(f"expected an ISO timestamp like 2024-01-31T12:00:00Z, got {value!r}")
    raise ValueError(f"logicalType {logical_type} has no comparable values")


def _order_key(value: Any, logical_type: str) -> Any:
    if logical_type == "date":
        return _dt.date.fromisoformat(value)
    if logical_type == "timestamp":
        d = parse_iso_datetime(value)
        return d if d.tzinfo is None else d.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return value


class _Reader:
    def __init__(self, file: str):
        self.file = file
        self.explicit_ids: dict[str, str] = {}

    # ---- helpers
    def fail(self, path: str, message: str) -> SpecError:
        return SpecError(message, file=self.file, key=path or None)

    def mapping(self, value: Any, path: str, what: str = "a mapping") -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected {what}, got {_type_name(value)}")
        return value

    def seq(self, value: Any, path: str, what: str = "a list") -> Sequence[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected {what}, got {_type_name(value)}")
        return value

    def keys(
        self,
        m: Mapping[str, Any],
        path: str,
        allowed: Sequence[str],
        ignored: Sequence[str] = (),
        required: Sequence[str] = (),
    ) -> None:
        known = set(allowed) | set(ignored)
        for key in m:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {key!r}")
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                listed = ", ".join(allowed)
                extra = f"; also accepted and ignored: {', '.join(ignored)}" if ignored else ""
                raise self.fail(_join(path, key), f"unknown key{hint}; allowed keys: {listed}{extra}")
        for key in required:
            if m.get(key) is None:
                raise self.fail(_join(path, key), "required key is missing")

    def string(self, m: Mapping[str, Any], key: str, path: str, *, required: bool = False,
               choices: Sequence[str] | None = None) -> str | None:
        value = m.get(key)
        p = _join(path, key)
        if value is None:
            if required:
                raise self.fail(p, "required key is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(p, f"expected a non-empty string, got {value!r}" + (
                " (quote it)" if _is_number(value) else ""))
        if choices is not None and value not in choices:
            raise self.fail(p, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, m: Mapping[str, Any], key: str, path: str) -> bool:
        value = m.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(_join(path, key), f"expected true or false, got {value!r}")
        return value

    def number(self, value: Any, path: str, *, lo: float | None = None, hi: float | None = None) -> float:
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            raise self.fail(path, f"expected a number, got {value!r}")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise self.fail(path, f"expected a number in [{lo}, {hi}], got {value!r}")
        return value

    def count(self, value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(path, f"expected a non-negative integer, got {value!r}")
        return value

    # ---- contract
    def contract(self, data: Any) -> DataContract:
        if data is None:
            raise self.fail("", "the contract is empty")
        m = self.mapping(data, "", "a mapping at the top of the contract")
        self.keys(m, "", _TOP_KEYS, _TOP_IGNORED, required=("apiVersion", "kind", "id", "version", "status", "schema"))
        api = self.string(m, "apiVersion", "", required=True)
        assert api is not None
        if not re.fullmatch(r"v3\.\d+(\.\d+)?", api):
            raise self.fail("apiVersion", f"expected an ODCS v3 version like v3.0.2 or v3.1.0, got {api!r}")
        kind = self.string(m, "kind", "", required=True, choices=("DataContract",))
        cid = self.string(m, "id", "", required=True)
        version = self.string(m, "version", "", required=True)
        status = self.string(m, "status", "", required=True)
        name = self.string(m, "name", "")
        description = self.description(m.get("description"), "description")
        items = self.seq(m["schema"], "schema", "a list of schema objects")
        if not items:
            raise self.fail("schema", "expected at least one schema object")
        objects = tuple(self.schema_object(o, _join("schema", i)) for i, o in enumerate(items))
        seen: set[str] = set()
        for i, obj in enumerate(objects):
            if obj.name in seen:
                raise self.fail(_join(_join("schema", i), "name"), f"duplicate schema object {obj.name!r}")
            seen.add(obj.name)
        return DataContract(
            api_version=api, kind=kind or "DataContract", id=cid or "", version=version or "",
            status=status or "", name=name, description=description, schema=objects, file=self.file,
        )

    def description(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        m = self.mapping(value, path, "a string or a mapping {usage, purpose, limitations}")
        self.keys(m, path, _DESCRIPTION_KEYS)
        parts = [f"{k}: {m[k]}" for k in ("purpose", "usage", "limitations") if isinstance(m.get(k), str)]
        return "\n".join(parts) or None

    def schema_object(self, value: Any, path: str) -> SchemaObject:
        m = self.mapping(value, path, "a schema object (a mapping)")
        self.keys(m, path, _OBJECT_KEYS, _OBJECT_IGNORED, required=("name", "properties"))
        name = self.string(m, "name", path, required=True)
        assert name is not None
        props_path = _join(path, "properties")
        props = tuple(
            self.property(p, _join(props_path, i))
            for i, p in enumerate(self.seq(m["properties"], props_path, "a list of properties"))
        )
        seen: set[str] = set()
        for i, p in enumerate(props):
            if p.name in seen:
                raise self.fail(_join(_join(props_path, i), "name"), f"duplicate property {p.name!r}")
            seen.add(p.name)
        quality = self.quality_list(m.get("quality"), _join(path, "quality"), level="table", prop=None)
        for rule in quality:
            for key in rule.arguments.get("properties", ()) or ():
                if key not in seen:
                    raise self.fail(_join(_join(rule.path, "arguments"), "properties"),
                                    f"{key!r} is not a property of schema object {name!r}")
            col = rule.arguments.get("property")
            if col is not None and col not in seen:
                raise self.fail(_join(_join(rule.path, "arguments"), "property"),
                                f"{col!r} is not a property of schema object {name!r}")
        unexpected = "info"  # the one schema-level customProperty read; others stay ignored
        for i, item in enumerate(m["customProperties"] if isinstance(m.get("customProperties"), list) else []):
            if isinstance(item, Mapping) and item.get("property") == "unexpectedColumns":
                unexpected = self.string(item, "value", f"{path}.customProperties[{i}]", required=True,
                                         choices=(*SEVERITIES, "ignore")) or unexpected
        return SchemaObject(
            name=name, path=path, properties=props, quality=quality,
            physical_name=self.string(m, "physicalName", path),
            description=self.description(m.get("description"), _join(path, "description")),
            unexpected_columns=unexpected,
        )

    def property(self, value: Any, path: str) -> Property:
        m = self.mapping(value, path, "a property (a mapping)")
        self.keys(m, path, _PROPERTY_KEYS, _PROPERTY_IGNORED, required=("name", "logicalType"))
        name = self.string(m, "name", path, required=True)
        ltype = self.string(m, "logicalType", path, required=True, choices=LOGICAL_TYPES)
        assert name is not None and ltype is not None
        opts: dict[str, tuple[Any, str]] = {}  # option -> (raw value, key path)

        lto_path = _join(path, "logicalTypeOptions")
        if m.get("logicalTypeOptions") is not None:
            lto = self.mapping(m["logicalTypeOptions"], lto_path)
            self.keys(lto, lto_path, _TYPE_OPTIONS)
            for key, v in lto.items():
                if key != "format" and v is not None:
                    opts[key] = (v, _join(lto_path, key))

        cp_path = _join(path, "customProperties")
        if m.get("customProperties") is not None:
            items = self.seq(m["customProperties"], cp_path, "a list of {property, value}")
            for i, item in enumerate(items):
                ip = _join(cp_path, i)
                im = self.mapping(item, ip, "a mapping {property, value}")
                self.keys(im, ip, _CUSTOM_ITEM_KEYS, required=("property",))
                prop_name = im["property"]
                if prop_name not in CUSTOM_PROPERTIES:
                    close = difflib.get_close_matches(str(prop_name), CUSTOM_PROPERTIES, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise self.fail(_join(ip, "property"), f"unknown custom property {prop_name!r}{hint}; "
                                                            f"allowed: {', '.join(CUSTOM_PROPERTIES)}")
                if prop_name in opts:
                    raise self.fail(_join(ip, "property"),
                                    f"{prop_name} is already set at {opts[prop_name][1]}")
                if "value" not in im:
                    raise self.fail(_join(ip, "value"), "required key is missing")
                opts[prop_name] = (im["value"], _join(ip, "value"))

        severity = "error"
        if "severity" in opts:
            v, p = opts.pop("severity")
            if v not in SEVERITIES:
                raise self.fail(p, f"expected one of {', '.join(SEVERITIES)}, got {v!r}")
            severity = v

        def need_type(option: str, types: Sequence[str]) -> None:
            if option in opts and ltype not in types:
                raise self.fail(opts[option][1], f"{option} needs logicalType {' or '.join(types)}, not {ltype}")

        # bounds
        for option in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            need_type(option, _ORDERED_TYPES)
        bounds: dict[str, Any] = {"minimum": None, "maximum": None}
        exclusive = {"minimum": False, "maximum": False}
        for side in ("minimum", "maximum"):
            ex_key = "exclusive" + side[0].upper() + side[1:]
            if side in opts:
                bounds[side] = self.ordered_value(opts[side][0], opts[side][1], ltype)
            if ex_key in opts:
                v, p = opts[ex_key]
                if isinstance(v, bool):
                    if v and bounds[side] is None:
                        raise self.fail(p, f"{ex_key}: true needs {side}")
                    exclusive[side] = v
                else:
                    if bounds[side] is not None:
                        raise self.fail(p, f"give either {side} or a value for {ex_key}, not both")
                    bounds[side] = self.ordered_value(v, p, ltype)
                    exclusive[side] = True
        if bounds["minimum"] is not None and bounds["maximum"] is not None:
            try:
                lo, hi = _order_key(bounds["minimum"], ltype), _order_key(bounds["maximum"], ltype)
                if lo > hi:
                    raise self.fail(opts.get("maximum", opts.get("exclusiveMaximum", (None, path)))[1],
                                    f"maximum {bounds['maximum']!r} is below minimum {bounds['minimum']!r}")
            except TypeError:
                pass

        # strings
        for option in ("pattern", "minLength", "maxLength"):
            need_type(option, ("string",))
        pattern = None
        if "pattern" in opts:
            v, p = opts["pattern"]
            if not isinstance(v, str) or not v:
                raise self.fail(p, f"expected a regular expression string, got {v!r}")
            _check_regex(self, v, p)
            pattern = v
        min_len = self.count(opts["minLength"][0], opts["minLength"][1]) if "minLength" in opts else None
        max_len = self.count(opts["maxLength"][0], opts["maxLength"][1]) if "maxLength" in opts else None
        if min_len is not None and max_len is not None and min_len > max_len:
            raise self.fail(opts["maxLength"][1], f"maxLength {max_len} is below minLength {min_len}")

        # allowed values
        allowed = None
        if "allowedValues" in opts:
            v, p = opts["allowedValues"]
            need_type("allowedValues", _VALUE_TYPES)
            if not isinstance(v, list) or not v:
                raise self.fail(p, f"expected a non-empty list of values, got {v!r}")
            allowed = tuple(self.value(x, _join(p, i), ltype) for i, x in enumerate(v) if x is not None)

        # special values
        specials: list[SpecialValue] = []
        if "specialValues" in opts:
            v, p = opts["specialValues"]
            need_type("specialValues", _VALUE_TYPES)
            for i, item in enumerate(self.seq(v, p, "a list of {value, maxPercent|maxCount}")):
                ip = _join(p, i)
                im = self.mapping(item, ip, "a mapping {value, maxPercent|maxCount}")
                self.keys(im, ip, _SPECIAL_KEYS, required=("value",))
                if ("maxPercent" in im) == ("maxCount" in im):
                    raise self.fail(ip, "give exactly one of maxPercent, maxCount")
                sv = self.value(im["value"], _join(ip, "value"), ltype)
                if any(s.value == sv for s in specials):
                    raise self.fail(_join(ip, "value"), f"special value {sv!r} is listed twice")
                specials.append(SpecialValue(
                    value=sv,
                    max_percent=self.number(im["maxPercent"], _join(ip, "maxPercent"), lo=0, hi=100)
                    if "maxPercent" in im else None,
                    max_count=self.count(im["maxCount"], _join(ip, "maxCount")) if "maxCount" in im else None,
                ))

        # NaN / inf
        for option in ("maxNanPercent", "maxInfPercent"):
            need_type(option, ("number",))
        nan_pct = self.number(*opts["maxNanPercent"], lo=0, hi=100) if "maxNanPercent" in opts else None
        inf_pct = self.number(*opts["maxInfPercent"], lo=0, hi=100) if "maxInfPercent" in opts else None

        quality = self.quality_list(m.get("quality"), _join(path, "quality"), level="property", prop=(name, ltype))
        return Property(
            name=name, logical_type=ltype, path=path,
            physical_type=self.string(m, "physicalType", path),
            required=self.boolean(m, "required", path),
            unique=self.boolean(m, "unique", path),
            description=m.get("description") if isinstance(m.get("description"), str) else None,
            minimum=bounds["minimum"], maximum=bounds["maximum"],
            exclusive_minimum=exclusive["minimum"], exclusive_maximum=exclusive["maximum"],
            allowed_values=allowed, pattern=pattern, min_length=min_len, max_length=max_len,
            special_values=tuple(specials), max_nan_percent=nan_pct, max_inf_percent=inf_pct,
            severity=severity, quality=quality,
        )

    def value(self, v: Any, path: str, ltype: str) -> Any:
        try:
            return check_value(v, ltype)
        except ValueError as exc:
            raise self.fail(path, f"{exc} for logicalType {ltype}") from None

    def ordered_value(self, v: Any, path: str, ltype: str) -> Any:
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            raise self.fail(path, f"a bound must be finite, got {v!r}")
        return self.value(v, path, ltype)

    # ---- quality
    def quality_list(self, value: Any, path: str, *, level: str,
                     prop: tuple[str, str] | None) -> tuple[QualityRule, ...]:
        if value is None:
            return ()
        rules = []
        for i, item in enumerate(self.seq(value, path, "a list of quality rules")):
            rule = self.quality(item, _join(path, i), level=level, prop=prop)
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def quality(self, value: Any, path: str, *, level: str, prop: tuple[str, str] | None) -> QualityRule | None:
        m = self.mapping(value, path, "a quality rule (a mapping)")
        self.keys(m, path, _QUALITY_KEYS, _QUALITY_IGNORED)
        qtype = m.get("type") or ("sql" if "query" in m else "library")
        if qtype == "custom":
            raise self.fail(_join(path, "type"), "type custom (vendor-specific) is not supported; use library or sql")
        if qtype not in ("library", "sql", "text"):
            raise self.fail(_join(path, "type"), f"expected one of library, sql, text, got {qtype!r}")
        rid = self.string(m, "id", path)
        if rid is not None:
            if rid in self.explicit_ids:
                raise self.fail(_join(path, "id"), f"duplicate rule id {rid!r} (also at {self.explicit_ids[rid]})")
            self.explicit_ids[rid] = _join(path, "id")
        if qtype == "text":
            return None
        if "metric" in m and "rule" in m:
            raise self.fail(_join(path, "rule"), "give metric or rule (its ODCS 3.0 name), not both")
        metric_key = "rule" if "rule" in m else "metric"
        severity = self.string(m, "severity", path, choices=SEVERITIES) or "error"

        if qtype == "sql":
            if metric_key in m:
                raise self.fail(_join(path, metric_key), "a sql rule has a query, not a metric")
            query = self.string(m, "query", path, required=True)
            assert query is not None
            if re.match(r"\s*(select|with)\b", query, re.IGNORECASE):
                raise self.fail(_join(path, "query"),
                                "expected a boolean row expression (e.g. 'age >= 18 OR plan = ''kids'''), "
                                "not a SELECT query; rows where it is false or null count as failing")
            if "arguments" in m:
                raise self.fail(_join(path, "arguments"), "a sql rule takes no arguments")
            metric = "sql"
            arguments: dict[str, Any] = {}
        else:
            if "query" in m:
                raise self.fail(_join(path, "query"), "query belongs to type: sql")
            allowed = PROPERTY_METRICS if level == "property" else TABLE_METRICS
            metric = m.get(metric_key)
            if metric is None:
                raise self.fail(_join(path, "metric"), f"required key is missing; one of {', '.join(allowed)}")
            if metric not in allowed:
                other = TABLE_METRICS if level == "property" else PROPERTY_METRICS
                hint = f" ({metric} is a {'table' if level == 'property' else 'property'}-level metric)" \
                    if metric in other else ""
                raise self.fail(_join(path, metric_key), f"unsupported metric {metric!r}{hint}; "
                                                         f"expected one of {', '.join(allowed)}")
            arguments = self.arguments(m.get("arguments"), _join(path, "arguments"), metric, level, prop)

        # unit and threshold
        if metric == "freshness":
            unit = self.string(m, "unit", path, required=True, choices=tuple(TIME_UNITS))
        elif metric == "rowCount":
            unit = self.string(m, "unit", path, choices=("rows",))
        else:
            unit = self.string(m, "unit", path, choices=COUNT_UNITS)
        unit = unit or "rows"
        ops = [k for k in OPERATORS if k in m]
        if len(ops) > 1:
            raise self.fail(_join(path, ops[1]), f"give exactly one operator, got {', '.join(ops)}")
        if not ops:
            if metric in ("rowCount", "freshness"):
                raise self.fail(path, f"{metric} needs an operator: one of {', '.join(OPERATORS)}")
            threshold = Threshold("mustBe", 0, unit)
        else:
            op = ops[0]
            op_path = _join(path, op)
            raw = m[op]
            if op in ("mustBeBetween", "mustNotBeBetween"):
                if not isinstance(raw, list) or len(raw) != 2:
                    raise self.fail(op_path, f"expected [low, high], got {raw!r}")
                lo = self.number(raw[0], _join(op_path, 0))
                hi = self.number(raw[1], _join(op_path, 1))
                if lo > hi:
                    raise self.fail(op_path, f"low {lo} is above high {hi}")
                threshold = Threshold(op, (lo, hi), unit)
            else:
                threshold = Threshold(op, self.number(raw, op_path), unit)
        return QualityRule(
            metric=metric, threshold=threshold, path=path, id=rid, name=self.string(m, "name", path),
            type=qtype, severity=severity, arguments=MappingProxyType(arguments),
            query=m.get("query") if qtype == "sql" else None,
            description=m.get("description") if isinstance(m.get("description"), str) else None,
        )

    def arguments(self, value: Any, path: str, metric: str, level: str,
                  prop: tuple[str, str] | None) -> dict[str, Any]:
        allowed = METRIC_ARGUMENTS[metric]
        if metric == "duplicateValues" and level == "property":
            allowed = ()
        if value is None:
            value = {}
        m = self.mapping(value, path)
        if not allowed and m:
            raise self.fail(_join(path, next(iter(m))), f"{metric} takes no arguments here")
        self.keys(m, path, allowed)
        ltype = prop[1] if prop else "string"
        out: dict[str, Any] = {}
        if metric == "missingValues":
            vals = self.seq(m.get("missingValues", []), _join(path, "missingValues"))
            out["missingValues"] = tuple(
                self.value(v, _join(_join(path, "missingValues"), i), ltype)
                for i, v in enumerate(vals) if v is not None
            )
        elif metric == "invalidValues":
            if not m:
                raise self.fail(path, "invalidValues needs arguments.validValues, pattern, minimum or maximum")
            for side in ("minimum", "maximum"):
                if side in m and ltype not in _ORDERED_TYPES:
                    raise self.fail(_join(path, side), f"{side} needs logicalType {' or '.join(_ORDERED_TYPES)}")
                if side in m:
                    out[side] = self.ordered_value(m[side], _join(path, side), ltype)
            if len(out) == 2 and _order_key(out["minimum"], ltype) > _order_key(out["maximum"], ltype):
                raise self.fail(_join(path, "maximum"), f"maximum {out['maximum']!r} is below {out['minimum']!r}")
            if "validValues" in m:
                vp = _join(path, "validValues")
                vals = self.seq(m["validValues"], vp)
                if not vals:
                    raise self.fail(vp, "expected a non-empty list")
                out["validValues"] = tuple(
                    self.value(v, _join(vp, i), ltype) for i, v in enumerate(vals) if v is not None)
            if "pattern" in m:
                pat = self.string(m, "pattern", path, required=True)
                assert pat is not None
                if ltype != "string":
                    raise self.fail(_join(path, "pattern"), f"pattern needs logicalType string, not {ltype}")
                _check_regex(self, pat, _join(path, "pattern"))
                out["pattern"] = pat
        elif metric == "duplicateValues" and level == "table":
            pp = _join(path, "properties")
            if "properties" not in m:
                raise self.fail(pp, "required key is missing (the columns that together must be unique)")
            cols = self.seq(m["properties"], pp)
            if not cols or not all(isinstance(c, str) for c in cols):
                raise self.fail(pp, f"expected a non-empty list of property names, got {cols!r}")
            out["properties"] = tuple(cols)
        elif metric == "freshness":
            col = self.string(m, "property", path)
            if col is not None:
                out["property"] = col
        return out


def _check_regex(reader: _Reader, pattern: str, path: str) -> None:
    """Best-effort check: Python's ``re`` reads most Java patterns; ``\\p{..}`` it does not."""
    try:
        re.compile(pattern)
    except re.error as exc:
        if "\\p" in pattern or "\\P" in pattern:
            return
        raise reader.fail(path, f"invalid regular expression {pattern!r}: {exc}") from None


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


# --------------------------------------------------------------------------- Spark types

_INTEGRAL = ("tinyint", "smallint", "int", "bigint", "byte", "short", "integer", "long")
_FRACTIONAL = ("float", "double", "real")
_PHYSICAL_ALIASES = {
    "byte": "tinyint", "short": "smallint", "integer": "int", "long": "bigint", "real": "float",
    "bool": "boolean", "timestamp_ltz": "timestamp", "text": "string",
}


def logical_type_of(spark_type: str) -> str:
    """ODCS logical type of a Spark type's ``simpleString`` (``double`` -> ``number``).

    Types with no ODCS counterpart (binary, variant, interval...) map to themselves.
    """
    t = spark_type.strip().lower()
    base = re.split(r"[(<]", t, maxsplit=1)[0]
    if base in ("string", "varchar", "char"):
        return "string"
    if base in _INTEGRAL:
        return "integer"
    if base in _FRACTIONAL or base == "decimal":
        return "number"
    if base == "boolean":
        return "boolean"
    if base == "date":
        return "date"
    if base in ("timestamp", "timestamp_ntz", "timestamp_ltz"):
        return "timestamp"
    if base == "array":
        return "array"
    if base in ("map", "struct"):
        return "object"
    return base


def logical_types_compatible(expected: str, spark_type: str) -> bool:
    """Whether a column of ``spark_type`` satisfies ``logicalType: expected``."""
    actual = logical_type_of(spark_type)
    if actual == expected:
        return True
    if expected == "number" and actual == "integer":
        return True
    if expected == "integer" and re.fullmatch(r"decimal\(\d+,\s*0\)", spark_type.strip().lower()):
        return True
    return False


def normalise_physical_type(spark_type: str) -> str:
    t = re.sub(r"\s+", "", spark_type.strip().lower())
    return _PHYSICAL_ALIASES.get(t, t)
