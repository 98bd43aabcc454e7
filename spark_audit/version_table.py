"""Every model version side by side, from the result tables: ``spark-audit compare`` and the notebook.

Health first: each version's status (the worst open, unsuppressed incident of its newest audit), its open
incidents, findings per severity over its audited windows, windows with a drift finding, the watched
quality metrics (last window against the reference), contract failures, the gate. The ML Test Score's
rubric is coverage (how many monitoring tests run), shown apart. Read without Spark when the tables are
a folder (``spark_audit.readback``); metastore tables need ``spark``.

JSON keys are snake_case identifiers and numbers are numbers (``version_json``); text adapts to the
terminal's width, leaving out the least telling columns first.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pandas as pd

from spark_audit.findings import SEVERITIES, exit_code
from spark_audit.readback import complete_frames, read_frame
from spark_audit.result import version_order
from spark_audit.rubric import BY_ID as RUBRIC_BY_ID
from spark_audit.rubric import TESTS as RUBRIC_TESTS
from spark_audit.store import GATE_SUFFIX
from spark_audit.timeutil import iso_utc

NO_VERSION = "-"  # rows of no model version
DRIFT_FINDINGS = ("drift", "dataset_drift", "multivariate_drift")  # the kinds a window's distribution is judged by
_MARK = {s: s.upper() if exit_code(s) else s for s in SEVERITIES}
# (key, header, priority): the text table leaves out the highest priority numbers first when it is too wide
COLUMNS = (("status", "status", 0), ("open_incidents", "open incidents", 0), ("last_window", "last window", 1),
           ("windows", "windows", 2), ("rows", "rows", 3), ("critical", "critical", 1), ("error", "error", 1),
           ("warning", "warning", 2), ("info", "info", 4), ("drift_windows", "drift windows", 2),
           ("contract_failures", "contract failures", 3), ("gate", "gate", 1), ("audit_runs", "audit runs", 5))


def _version_label(v) -> str:
    return NO_VERSION if v is None or v != v else str(v)


def version_table(output, *, model: str | None = None, watched: tuple[str, ...] = (), spark=None) -> dict:
    """``{"model", "audits", "versions": [row per version], "metrics", "rubric", "rubric_tests"}``; without
    complete audits ``versions`` is empty and ``message`` says why. A row: ``version``, ``status``,
    ``open_incidents``, ``last_window``, ``windows``, ``rows``, a count per severity, ``drift_windows``,
    ``<metric>_last`` / ``<metric>_reference`` per watched metric, ``contract_failures``, ``gate``
    (``{"verdict", "champion"}``), ``ml_test_score`` (``{"points", "tests", "passed", "failed"}``),
    ``audit_runs``."""
    t = complete_frames(output, {
        "audit_runs": (), "profile_metrics": ("slice", "row_count"),
        "findings": ("slice", "kind", "severity"),
        "performance_metrics": ("slice", "metric", "value", "reference_value"),
        "contract_violations": ("slice", "passed"),
        "rubric": ("test_id", "test", "status", "points", "in_score", "evidence")}, spark)
    runs = t["audit_runs"]
    gates = None
    if runs is not None:  # a gate's run row (``<audit>:gate``) is not an audit of the version
        is_gate = runs["audit_name"].str.endswith(GATE_SUFFIX)
        gates, runs = runs[is_gate], runs[~is_gate]
    if model and runs is not None:
        runs = runs[runs["model_name"] == model]
        gates = gates[gates["model_name"] == model]
    table: dict[str, Any] = {"model": model, "audits": [] if runs is None else sorted(runs["audit_name"].unique()),
                             "versions": [], "metrics": list(watched)}
    if runs is None or runs.empty:
        table["message"] = f"no complete audits under {output.path or output.database}" + (
            f" of model {model!r}" if model else "")
        return table

    def mine(name: str, overall: bool = True):
        df = t[name]
        if df is None:
            return None
        df = df[df["audit_name"].isin(table["audits"])].assign(_v=lambda d: d["model_version"].map(_version_label))
        return df[df["slice"].isna()] if overall else df

    # a version is any the rows name; an audit with one reference for all versions has runs of no version
    runs = runs.assign(_v=runs["model_version"].map(_version_label)).sort_values("finished_at")
    prof = mine("profile_metrics")
    found = mine("findings", overall=False)
    if found is not None:  # a table-level finding of a one-version audit is that version's
        run_version = dict(zip(runs["audit_run_id"], runs["_v"], strict=True))
        inherited = found["audit_run_id"].map(run_version).fillna(NO_VERSION)
        found = found.assign(_v=found["_v"].where(found["_v"] != NO_VERSION, inherited))
    seen = set(runs["_v"]) | (set() if prof is None else set(prof["_v"]))
    named = {v for v in seen if v != NO_VERSION}
    rows = {v: {"version": v, "status": None, "open_incidents": 0, "audit_runs": 0, **dict.fromkeys(SEVERITIES, 0),
                "drift_windows": 0} for v in (named or seen)}
    for v, row in rows.items():
        by_rows = set() if prof is None else set(prof.loc[prof["_v"] == v, "audit_run_id"])
        theirs = runs[(runs["_v"] == v) | runs["audit_run_id"].isin(by_rows)]
        row["audit_runs"] = len(theirs)
        if theirs.empty:
            continue
        newest = theirs.iloc[-1]  # its verdict; of this version's findings when the run audited several
        if newest["_v"] == v or found is None:
            row["status"] = newest["worst_severity"] or "ok"
        else:
            own = found[(found["audit_run_id"] == newest["audit_run_id"]) & (found["_v"] == v)]["severity"]
            row["status"] = max(own, key=SEVERITIES.index, default="ok")

    def put(version, **values):
        if version in rows:
            rows[version].update(values)

    if prof is not None:  # rows and windows: the largest column count per window (all rows, no slice)
        per_window = prof.groupby(["_v", "window_start"])["row_count"].max().reset_index()
        for version, w in per_window.groupby("_v"):
            put(version, windows=len(w), rows=int(w["row_count"].sum()),
                last_window=iso_utc(w["window_start"].max())[:10])
    if found is not None:
        for version, f in found.groupby("_v"):
            put(version, **{s: int((f["severity"] == s).sum()) for s in SEVERITIES},
                drift_windows=int(f.loc[f["kind"].isin(DRIFT_FINDINGS), "window_start"].nunique()))
    perf = mine("performance_metrics")
    if perf is not None and watched:
        perf = perf[perf["metric"].isin(watched) & perf["value"].notna()].sort_values("window_start")
        for (version, metric), m in perf.groupby(["_v", "metric"]):
            last = m.iloc[-1]
            ref = last["reference_value"]
            put(version, **{f"{metric}_last": float(last["value"]),
                            f"{metric}_reference": None if ref != ref else float(ref)})
    cv = mine("contract_violations")
    if cv is not None:
        for version, c in cv[cv["passed"].eq(False)].groupby("_v"):
            put(version, contract_failures=len(c))
    _open_incidents(output, table["audits"], rows, spark)
    table["rubric"], table["rubric_tests"] = _rubric_by_version(t.get("rubric"), runs, rows)
    for v, cells in table["rubric"].items():
        put(v, ml_test_score=cells["score"])
    if gates is not None and not gates.empty:
        for v, g in gates.assign(_v=gates["model_version"].map(_version_label)).sort_values("finished_at") \
                .groupby("_v"):
            last = g.iloc[-1]
            put(v, gate={"verdict": "pass" if last["exit_code"] == 0 else "fail",
                         "champion": str(last["reference_uri"]).rsplit("/", 1)[-1]})
    table["versions"] = [rows[v] for v in sorted(rows, key=version_order)]
    return table


def _open_incidents(output, audits: list[str], rows: dict[str, dict], spark) -> None:
    """Each version's open incidents (their latest state), without those acknowledged or marked not an
    issue; the worst of them is the version's status when incidents are kept."""
    inc = read_frame(output, "incidents", spark)
    if inc is None or inc.empty:
        return
    acks = read_frame(output, "incident_acks", spark)
    quiet: set[str] = set()
    if acks is not None and not acks.empty:
        now = pd.Timestamp.now(tz="UTC")
        latest = acks.sort_values("at").groupby("incident_id").tail(1)
        for _, a in latest.iterrows():
            until = a["until"]
            if a["action"] == "not_an_issue" or (a["action"] == "ack" and (until != until or until is None
                                                                             or _utc(until) > now)):
                quiet.add(a["incident_id"])
    live = inc[inc["audit_name"].isin(audits) & (inc["status"] == "open") & ~inc["incident_id"].isin(quiet)]
    for v, g in live.assign(_v=live["model_version"].map(_version_label)).groupby("_v"):
        if v in rows:
            rows[v]["open_incidents"] = len(g)
            rows[v]["status"] = max(g["severity"], key=SEVERITIES.index)
    for row in rows.values():
        if row["open_incidents"] == 0 and row["status"] is not None:
            row["status"] = "ok"


