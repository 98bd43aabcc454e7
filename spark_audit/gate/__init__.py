"""Before release: a candidate model version against the champion, on the same labelled rows.

``scan`` (the one bootstrap scan), ``decide`` (the math and the rules), ``result`` (the outcome and its
text), ``record`` (Delta and MLflow), ``run`` (the whole gate, ``run_gate``).
"""

from spark_audit.gate.decide import (
           GateRow,
           Interval,
           check_evidence,
           decide,
           evaluate,
           gate_metrics,
           paired_interval,
           verdict,
)
from spark_audit.gate.result import GateResult, summary
from spark_audit.gate.run import run_gate
from spark_audit.gate.scan import POISSON_CDF, REP, WEIGHT, replicated, scan, sides

__all__ = ["POISSON_CDF", "REP", "WEIGHT", "GateResult", "GateRow", "Interval", "check_evidence", "decide",
           "evaluate", "gate_metrics", "paired_interval", "replicated", "run_gate", "scan", "sides", "summary",
           "verdict"]
