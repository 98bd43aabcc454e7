"""Column and table names reach Spark quoted, never pasted raw into SQL."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def quote_name(name: str) -> str:
    """Backtick-quote one name part so any character (dot, space, backtick) is taken literally."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    """A column by its literal name: dots and spaces are part of the name, not a path."""
    return F.col(quote_name(name))
