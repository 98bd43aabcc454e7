"""The Spark side of contract rules: typed literals, row conditions that are Connect safe, and
:class:`Site`, what a rule's builder sees of the column (or table) it checks. The rule table
itself is ``spark_audit.contract.rules``."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from functools import reduce
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    CharType,
    DataType,
    DateType,
    DoubleType,
    FloatType,
    IntegralType,
    NumericType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
    VarcharType,
)

from spark_audit.contract.model import Property
from spark_audit.names import col as _col
from spark_audit.timeutil import parse_time


class Skip(Exception):
    """A rule that cannot run on this table (missing column, wrong type)."""


class FieldLookup:
    """Find a column by exact name, else by case-insensitive name (Spark's default)."""

    def __init__(self, schema: StructType):
        self.exact = {f.name: f for f in schema.fields}
        lower: dict[str, list[StructField]] = {}
        for f in schema.fields:
            lower.setdefault(f.name.lower(), []).append(f)
        self.lower = lower

    def get(self, name: str) -> StructField | None:
        if name in self.exact:
            return self.exact[name]
        matches = self.lower.get(name.lower(), [])
        return matches[0] if len(matches) == 1 else None


_STRING_TYPES = (StringType, VarcharType, CharType)
TIME_TYPES = (DateType, TimestampType, TimestampNTZType)
_ATOMIC_VALUE_TYPES = (*_STRING_TYPES, NumericType, BooleanType, *TIME_TYPES)


def all_of(conds: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a & b, conds)


def any_of(conds: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a | b, conds)


def lit(value: Any, dt: DataType) -> Column:
    """``value`` as a literal of column type ``dt``; Skip when it does not fit."""
    if isinstance(dt, _STRING_TYPES):
        if isinstance(value, str):
            return F.lit(value)
    elif isinstance(dt, NumericType):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(dt, IntegralType) and isinstance(value, float) and value.is_integer():
                value = int(value)
            return F.lit(value)
    elif isinstance(dt, BooleanType):
        if isinstance(value, bool):
            return F.lit(value)
    elif isinstance(dt, TIME_TYPES):
        text = value.isoformat() if isinstance(value, (_dt.date, _dt.datetime)) else value
        if isinstance(text, str):
            try:
                parse_time(text)
            except ValueError:
                pass
            else:
                return F.lit(text).cast(dt)
    else:
        raise Skip(f"values cannot be compared on a {dt.simpleString()} column")
    raise Skip(f"value {value!r} does not fit column type {dt.simpleString()}")


def outside(col: Column, dt: DataType, minimum: Any, maximum: Any,
             exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> Column:
    """True for a value below ``minimum`` or above ``maximum`` (None: unbounded)."""
    if not isinstance(dt, (NumericType, *TIME_TYPES)):
        raise Skip(f"bounds need a numeric, date or timestamp column, not {dt.simpleString()}")
    bad = []
    if minimum is not None:
        m = lit(minimum, dt)
        bad.append(col <= m if exclusive_minimum else col < m)
    if maximum is not None:
        m = lit(maximum, dt)
        bad.append(col >= m if exclusive_maximum else col > m)
    return any_of(bad)


def is_inf(col: Column) -> Column:
    return (col == F.lit(math.inf)) | (col == F.lit(-math.inf))


def as_string(col: Column, dt: DataType) -> Column:
    if isinstance(dt, _STRING_TYPES):
        return col
    if isinstance(dt, _ATOMIC_VALUE_TYPES):
        return col.cast("string")
    raise Skip(f"string checks need an atomic column, not {dt.simpleString()}")


def fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v) if isinstance(v, str) else str(v)


def preview(values: Sequence[Any], n: int = 5) -> str:
    shown = ", ".join(fmt(v) for v in list(values)[:n])
    more = f", ... ({len(values)} values)" if len(values) > n else ""
    return f"[{shown}{more}]"


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Site:
    """Where a rule runs: the table, and for a property rule the property and its column."""

    def __init__(self, fields: FieldLookup, prop: Property | None, *, schema: StructType, file: str | None,
                 timestamp_column: str | None = None):
        self.fields = fields
        self.prop = prop
        self.schema = schema
        self.file = file
        self.timestamp_column = timestamp_column

    @property
    def column(self) -> str | None:
        return self.prop.column if self.prop is not None else None

    def field(self) -> StructField:
        assert self.prop is not None, "a table-level rule has no column of its own"
        f = self.fields.get(self.prop.column)
        if f is None:
            raise Skip(f"column {self.prop.column!r} is missing from the table")
        return f

    def col(self) -> Column:
        return _col(self.field().name)

    def dtype(self) -> DataType:
        return self.field().dataType

    def eligible(self) -> Column:
        """Values that value checks look at: not null, NaN, special, or (declared) inf."""
        assert self.prop is not None
        col, dt = self.col(), self.dtype()
        conds = [col.isNotNull()]
        if isinstance(dt, (FloatType, DoubleType)):
            conds.append(~F.isnan(col))
            if self.prop.max_inf_percent is not None:
                conds.append(~is_inf(col))
        specials = []
        for s in self.prop.special_values:
            try:
                specials.append(lit(s.value, dt))
            except Skip:
                pass
        if specials:
            conds.append(~col.isin(*specials))
        return all_of(conds)

    def not_in(self, values: Sequence[Any]) -> Column:
        dt = self.dtype()
        if not isinstance(dt, _ATOMIC_VALUE_TYPES):
            raise Skip(f"allowed values need an atomic column, not {dt.simpleString()}")
        return self.eligible() & ~self.col().isin(*[lit(v, dt) for v in values])