def _utc(ts):
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _rubric_by_version(rub, runs, rows) -> tuple[dict, dict]:
    """Per version, its newest audit's rubric: ``{version: {test_id: status, "score": {...}}}``, and the
    tests' titles in order."""
    if rub is None or rub.empty:
        return {}, {}
    fin = dict(zip(runs["audit_run_id"], runs["finished_at"], strict=True))
    rub = rub.assign(_v=rub["model_version"].map(_version_label), _fin=rub["audit_run_id"].map(fin))
    rub = rub[rub["_fin"].notna()]
    out, titles = {}, {}
    for v, r in rub.groupby("_v"):
        if v not in rows:
            continue
        newest = r[r["audit_run_id"] == r.sort_values("_fin").iloc[-1]["audit_run_id"]]
        cells: dict[str, Any] = dict(zip(newest["test_id"], newest["status"], strict=True))
        scored = newest[newest["in_score"]]
        cells["score"] = {"points": float(scored["points"].sum()), "tests": int(len(scored)),
                          "passed": int((scored["status"] == "passed").sum()),
                          "failed": int((scored["status"] == "failed").sum())}
        out[v] = cells
        titles.update(dict(zip(newest["test_id"], newest["test"], strict=True)))
    order = [t.id for t in RUBRIC_TESTS if t.id in titles]
    return out, {k: titles[k] for k in order}


