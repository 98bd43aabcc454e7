"""Reading a contract's values: the key-path reader's checks that the rule kinds' readers share
(``spark_audit.contract.rules``), below the contract reader that dispatches to them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from spark_audit.contract.logical_types import check_value
from spark_audit.yamlread import KeyPathReader


class ValueReader(KeyPathReader):
    """A key-path reader with the value checks of contract options."""

    def value(self, v: Any, path: str, ltype: str) -> Any:
        try:
            return check_value(v, ltype)
        except ValueError as exc:
            raise self.fail(path, f"{exc} for logicalType {ltype}") from None

    def ordered_value(self, v: Any, path: str, ltype: str) -> Any:
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            raise self.fail(path, f"a bound must be finite, got {v!r}")
        return self.value(v, path, ltype)

    def need_type(self, opts: Mapping[str, tuple[Any, str]], types: Sequence[str], ltype: str) -> None:
        """Options given (name -> (value, key path)) must be for a property of one of ``types``."""
        if ltype not in types:
            option, (_, path) = next(iter(opts.items()))
            raise self.fail(path, f"{option} needs logicalType {' or '.join(types)}, not {ltype}")

    def check_regex(self, pattern: str, path: str) -> None:
        """Best-effort check: Python's ``re`` reads most Java patterns; ``\\p{..}`` it does not."""
        try:
            re.compile(pattern)
        except re.error as exc:
            if "\\p" in pattern or "\\P" in pattern:
                return
            raise self.fail(path, f"invalid regular expression {pattern!r}: {exc}") from None
