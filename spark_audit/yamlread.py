"""Reading YAML into typed objects: one loader and one reader base for the spec and the contracts.

The loader reports malformed YAML with its line and key path and refuses duplicate keys, which
``yaml.safe_load`` would silently resolve to the last value. The reader base raises
``SpecError`` naming the file, the key path (``schema[0].properties[2].logicalType``) and what
was expected, with a did-you-mean hint for unknown keys.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from spark_audit.errors import SpecError

# libyaml's parser where PyYAML was built with it (the wheels are): the same documents, 5-10x faster on a
# contract of thousands of lines
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | Path, what: str) -> Any:
    """The document of a YAML file; ``what`` names it in errors ("audit spec", "contract")."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read {what}: {exc.strerror or exc}", file=str(p)) from None
    return loads_yaml(text, file=str(p))


def loads_yaml(text: str, *, file: str) -> Any:
    """The document of YAML text, refusing malformed YAML and duplicate keys with their key path."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"malformed YAML{where}: {problem}", file=file, key=_yaml_scan(text)[0] or None) from None
    duplicate = _yaml_scan(text)[1]
    if duplicate is not None:
        raise SpecError(f"duplicate key at line {duplicate[1]}", file=file, key=duplicate[0])
    return data


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
        for ev in yaml.parse(text, Loader=_LOADER):
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


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)




def describe(value: Any) -> str:
    """What a YAML value is, in words, for an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


class KeyPathReader:
    """Typed reads from a JSON-like document; every error names the file and the key path."""

    def __init__(self, file: str | None):
        self.file = file

    def fail(self, path: str, message: str) -> SpecError:
        return SpecError(message, file=self.file, key=path or None)

    def mapping(self, value: Any, path: str, what: str = "a mapping") -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected {what}, got {describe(value)}")
        return value

    def seq(self, value: Any, path: str, what: str = "a list") -> Sequence[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected {what}, got {describe(value)}")
        return value

    def keys(self, m: Mapping[str, Any], path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> None:
        """Keys of a mapping the official schema leaves open (rule arguments, option values...)."""
        for key in m:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                listed = f"; allowed keys: {', '.join(allowed)}" if allowed else "; no keys are allowed here"
                raise self.fail(join(path, key), f"unknown key{hint}{listed}")
        for key in required:
            if m.get(key) is None:
                raise self.fail(join(path, key), "required key is missing")

    def string(self, m: Mapping[str, Any], key: str, path: str, *, required: bool = False,
               choices: Sequence[str] | None = None) -> str | None:
        value = m.get(key)
        p = join(path, key)
        if value is None:
            if required:
                raise self.fail(p, "required key is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(p, f"expected a non-empty string, got {value!r}" + (
                " (quote it)" if is_number(value) else ""))
        if choices is not None and value not in choices:
            raise self.fail(p, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, value: Any, path: str, *, lo: float | None = None, hi: float | None = None) -> float:
        if not is_number(value) or (isinstance(value, float) and math.isnan(value)):
            raise self.fail(path, f"expected a number, got {value!r}")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise self.fail(path, f"expected a number in [{lo}, {hi}], got {value!r}")
        return value

    def count(self, value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(path, f"expected a non-negative integer, got {value!r}")
        return value

