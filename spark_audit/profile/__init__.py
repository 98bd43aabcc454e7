"""Column profiles: aggregate expressions, mergeable states, serialisation."""

from spark_audit.profile.exprs import ColumnSpec, resolve_columns
from spark_audit.profile.profiler import Grouping, GroupResult, overall_groups, profile_groups
from spark_audit.profile.state import Bins, ColumnProfile, GroupKey, TableProfile, merge_all

__all__ = [
    "Bins", "ColumnProfile", "ColumnSpec", "GroupKey", "GroupResult", "Grouping", "TableProfile",
    "merge_all", "overall_groups", "profile_groups", "resolve_columns",
]