def spec_version_table(spec, *, model: str | None = None, spark=None) -> dict:
    """``version_table`` of an audit spec: its output, its model (or ``model``), its watched metrics."""
    return version_table(spec.output, model=model or spec.model.name,
                         watched=spec.quality.watched() if spec.quality else (), spark=spark)


def version_json(table: dict) -> dict:
    """The table as ``compare --format json`` prints it (JSON-safe: NaN as None, timestamps as text)."""
    return json.loads(json.dumps(table, default=str).replace("NaN", "null"))


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and "verdict" in value:
        return f"{value['verdict']} vs {value['champion']}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _MARK.get(value, str(value)) if isinstance(value, str) else str(value)


def compare_text(table: dict, width: int | None = None) -> str:
    """``version_table`` as text, fitted to ``width`` characters (default: the terminal's)."""
    if not table["versions"]:
        return table["message"]
    width = width or shutil.get_terminal_size((120, 24)).columns
    metrics = [(f"{m}", m) for m in table.get("metrics", [])]
    cols = [(key, head, prio) for key, head, prio in COLUMNS]
    cols[3:3] = [(m, f"{m} last/ref", 1) for _, m in metrics]
    versions = table["versions"]

    def cell(v: dict, key: str) -> str:
        if any(key == m for _, m in metrics):
            last, ref = v.get(f"{key}_last"), v.get(f"{key}_reference")
            return "-" if last is None else f"{last:.3f}/" + ("-" if ref is None else f"{ref:.3f}")
        return _cell(v.get(key))

    def render(keep):
        widths = {k: max(len(h), *(len(cell(v, k)) for v in versions)) for k, h, _ in keep}
        head = f"{'version':<8} " + " ".join(f"{h:>{widths[k]}}" for k, h, _ in keep)
        body = [f"{v['version']:<8} " + " ".join(f"{cell(v, k):>{widths[k]}}" for k, _, _ in keep) for v in versions]
        return [head, *body]

    keep = list(cols)
    lines = render(keep)
    while max(len(x) for x in lines) > width and any(p > 0 for _, _, p in keep):
        keep.remove(max((c for c in keep if c[2] > 0), key=lambda c: (c[2], cols.index(c))))
        lines = render(keep)
    out = [f"model {table['model'] or '(any)'}: audits {', '.join(table['audits'])}", *lines,
           "status: the worst open incident of the version's newest audit (acknowledged ones left out); findings "
           "per severity and drift windows over its audited windows"]
    if table.get("rubric"):
        out += ["", *_rubric_text(table, width)]
    return "\n".join(out)


def _rubric_text(table: dict, width: int) -> list[str]:
    versions = [v["version"] for v in table["versions"]]
    cw = max(len(t) for t in (*versions, "not measured"))
    label_w = max(24, min(64, width - (cw + 1) * len(versions)))
    lines = ["ML Test Score monitoring tests (Breck et al. 2017), each version's newest audit: coverage, not health",
             f"{'test':<{label_w}}" + "".join(f" {v:>{cw}}" for v in versions)]
    for test_id, title in table["rubric_tests"].items():
        test = RUBRIC_BY_ID.get(test_id)
        label = f"{test.short}: {title}" if test and test.short else title
        label = label if len(label) <= label_w - 1 else label[:label_w - 4] + "..."
        lines.append(f"{label:<{label_w}}" + "".join(
            f" {table['rubric'].get(v, {}).get(test_id, '-'):>{cw}}" for v in versions))

    def score(v: str) -> str:
        s = table["rubric"].get(v, {}).get("score")
        return "-" if not s else f"{s['points']:g}/{s['tests']}"

    lines.append(f"{'coverage (1 point per automated test)':<{label_w}}" + "".join(f" {score(v):>{cw}}"
                                                                               for v in versions))
    return lines


def compare_versions(spec, *, model: str | None = None, spark=None, width: int | None = None) -> str:
    """``spec_version_table`` as text."""
    return compare_text(spec_version_table(spec, model=model, spark=spark), width)
