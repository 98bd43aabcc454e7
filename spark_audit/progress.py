"""Console progress per phase (reading, profiling, comparing, writing), on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()

    def note(self, message: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            print(f"[spark-audit {elapsed:7.1f}s] {message}", file=self.stream, flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.monotonic()
        self.note(f"{name} ...")
        yield
        self.note(f"{name} done in {time.monotonic() - t:.1f}s")


QUIET = Progress(enabled=False)
