"""The structural check: a contract against the official ODCS JSON schema.

The schema is the one the ``open-data-contract-standard`` package ships (ODCS v3.1.0,
JSON Schema draft 2019-09; its ``apiVersion`` enum also admits v3.0.x). Every contract is
checked against it before spark-audit's own semantic checks (value types, regexes, rule
arguments, columns...). A failure becomes a :class:`~spark_audit.errors.SpecError` that
names the file, the key path in the reader's style (``schema[0].properties[2].logicalType``)
and, in plain words, what was expected: one error, the most relevant one (an unknown key
before what it caused, else the first in the file).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for

from spark_audit.errors import SpecError
from spark_audit.yamlread import describe  # noqa: F401  (re-exported)

SCHEMA_PACKAGE = "open_data_contract_standard"

Path = tuple[str | int, ...]


@functools.cache
def official_schema() -> dict[str, Any]:
    """The official ODCS JSON schema, as shipped by the ``open-data-contract-standard`` package."""
    text = resources.files(SCHEMA_PACKAGE).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validator(definition: str | None = None) -> Any:
    """The official schema's validator; of one of its ``$defs`` (``SchemaProperty``) when named."""
    schema = official_schema()
    if definition is not None:
        schema = {k: v for k, v in schema.items() if k not in ("properties", "required", "type", "allOf", "oneOf",
                                                              "anyOf", "additionalProperties",
                                                              "unevaluatedProperties", "if", "then", "else")}
        schema["$ref"] = f"#/$defs/{definition}"
    return validator_for(schema)(schema)


