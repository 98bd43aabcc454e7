"""ODCS logical types: which Spark types satisfy them, and the values a contract may give for them.

Pure Python (no Spark session): the reader checks contract values with :func:`check_value`, the
compiler compares a table's columns with :func:`logical_types_compatible`.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from spark_audit.timeutil import parse_time

# The ODCS logical types (``time`` is Spark 4.1+'s TimeType, ``time(6)``)
LOGICAL_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "time", "array", "object")
ORDERED_TYPES = ("integer", "number", "date", "timestamp")  # types with bounds
VALUE_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp")  # types with comparable values

_INTEGRAL = ("tinyint", "smallint", "int", "bigint", "byte", "short", "integer", "long")
_FRACTIONAL = ("float", "double", "real")
_PHYSICAL_ALIASES = {
    "byte": "tinyint", "short": "smallint", "integer": "int", "long": "bigint", "real": "float",
    "bool": "boolean", "timestamp_ltz": "timestamp", "text": "string",
}


def logical_type_of(spark_type: str) -> str:
    """ODCS logical type of a Spark type's ``simpleString`` (``double`` -> ``number``).

    Types with no ODCS counterpart (binary, variant, interval...) map to themselves.

    >>> logical_type_of("decimal(10,2)"), logical_type_of("map<string,int>")
    ('number', 'object')
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


_SPARK_TYPE = re.compile(
    r"(tinyint|smallint|int|bigint|byte|short|integer|long|float|double|real|boolean|bool|string|text|binary|date"
    r"|timestamp|timestamp_ntz|timestamp_ltz|variant|void|decimal(\(\d+(,\d+)?\))?|(var)?char\(\d+\)"
    r"|time(\(\d\))?|(array|map|struct)<.*>)")


def names_spark_type(physical_type: str) -> bool:
    """Whether a ``physicalType`` is a Spark type name (``bigint``, ``decimal(10,2)``, ``array<string>``);
    ``int4``, ``numeric`` or ``uuid`` are another system's, recorded but not compared.

    >>> names_spark_type("decimal(10, 2)"), names_spark_type("varchar(18)"), names_spark_type("int4")
    (True, True, False)
    """
    return _SPARK_TYPE.fullmatch(re.sub(r"\s+", "", physical_type.strip().lower())) is not None


def normalise_physical_type(spark_type: str) -> str:
    """A Spark type name in one spelling (``long`` -> ``bigint``, ``varchar(18)`` -> ``string``), for comparing
    physicalType.

    >>> normalise_physical_type("VARCHAR(18)"), normalise_physical_type("long")
    ('string', 'bigint')
    """
    t = re.sub(r"\s+", "", spark_type.strip().lower())
    if re.fullmatch(r"(var)?char\(\d+\)", t):  # Spark reads CHAR/VARCHAR columns of Delta tables as strings
        return "string"
    return _PHYSICAL_ALIASES.get(t, t)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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
        if isinstance(value, _dt.date):  # a datetime or a date
            return value.isoformat()
        if isinstance(value, str):
            try:
                parse_time(value)
                return value.strip()
            except ValueError:
                pass
        raise ValueError(f"expected an ISO timestamp like 2024-01-31T12:00:00Z, got {value!r}")
    raise ValueError(f"logicalType {logical_type} has no comparable values")


def order_key(value: Any, logical_type: str) -> Any:
    """A key that orders checked values of ``logical_type``: timestamps as naive UTC datetimes."""
    if logical_type == "date":
        return _dt.date.fromisoformat(value)
    if logical_type == "timestamp":
        return parse_time(value).astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return value
