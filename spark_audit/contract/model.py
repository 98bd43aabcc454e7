"""The contract model: what a validated ODCS v3 contract says, as frozen dataclasses.

:mod:`spark_audit.contract.reader` builds these from YAML (and documents the supported
subset of ODCS); :mod:`spark_audit.contract.rules` is the table of rule kinds that turns a
:class:`Property`'s declarations and its :class:`QualityRule` entries into aggregate
expressions. Key paths (``path``) are kept on every object so later errors can name the
place in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from spark_audit.errors import SpecError
from spark_audit.timeutil import parse_duration

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
# the units of an age (freshness), in seconds: the durations of spark_audit.timeutil
TIME_UNITS: dict[str, int] = {
    unit: int(parse_duration(f"1 {unit}").total_seconds()) for unit in ("seconds", "minutes", "hours", "days")
}


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
        unit = "" if self.unit in COUNT_UNITS else f" {self.unit}"
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
    """One ODCS ``quality[]`` entry that spark-audit runs.

    ``metric`` names its kind in :data:`spark_audit.contract.rules.RULES` (``sql`` for a
    ``type: sql`` rule, whose ``arguments`` hold its ``query``).
    """

    metric: str
    threshold: Threshold
    path: str  # key path in the file, for messages
    id: str | None = None
    name: str | None = None
    type: str = "library"  # library, sql or custom (a spark-audit extension)
    severity: str = "error"
    arguments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    description: str | None = None

    @property
    def query(self) -> str | None:
        """The row expression of a ``type: sql`` rule."""
        return self.arguments.get("query")


@dataclass(frozen=True)
class SpecialValue:
    """A sentinel value (e.g. -1 for "unknown") allowed up to a share of rows."""

    value: Any
    max_percent: float | None = None
    max_count: int | None = None


@dataclass(frozen=True)
class Property:
    """One column of a schema object, with the checks it declares.

    The option fields are filled by the rule kinds that read them (see ``options`` in
    :mod:`spark_audit.contract.rules`).
    """

    name: str
    logical_type: str | None  # None: not given (ODCS makes it optional); the type is then not checked
    path: str
    physical_type: str | None = None
    physical_name: str | None = None  # the table's column, when it is not the logical name
    required: bool = False
    unique: bool = False
    primary_key: bool = False  # with its position in a composite key (ODCS primaryKeyPosition)
    primary_key_position: int | None = None
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
    severity: str = "error"  # of the checks the property declares (quality rules have their own)
    quality: tuple[QualityRule, ...] = ()

    @property
    def column(self) -> str:
        """The table's column: ``physicalName``, else the property's name."""
        return self.physical_name or self.name


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

    def primary_key(self) -> tuple[Property, ...]:
        """The properties of the primary key, in ``primaryKeyPosition`` order (then as listed)."""
        keyed = [p for p in self.properties if p.primary_key]
        return tuple(sorted(keyed, key=lambda p: (p.primary_key_position is None, p.primary_key_position or 0)))


class NotRun(Exception):
    """Raised while reading a valid contract for something spark-audit does not check: the reader lists it
    (an :class:`Unrun`) and goes on."""


@dataclass(frozen=True)
class Unrun:
    """Something a valid contract says that spark-audit does not check: where, what, and why."""

    path: str
    what: str
    reason: str

    def describe(self) -> str:
        return f"{self.path}: {self.what} not checked ({self.reason})"


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
    unrun: tuple[Unrun, ...] = ()  # listed once per audit (an info finding) and by validate

    def schema_object(self, name: str | None = None) -> SchemaObject:
        """The schema object called ``name``; the only one when ``name`` is None."""
        if name is None:
            if not self.schema:  # a contract of servers, roles or SLAs: an object with nothing to check
                return SchemaObject(self.name or self.id, "schema", unexpected_columns="ignore")
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