def key_path(parts: Sequence[str | int]) -> str:
    """``("schema", 0, "name")`` -> ``schema[0].name`` (the reader's style)."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else str(p)
    return out


def jsonable(data: Any, *, file: str | None = None, path: Path = ()) -> Any:
    """``data`` as JSON would hold it: dates and timestamps (YAML reads unquoted ones as such)
    become ISO strings. Raises SpecError for a mapping key that is not a string."""
    if isinstance(data, Mapping):
        out = {}
        for k, v in data.items():
            if not isinstance(k, str):
                raise SpecError(f"keys must be strings, got {k!r}", file=file, key=key_path(path) or None)
            out[k] = jsonable(v, file=file, path=(*path, k))
        return out
    if isinstance(data, list):
        return [jsonable(v, file=file, path=(*path, i)) for i, v in enumerate(data)]
    if isinstance(data, (_dt.date, _dt.datetime)):
        return data.isoformat()
    return data


@dataclass(frozen=True)
class Problem:
    """One way a document breaks the schema: where, what was expected, and the failing value."""

    path: Path
    message: str
    validator: str
    instance: Any = None
    unknown_key: bool = False

    @property
    def key(self) -> str:
        return key_path(self.path)


def problems(doc: Any) -> list[Problem]:
    """Every schema problem of ``doc`` (a JSON-like document), the most relevant first.

    Nested properties are validated level by level: the official schema's ``unevaluatedProperties``
    over conditional subschemas re-validates a property's children once per branch, so validating a
    document whole costs exponential time in its nesting depth (a 325-line contract nested 6 deep took
    70 s). Each property is validated against its own definition with its children replaced by empty
    stand-ins, and each child in turn: the same problems, in time linear in the document."""
    pending: list[tuple[Path, str, Any]] = []
    root = doc
    if isinstance(doc, Mapping) and isinstance(doc.get("schema"), list):
        root = dict(doc)
        root["schema"] = [
            {**obj, "properties": [_detach(p, ("schema", i, "properties", j), pending)
                                   for j, p in enumerate(obj["properties"])]}
            if isinstance(obj, Mapping) and isinstance(obj.get("properties"), list) else obj
            for i, obj in enumerate(doc["schema"])]
    found: dict[tuple[Path, str], Problem] = {}

    def collect(validator: Any, node: Any, prefix: Path) -> None:
        for error in validator.iter_errors(node):
            for p in _translate(validator, error):
                p = replace(p, path=(*prefix, *p.path))
                found.setdefault((p.path, p.message), p)

    collect(_validator(), root, ())
    while pending:
        path, definition, node = pending.pop()
        collect(_validator(definition), _detach(node, path, pending), path)
    order = _document_order(doc)

    def position(path: Path) -> float:
        while path not in order and path:
            path = path[:-1]
        return order.get(path, 0)

    return sorted(found.values(), key=lambda p: (not p.unknown_key, position(p.path), len(p.path)))


# a property's nested children, and the definition each is validated against
_NESTED = (("properties", "SchemaProperty"), ("items", "SchemaItemProperty"))


def _detach(node: Any, path: Path, pending: list[tuple[Path, str, Any]]) -> Any:
    """``node`` (a property) with its nested properties and items replaced by empty stand-ins (an empty
    list, an empty mapping: both valid), which go to ``pending`` to be validated on their own."""
    if not isinstance(node, Mapping):
        return node
    out = dict(node)
    children = node.get("properties")
    if isinstance(children, list):
        out["properties"] = []
        pending += [((*path, "properties", i), "SchemaProperty", c) for i, c in enumerate(children)]
    if isinstance(node.get("items"), Mapping):
        out["items"] = {}
        pending.append(((*path, "items"), "SchemaItemProperty", node["items"]))
    return out


def check(doc: Any, *, file: str | None = None, hint: Callable[[Problem], str] | None = None) -> None:
    """Raise SpecError for the most relevant schema problem of ``doc``; ``hint`` may add advice."""
    found = problems(doc)
    if found:
        best = found[0]
        extra = hint(best) if hint is not None else ""
        raise SpecError(best.message + extra, file=file, key=best.key or None)


# --------------------------------------------------------------------------- plain words

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}
_SHAPE = ("type", "required", "const", "enum")  # a branch of oneOf/anyOf that does not fit the value's shape


def _expected_types(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in names)


def _translate(validator: Any, error: ValidationError) -> Iterator[Problem]:
    path: Path = tuple(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind in ("additionalProperties", "unevaluatedProperties"):
        if not isinstance(instance, Mapping):
            return
        declared = (list(error.schema.get("properties", {})) if kind == "additionalProperties"
                    else _declared_keys(validator, error.schema, instance))
        for key in instance:
            if key not in declared:  # keys that are declared failed elsewhere: that error says why
                close = difflib.get_close_matches(str(key), declared, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                allowed = f"; allowed keys: {', '.join(declared)}" if declared else ""
                yield Problem((*path, key), f"unknown key{hint}{allowed}", kind, instance, unknown_key=True)
    elif kind == "required":
        for key in value:
            if isinstance(instance, Mapping) and key not in instance:
                yield Problem((*path, key), "required key is missing", kind, instance)
    elif kind in ("oneOf", "anyOf"):
        yield from _alternatives(validator, error, path)
    else:
        yield Problem(path, _message(kind, value, instance, error), kind, instance)


def _alternatives(validator: Any, error: ValidationError, path: Path) -> Iterator[Problem]:
    """A oneOf/anyOf failure: the errors inside the branches that fit the value's shape, or
    what the branches expect (e.g. exactly one of the operators mustBe, mustNotBe, ...)."""
    branches = [b for b in error.validator_value if isinstance(b, Mapping)]
    keys = [b["required"][0] for b in branches if len(b.get("required", ())) == 1]
    instance = error.instance
    if not error.context:  # oneOf: valid under more than one branch
        present = [k for k in keys if isinstance(instance, Mapping) and k in instance]
        if len(keys) == len(branches) and len(present) > 1:
            yield Problem((*path, present[1]), f"expected exactly one of {', '.join(keys)}; got "
                                               f"{', '.join(present)}", error.validator, instance)
        else:
            yield Problem(path, "matches more than one of the allowed forms", error.validator, instance)
        return
    inner = [c for c in error.context if not (tuple(c.absolute_path) == path and c.validator in _SHAPE)]
    if inner:
        for c in inner:
            yield from _translate(validator, c)
    elif keys and len(keys) == len(branches):
        yield Problem(path, f"expected exactly one of {', '.join(keys)}; got none", error.validator, instance)
    else:
        types = [b["type"] for b in branches if isinstance(b.get("type"), str)]
        what = _expected_types(types) if len(types) == len(branches) else "one of the allowed forms"
        yield Problem(path, f"expected {what}, got {describe(instance)}", error.validator, instance)


def _message(kind: str, value: Any, instance: Any, error: ValidationError) -> str:
    got = f"got {instance!r}"
    if kind == "type":
        quote = " (quote it)" if "string" in ([value] if isinstance(value, str) else value) \
            and isinstance(instance, (int, float, bool)) else ""
        return f"expected {_expected_types(value)}, got {describe(instance)}{quote}"
    if kind == "enum":
        return f"expected one of {', '.join(map(str, value))}, {got}"
    if kind == "const":
        return f"expected {value!r}, {got}"
    if kind == "pattern":
        return f"expected text matching {value}, {got}"
    if kind == "uniqueItems":
        return f"expected distinct items, {got}"
    if kind in ("minItems", "maxItems"):
        word = "at least" if kind == "minItems" else "at most"
        return f"expected {word} {value} item{'s' if value != 1 else ''}, got {len(instance)}"
    if kind in ("minLength", "maxLength"):
        word = "at least" if kind == "minLength" else "at most"
        return f"expected {word} {value} character{'s' if value != 1 else ''}, {got}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"expected a number {bounds[kind]} {value}, {got}"
    return error.message


# --------------------------------------------------------------------------- schema walking


def _resolve(ref: str) -> Mapping[str, Any]:
    """A local ``#/...`` reference of the official schema (the only kind it uses)."""
    node: Any = official_schema()
    if not ref.startswith("#/"):
        return {}
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _declared_keys(validator: Any, schema: Any, instance: Any, depth: int = 0) -> list[str]:
    """The keys ``schema`` declares for ``instance``: its properties and those of the subschemas
    that apply (``$ref``, ``allOf``, every ``oneOf``/``anyOf`` branch, ``then`` when ``if`` holds)."""
    if not isinstance(schema, Mapping) or depth > 32:
        return []
    keys = list(schema.get("properties", {}))
    subs: list[Any] = []
    if "$ref" in schema:
        subs.append(_resolve(schema["$ref"]))
    for word in ("allOf", "oneOf", "anyOf"):
        subs.extend(schema.get(word, ()))
    if "if" in schema:
        subs.append(schema.get("then" if validator.evolve(schema=schema["if"]).is_valid(instance) else "else"))
    for sub in subs:
        keys.extend(_declared_keys(validator, sub, instance, depth + 1))
    return list(dict.fromkeys(keys))


def _document_order(doc: Any) -> dict[Path, int]:
    order: dict[Path, int] = {}

    def walk(node: Any, path: Path) -> None:
        order[path] = len(order)
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(doc, ())
    return order
