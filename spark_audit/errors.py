"""Exception types. Every error a user can cause says what was wrong and where."""

from __future__ import annotations

# The exit codes, the one table of them (the CLI, the jobs and the docs read it from here)
EXIT_OK, EXIT_FINDINGS, EXIT_SPEC, EXIT_DATA = 0, 1, 2, 3
EXIT_CODES = {
    EXIT_OK: "ok: no finding of severity error or critical",
    EXIT_FINDINGS: "a finding of severity error or critical; for `gate`: the candidate failed the gate",
    EXIT_SPEC: "the spec, the contract or the command line is invalid",
    EXIT_DATA: "a data or infrastructure problem (no rows, a missing column or reference, MLflow unreachable)",
}


class AuditError(Exception):
    """Base class for errors spark-audit raises on purpose (bad input, missing data)."""

    exit_code = EXIT_DATA


class SpecError(AuditError):
    """An audit spec or contract file is invalid: names the file, key path and expectation."""

    exit_code = EXIT_SPEC

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        where = ""
        if file:
            where += f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class DataError(AuditError):
    """The data does not allow the audit: missing table or column, empty input."""


class EmptyWindowError(DataError):
    """No rows in the audited range."""


class ReferenceError_(AuditError):
    """A reference profile could not be found or read."""


class TrackingError(AuditError):
    """The MLflow tracking server could not be reached or refused a call."""
