"""The contract rules: one table, :data:`RULES`, with one :class:`RuleKind` per kind of rule.

An entry says everything about its kind, and nothing else lists kinds:

* ``name``: the ``rule`` column of ``contract_violations`` and, for a quality rule, its
  ``metric``;
* ``source``: where in an ODCS contract it is declared. A property declares its checks
  through keys and options (``declared``, reading the options ``options`` names from
  ``logicalTypeOptions`` or ``customProperties`` with ``read_options``); a ``quality[]``
  entry selects a kind by ``quality``: ``library`` (ODCS ``metric``), ``custom`` (a
  spark-audit extension, ``type: custom, engine: spark-audit, implementation: {metric}``) or
  ``sql`` (``type: sql``), at the ``levels`` it is allowed at;
* ``arguments`` / ``read_arguments``: the arguments it takes and their validation;
* ``measure``: what its aggregate value is, how groups merge and how a value is read
  (:data:`spark_audit.contract.results.MEASURES`, which also gives the allowed units);
* ``build``: the row condition (measure ``count``), aggregate (``rowCount``,
  ``freshness``) or key columns (``duplicates``) it compiles to; raises :class:`Skip` when
  the table cannot answer it;
* ``describe``: what failing rows have, for messages; ``severity``: the default of a
  quality rule (declared checks take the property's ``severity``).

The reader's accepted metrics, custom property names and argument names, the compiler's
dispatch and the result reading all come from here: adding a rule is one entry and its
functions (a new property option also needs its field on
:class:`~spark_audit.contract.model.Property`). Everything compiles to DataFrame API and
built-in SQL functions (Spark Connect safe); values go in as typed literals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    FloatType,
    NumericType,
)

from spark_audit.contract import sql
from spark_audit.contract.columns import (
    TIME_TYPES,
    Site,
    Skip,
    any_of,
    as_string,
    fmt,
    is_inf,
    lit,
    outside,
    preview,
)
from spark_audit.contract.logical_types import ORDERED_TYPES, VALUE_TYPES, order_key
from spark_audit.contract.model import ZERO_ROWS, Property, SpecialValue, Threshold
from spark_audit.contract.results import MEASURES
from spark_audit.contract.values import ValueReader
from spark_audit.errors import SpecError
from spark_audit.names import col as _col

LEVELS = ("property", "table")
QUALITY_TYPES = ("library", "custom", "sql")  # how a quality[] entry selects a kind
SEVERITY_OPTION = "severity"  # the customProperty setting the severity of a property's declared checks

# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Declared:
    """A check a property declares by a key or an option (``required: true``, ``minimum``...)."""

    suffix: str  # the rule id is "<column>.<suffix>"
    path: str
    threshold: Threshold = ZERO_ROWS
    arguments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


Build = Callable[[Site, Mapping[str, Any], str], Any]


@dataclass(frozen=True)
class RuleKind:
    """One kind of contract rule (see the module docstring)."""

    name: str
    source: str
    measure: str  # a key of MEASURES
    describe: Callable[[Mapping[str, Any]], str]
    build: Build
    levels: tuple[str, ...] = ("property",)
    quality: str | None = None  # library | custom | sql: selectable by a quality[] entry
    arguments: tuple[str, ...] = ()
    read_arguments: Callable[[ValueReader, Mapping[str, Any], str, str, str], dict[str, Any]] | None = None
    options: tuple[str, ...] = ()
    read_options: Callable[[ValueReader, Mapping[str, tuple[Any, str]], str], dict[str, Any]] | None = None
    declared: Callable[[Property], Iterable[Declared]] | None = None
    column: Callable[[Site, Mapping[str, Any], str], str | None] | None = None
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"rule kind {self.name}: unknown measure {self.measure!r}")
        if self.quality is not None and self.quality not in QUALITY_TYPES:
            raise ValueError(f"rule kind {self.name}: quality must be one of {QUALITY_TYPES}")
        if not set(self.levels) <= set(LEVELS):
            raise ValueError(f"rule kind {self.name}: levels must be within {LEVELS}")

    @property
    def units(self) -> tuple[str, ...]:
        return MEASURES[self.measure].units


RULES: dict[str, RuleKind] = {}


def register(kind: RuleKind) -> RuleKind:
    """Add ``kind`` to :data:`RULES` (its name must be new)."""
    if kind.name in RULES:
        raise ValueError(f"rule kind {kind.name!r} is already registered")
    RULES[kind.name] = kind
    return kind


def quality_kinds(quality: str, level: str | None = None) -> list[str]:
    """Names a ``quality[]`` entry of type ``quality`` may select (at ``level``), in table order."""
    return [k.name for k in RULES.values() if k.quality == quality and (level is None or level in k.levels)]


def option_names() -> tuple[str, ...]:
    """The property options spark-audit reads (from logicalTypeOptions or customProperties)."""
    return tuple(o for k in RULES.values() for o in k.options)


def custom_property_names() -> tuple[str, ...]:
    """The property ``customProperties`` names spark-audit reads."""
    return (*option_names(), SEVERITY_OPTION)


# --------------------------------------------------------------------------- property checks


def _declare(attr: str, suffix: str, option: str) -> Callable[[Property], Iterable[Declared]]:
    """The check of a percentage option, e.g. ``maxNanPercent`` -> ``nanValues``."""
    def declared(p: Property) -> Iterable[Declared]:
        pct = getattr(p, attr)
        if pct is not None:
            yield Declared(suffix, f"{p.path}.{option}", Threshold("mustBeLessOrEqualTo", pct, "percent"))
    return declared


def _read_percent(attr: str) -> Callable[[ValueReader, Mapping[str, tuple[Any, str]], str], dict[str, Any]]:
    def read(reader: ValueReader, opts: Mapping[str, tuple[Any, str]], ltype: str) -> dict[str, Any]:
        reader.need_type(opts, ("number",), ltype)
        [(v, p)] = opts.values()
        return {attr: reader.number(v, p, lo=0, hi=100)}
    return read


def _float_check(what: str, make: Callable[[Column], Column]) -> Build:
    def build(site: Site, args: Mapping[str, Any], path: str) -> Column:
        col, dt = site.col(), site.dtype()
        if isinstance(dt, (FloatType, DoubleType)):
            return make(col)
        if isinstance(dt, NumericType):
            return F.lit(False)  # integers and decimals have no NaN or inf
        raise Skip(f"{what} is only defined for numeric columns, not {dt.simpleString()}")
    return build


def _read_specials(reader: ValueReader, opts: Mapping[str, tuple[Any, str]], ltype: str) -> dict[str, Any]:
    reader.need_type(opts, VALUE_TYPES, ltype)
    v, p = opts["specialValues"]
    specials: list[SpecialValue] = []
    for i, item in enumerate(reader.seq(v, p, "a list of {value, maxPercent|maxCount}")):
        ip = f"{p}[{i}]"
        im = reader.mapping(item, ip, "a mapping {value, maxPercent|maxCount}")
        reader.keys(im, ip, ("value", "maxPercent", "maxCount"), required=("value",))
        if ("maxPercent" in im) == ("maxCount" in im):
            raise reader.fail(ip, "give exactly one of maxPercent, maxCount")
        sv = reader.value(im["value"], f"{ip}.value", ltype)
        if any(s.value == sv for s in specials):
            raise reader.fail(f"{ip}.value", f"special value {sv!r} is listed twice")
        specials.append(SpecialValue(
            value=sv,
            max_percent=reader.number(im["maxPercent"], f"{ip}.maxPercent", lo=0, hi=100) if "maxPercent" in im
            else None,
            max_count=reader.count(im["maxCount"], f"{ip}.maxCount") if "maxCount" in im else None,
        ))
    return {"special_values": tuple(specials)}


def _declare_specials(p: Property) -> Iterable[Declared]:
    for s in p.special_values:
        threshold = (Threshold("mustBeLessOrEqualTo", s.max_percent, "percent") if s.max_percent is not None
                     else Threshold("mustBeLessOrEqualTo", s.max_count or 0, "rows"))
        yield Declared(f"specialValue[{s.value}]", f"{p.path}.specialValues", threshold, {"value": s.value})


def _read_range(reader: ValueReader, opts: Mapping[str, tuple[Any, str]], ltype: str) -> dict[str, Any]:
    """``minimum``/``maximum`` (inclusive) or ``exclusiveMinimum``/``exclusiveMaximum`` (the bound itself)."""
    reader.need_type(opts, ORDERED_TYPES, ltype)
    out: dict[str, Any] = {}
    for side in ("minimum", "maximum"):
        ex = "exclusive" + side[0].upper() + side[1:]
        if side in opts and ex in opts:
            raise reader.fail(opts[ex][1], f"give either {side} or {ex}, not both")
        key = ex if ex in opts else side if side in opts else None
        if key is not None:
            v, p = opts[key]
            if isinstance(v, bool):
                raise reader.fail(p, f"expected the bound itself (ODCS {ex} is a value), got {v!r}")
            out[side] = reader.ordered_value(v, p, ltype)
            out[f"exclusive_{side}"] = key == ex
    if "minimum" in out and "maximum" in out and order_key(out["minimum"], ltype) > order_key(out["maximum"], ltype):
        at = opts["maximum" if "maximum" in opts else "exclusiveMaximum"][1]
        raise reader.fail(at, f"maximum {out['maximum']!r} is below minimum {out['minimum']!r}")
    return out


def _declare_range(p: Property) -> Iterable[Declared]:
    if p.minimum is not None or p.maximum is not None:
        yield Declared("range", f"{p.path}.minimum/maximum", arguments={
            "minimum": p.minimum, "maximum": p.maximum,
            "exclusive_minimum": p.exclusive_minimum, "exclusive_maximum": p.exclusive_maximum})


def _describe_range(a: Mapping[str, Any]) -> str:
    lo = "-inf" if a.get("minimum") is None else fmt(a["minimum"])
    hi = "inf" if a.get("maximum") is None else fmt(a["maximum"])
    return f"values outside {'(' if a.get('exclusive_minimum') else '['}{lo}, {hi}" \
           f"{')' if a.get('exclusive_maximum') else ']'}"


def _build_range(site: Site, a: Mapping[str, Any], path: str) -> Column:
    return site.eligible() & outside(site.col(), site.dtype(), a.get("minimum"), a.get("maximum"),
                                      bool(a.get("exclusive_minimum")), bool(a.get("exclusive_maximum")))


def _read_allowed(reader: ValueReader, opts: Mapping[str, tuple[Any, str]], ltype: str) -> dict[str, Any]:
    reader.need_type(opts, VALUE_TYPES, ltype)
    v, p = opts["allowedValues"]
    if not isinstance(v, list) or not v:
        raise reader.fail(p, f"expected a non-empty list of values, got {v!r}")
    return {"allowed_values": tuple(reader.value(x, f"{p}[{i}]", ltype) for i, x in enumerate(v) if x is not None)}


def _read_pattern(reader: ValueReader, opts: Mapping[str, tuple[Any, str]], ltype: str) -> dict[str, Any]:
    reader.need_type(opts, ("string",), ltype)
    v, p = opts["pattern"]
    if not isinstance(v, str) or not v:
        raise reader.fail(p, f"expected a regular expression string, got {v!r}")
    reader.check_regex(v, p)
    return {"pattern": v}


def _read_length(reader: ValueReader, opts: Mapping[str, tuple[Any, str]], ltype: str) -> dict[str, Any]:
    reader.need_type(opts, ("string",), ltype)
    lo = reader.count(*opts["minLength"]) if "minLength" in opts else None
    hi = reader.count(*opts["maxLength"]) if "maxLength" in opts else None
    if lo is not None and hi is not None and lo > hi:
        raise reader.fail(opts["maxLength"][1], f"maxLength {hi} is below minLength {lo}")
    return {"min_length": lo, "max_length": hi}


def _declare_length(p: Property) -> Iterable[Declared]:
    if p.min_length is not None or p.max_length is not None:
        yield Declared("length", f"{p.path}.minLength/maxLength",
                       arguments={"minimum": p.min_length, "maximum": p.max_length})


def _build_length(site: Site, a: Mapping[str, Any], path: str) -> Column:
    n = F.char_length(as_string(site.col(), site.dtype()))
    bad = []
    if a.get("minimum") is not None:
        bad.append(n < F.lit(a["minimum"]))
    if a.get("maximum") is not None:
        bad.append(n > F.lit(a["maximum"]))
    return site.eligible() & any_of(bad)


# --------------------------------------------------------------------------- quality rules


def _read_missing(reader: ValueReader, args: Mapping[str, Any], path: str, level: str, ltype: str) -> dict[str, Any]:
    vp = f"{path}.missingValues"
    vals = reader.seq(args.get("missingValues", []), vp)
    return {"missingValues": tuple(reader.value(v, f"{vp}[{i}]", ltype) for i, v in enumerate(vals) if v is not None)}


def _build_missing(site: Site, a: Mapping[str, Any], path: str) -> Column:
    col, values = site.col(), a.get("missingValues", ())
    if not values:
        return col.isNull()
    return col.isNull() | col.isin(*[lit(v, site.dtype()) for v in values])


def _read_invalid(reader: ValueReader, args: Mapping[str, Any], path: str, level: str, ltype: str) -> dict[str, Any]:
    if not args:
        raise reader.fail(path, "invalidValues needs arguments.validValues, pattern, minimum or maximum")
    out: dict[str, Any] = {}
    for side in ("minimum", "maximum"):
        if side in args:
            if ltype not in ORDERED_TYPES:
                raise reader.fail(f"{path}.{side}", f"{side} needs logicalType {' or '.join(ORDERED_TYPES)}")
            out[side] = reader.ordered_value(args[side], f"{path}.{side}", ltype)
    if len(out) == 2 and order_key(out["minimum"], ltype) > order_key(out["maximum"], ltype):
        raise reader.fail(f"{path}.maximum", f"maximum {out['maximum']!r} is below {out['minimum']!r}")
    if "validValues" in args:
        vp = f"{path}.validValues"
        vals = reader.seq(args["validValues"], vp)
        if not vals:
            raise reader.fail(vp, "expected a non-empty list")
        out["validValues"] = tuple(reader.value(v, f"{vp}[{i}]", ltype) for i, v in enumerate(vals) if v is not None)
    if "pattern" in args:
        pat = reader.string(args, "pattern", path, required=True)
        assert pat is not None
        if ltype != "string":
            raise reader.fail(f"{path}.pattern", f"pattern needs logicalType string, not {ltype}")
        reader.check_regex(pat, f"{path}.pattern")
        out["pattern"] = pat
    return out


def _describe_invalid(a: Mapping[str, Any]) -> str:
    valid, pattern, lo, hi = a.get("validValues"), a.get("pattern"), a.get("minimum"), a.get("maximum")
    parts = ([f"not in {preview(valid)}"] if valid is not None else []) + (
        [f"not matching {pattern!r}"] if pattern is not None else []) + (
        [f"outside [{'-inf' if lo is None else fmt(lo)}, {'inf' if hi is None else fmt(hi)}]"]
        if lo is not None or hi is not None else [])
    return f"invalid values ({' or '.join(parts)})"


def _build_invalid(site: Site, a: Mapping[str, Any], path: str) -> Column:
    bad = []
    if a.get("validValues") is not None:
        bad.append(site.not_in(a["validValues"]))
    if a.get("pattern") is not None:
        bad.append(site.eligible() & ~as_string(site.col(), site.dtype()).rlike(a["pattern"]))
    if a.get("minimum") is not None or a.get("maximum") is not None:
        bad.append(site.eligible() & outside(site.col(), site.dtype(), a.get("minimum"), a.get("maximum")))
    return any_of(bad)


def _read_duplicates(reader: ValueReader, args: Mapping[str, Any], path: str, level: str, ltype: str) -> dict[str, Any]:
    if level == "property":
        if args:
            raise reader.fail(f"{path}.{next(iter(args))}", "duplicateValues takes no arguments on a property")
        return {}
    pp = f"{path}.properties"
    if "properties" not in args:
        raise reader.fail(pp, "required key is missing (the columns that together must be unique)")
    cols = reader.seq(args["properties"], pp)
    if not cols or not all(isinstance(c, str) for c in cols):
        raise reader.fail(pp, f"expected a non-empty list of property names, got {cols!r}")
    return {"properties": tuple(cols)}


def _read_freshness(reader: ValueReader, args: Mapping[str, Any], path: str, level: str, ltype: str) -> dict[str, Any]:
    col = reader.string(args, "property", path)
    return {"property": col} if col is not None else {}


def _freshness_column(site: Site, a: Mapping[str, Any], path: str) -> str:
    column = a.get("property") or site.timestamp_column
    if column is None:
        raise SpecError("freshness needs implementation.arguments.property (or a timestamp column in the audit "
                        "spec)", file=site.file, key=f"{path}.implementation.arguments.property")
    return column


def _build_freshness(site: Site, a: Mapping[str, Any], path: str) -> Column:
    column = _freshness_column(site, a, path)
    f = site.fields.get(column)
    if f is None:
        raise Skip(f"column {column!r} is missing from the table")
    if not isinstance(f.dataType, TIME_TYPES):
        raise Skip(f"freshness needs a date or timestamp column; {column!r} is {f.dataType.simpleString()}")
    return F.unix_micros(F.max(_col(f.name).cast("timestamp")))


for _kind in (
    # ---- declared by a property (in this order in a plan), severity: the property's
    RuleKind("required", "property: required: true", "count", lambda a: "null values",
             lambda site, a, path: site.col().isNull(),
             declared=lambda p: [Declared("required", f"{p.path}.required")] if p.required else []),
    RuleKind("duplicateValues", "property: unique: true; quality: metric duplicateValues (on a property, or on a "
             "table over arguments.properties)", "duplicates",
             lambda a: "duplicate keys" if "properties" in a else "duplicate values",
             lambda site, a, path: tuple(a.get("properties") or (site.column,)),
             levels=LEVELS, quality="library", arguments=("properties",), read_arguments=_read_duplicates,
             declared=lambda p: [Declared("unique", f"{p.path}.unique")] if p.unique else [],
             column=lambda site, a, path: site.column or ", ".join(a["properties"])),
    RuleKind("nanValues", "property option maxNanPercent (logicalType number): at most this % of rows NaN",
             "count", lambda a: "NaN values", _float_check("NaN", F.isnan), options=("maxNanPercent",),
             read_options=_read_percent("max_nan_percent"),
             declared=_declare("max_nan_percent", "nanValues", "maxNanPercent")),
    RuleKind("infValues", "property option maxInfPercent (logicalType number): at most this % of rows +/-inf",
             "count", lambda a: "infinite values", _float_check("infinity", is_inf), options=("maxInfPercent",),
             read_options=_read_percent("max_inf_percent"),
             declared=_declare("max_inf_percent", "infValues", "maxInfPercent")),
    RuleKind("specialValue", "property option specialValues: [{value, maxPercent|maxCount}], sentinels allowed "
             "up to a share of rows", "count", lambda a: f"the special value {fmt(a['value'])}",
             lambda site, a, path: site.col() == lit(a["value"], site.dtype()), options=("specialValues",),
             read_options=_read_specials, declared=_declare_specials),
    RuleKind("range", "property options minimum, maximum, exclusiveMinimum, exclusiveMaximum", "count",
             _describe_range, _build_range, options=("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
             read_options=_read_range, declared=_declare_range),
    RuleKind("allowedValues", "property option allowedValues: the values allowed (nulls always are)", "count",
             lambda a: f"values not in {preview(a['values'])}", lambda site, a, path: site.not_in(a["values"]),
             options=("allowedValues",), read_options=_read_allowed,
             declared=lambda p: [Declared("allowedValues", f"{p.path}.allowedValues",
                                          arguments={"values": p.allowed_values})]
             if p.allowed_values is not None else []),
    RuleKind("pattern", "property option pattern: a regular expression (Java syntax, Spark rlike)", "count",
             lambda a: f"values not matching {a['pattern']!r}",
             lambda site, a, path: site.eligible() & ~as_string(site.col(), site.dtype()).rlike(a["pattern"]),
             options=("pattern",), read_options=_read_pattern,
             declared=lambda p: [Declared("pattern", f"{p.path}.pattern", arguments={"pattern": p.pattern})]
             if p.pattern is not None else []),
    RuleKind("length", "property options minLength, maxLength", "count",
             lambda a: f"lengths outside [{a['minimum'] if a.get('minimum') is not None else 0}, "
                       f"{a['maximum'] if a.get('maximum') is not None else 'inf'}]",
             _build_length, options=("minLength", "maxLength"), read_options=_read_length, declared=_declare_length),
    # ---- quality[] entries, severity: the rule's (default below)
    RuleKind("nullValues", "quality: metric nullValues", "count", lambda a: "null values",
             lambda site, a, path: site.col().isNull(), quality="library"),
    RuleKind("missingValues", "quality: metric missingValues: nulls plus arguments.missingValues", "count",
             lambda a: "missing values (null values" + (f" or {preview(a['missingValues'])}"
                                                         if a.get("missingValues") else "") + ")",
             _build_missing, quality="library", arguments=("missingValues",), read_arguments=_read_missing),
    RuleKind("invalidValues", "quality: metric invalidValues: values outside arguments.validValues, not matching "
             "arguments.pattern or outside [arguments.minimum, arguments.maximum]", "count", _describe_invalid,
             _build_invalid, quality="library", arguments=("validValues", "pattern", "minimum", "maximum"),
             read_arguments=_read_invalid),
    RuleKind("sql", "quality: type sql: query is a Spark SQL boolean row expression; rows where it is false or "
             "null fail", "count", lambda a: f"`{a['query']}` false or null", sql.build_row_rule, levels=LEVELS,
             quality="sql", arguments=("query",), read_arguments=sql.read_row_rule),
    RuleKind("sqlQuery", "quality: type sql: query is a SELECT returning one value ({object}: the window's rows, "
             "{property}: the column), compared with the operator; one query per window", "value",
             lambda a: "the query's value", sql.build_value_rule, levels=LEVELS, quality="sql",
             arguments=("query",), read_arguments=sql.read_value_rule),
    RuleKind("rowCount", "quality: metric rowCount (table)", "rowCount", lambda a: "rows",
             lambda site, a, path: F.count(F.lit(1)), levels=("table",), quality="library"),
    RuleKind("freshness", "quality: type custom, engine spark-audit, implementation.metric freshness: the age of "
             "max(arguments.property) at the audit's now (table)", "freshness", lambda a: "age", _build_freshness,
             levels=("table",), quality="custom", arguments=("property",), read_arguments=_read_freshness,
             column=_freshness_column),
):
    register(_kind)


def catalogue() -> str:
    """The table of rule kinds, as text (kept in this module's docstring)."""
    lines = ["", "Rule kinds (generated from RULES)", "---------------------------------", ""]
    for k in RULES.values():
        lines.append(f"``{k.name}`` ({', '.join(k.levels)}; measure {k.measure}): {k.source}")
    return "\n".join(lines) + "\n"


__doc__ = (__doc__ or "") + catalogue()
