"""spark-audit: batch audits of ML feature and prediction tables on Spark + Delta."""

__version__ = "0.1.0"

from spark_audit.errors import AuditError, SpecError  # noqa: E402

__all__ = ["AuditError", "SpecError", "__version__"]
