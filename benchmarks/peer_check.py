"""Cross-check our drift statistics and label-free performance estimate against peer libraries.

One command, run with the project's virtualenv (no Spark is started)::

    .venv/bin/python benchmarks/peer_check.py
    .venv/bin/python benchmarks/peer_check.py --peers-venv /tmp/peers-venv --seed 7 --only drift

The peers (Evidently, NannyML) are never project dependencies: they live in a separate
virtualenv (default ``/tmp/peers-venv``), created once with::

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install 'evidently==0.7.23' 'nannyml>=0.13,<0.14' 'pandas<3'

(``pandas<3``: Evidently 0.7.23 fails to import under pandas 3 -- ``ImportError: cannot import
name 'infer_dtype_from_object' from 'pandas.core.dtypes.common'`` -- and pip picks pandas 3.)

This script generates seeded synthetic data with numpy, computes our values in-process the
way the engine does (profiles with KLL sketches, reference bins, exact counts on those bins),
writes the same raw data to ``.npz`` files in a temp folder, runs a small helper script (kept
in this file as ``HELPER``) with the peers' Python, reads the peers' values back from JSON and
prints comparison tables:

a. drift: our ``spark_audit.drift.compare.compute`` on profiles vs Evidently's stattests on the
   raw samples (normed Wasserstein, Jensen-Shannon, PSI, KS p-value, chi-square p-value), plus
   the same formulas of ours on Evidently's own bins (to separate formula from binning), and the
   false-alarm rate of the p-value tests on many no-drift replicates;
b. CBPE: our isotonic binned calibration + expected confusion counts (``estimated_from_row``,
   ``estimated_se``) vs NannyML's CBPE on the same chunks, with the realised values.

KLL sketches compact at random (the Python binding takes no seed), so our sketch-based values
(reference bin edges, Wasserstein) differ slightly between runs; we report the median over
``--sketch-draws`` independent sketches and the spread of the Wasserstein value.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # 2 shared cores: keep BLAS single-threaded

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from datasketches import kll_doubles_sketch  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from spark_audit.decay.estimate import estimated_from_row, fit_calibration  # noqa: E402
from spark_audit.decay.metrics import roc_auc_from_bins  # noqa: E402
from spark_audit.decay.uncertainty import estimated_se  # noqa: E402
from spark_audit.drift import compare, stats  # noqa: E402
from spark_audit.profile.state import Bins, ColumnProfile  # noqa: E402

DEFAULT_VENV = "/tmp/peers-venv"
PIP_PACKAGES = "'evidently==0.7.23' 'nannyml>=0.13,<0.14' 'pandas<3'"
LN2 = math.log(2.0)
N_BINS = 20  # the engine's default number of reference quantile bins (drift.bins)
SCORE_BINS = 20  # the engine's default score_bins from YAML (spec.py; QualitySpec's own default is 100)
CBPE_METRICS = ("roc_auc", "f1", "accuracy", "precision", "recall")

# --------------------------------------------------------------------------- helper (peers' venv)

HELPER = r'''
"""Runs inside the peers' virtualenv: Evidently stattests and NannyML CBPE on the given data."""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

work = sys.argv[1]
parts = sys.argv[2].split(",")
out = {"versions": {}}

if "drift" in parts:
    import evidently
    from evidently.legacy.core import ColumnType
    from evidently.legacy.calculations.stattests import (
        chi_stat_test, jensenshannon_stat_test, ks_stat_test, psi_stat_test, wasserstein_stat_test)
    out["versions"]["evidently"] = evidently.__version__
    t0 = time.time()
    cases = json.load(open(f"{work}/drift_cases.json"))
    data = np.load(f"{work}/drift.npz", allow_pickle=False)
    res = {}
    for c in cases:
        ref, cur = pd.Series(data[c["id"] + "__ref"]), pd.Series(data[c["id"] + "__cur"])
        r = {}
        if c["kind"] == "numeric":
            ft = ColumnType.Numerical
            for name, test in (("wasserstein", wasserstein_stat_test), ("ks", ks_stat_test)):
                v = test(ref, cur, ft, None)
                r[name] = [float(v.drift_score), bool(v.drifted), float(v.actual_threshold)]
            r["ks_D"] = float(ks_2samp(ref.values, cur.values).statistic)
        else:
            ft = ColumnType.Categorical
            v = chi_stat_test(ref, cur, ft, 0.05)
            r["chi2"] = [float(v.drift_score), bool(v.drifted), float(v.actual_threshold)]
        for name, test in (("js", jensenshannon_stat_test), ("psi", psi_stat_test)):
            v = test(ref, cur, ft, None)
            r[name] = [float(v.drift_score), bool(v.drifted), float(v.actual_threshold)]
        res[c["id"]] = r
    out["drift"] = res
    null = np.load(f"{work}/null.npz", allow_pickle=False)
    ks_p = [float(ks_stat_test(pd.Series(a), pd.Series(b), ColumnType.Numerical, None).drift_score)
            for a, b in zip(null["num_ref"], null["num_cur"])]
    chi_p = [float(chi_stat_test(pd.Series(a), pd.Series(b), ColumnType.Categorical, 0.05).drift_score)
             for a, b in zip(null["cat_ref"], null["cat_cur"])]
    out["null"] = {"ks_p": ks_p, "chi2_p": chi_p}
    out["drift_seconds"] = time.time() - t0

if "cbpe" in parts:
    import nannyml as nml
    out["versions"]["nannyml"] = nml.__version__
    t0 = time.time()
    d = np.load(f"{work}/cbpe.npz", allow_pickle=False)
    meta = json.load(open(f"{work}/cbpe.json"))
    frame = lambda p: pd.DataFrame({"score": d[p + "_score"], "prediction": d[p + "_pred"], "label": d[p + "_label"]})
    ref, ana = frame("ref"), frame("ana")
    est = nml.CBPE(y_pred_proba="score", y_pred="prediction", y_true="label",
                   problem_type="classification_binary", metrics=meta["metrics"],
                   chunk_size=meta["chunk_size"])
    est.fit(ref)
    df = est.estimate(ana).filter(period="analysis").to_df()
    rows = []
    for _, row in df.iterrows():
        r = {"key": str(row[("chunk", "key")])}
        for m in meta["metrics"]:
            r[m] = {k: (bool(row[(m, k)]) if k == "alert" else float(row[(m, k)]))
                    for k in ("value", "sampling_error", "realized", "lower_threshold", "upper_threshold", "alert")}
        rows.append(r)
    out["cbpe"] = {"needs_calibration": bool(est.needs_calibration), "chunks": rows}
    out["cbpe_seconds"] = time.time() - t0

json.dump(out, open(f"{work}/peers_out.json", "w"))
'''


def run_helper(venv: Path, work: Path, parts: list[str]) -> dict:
    python = venv / "bin" / "python"
    (work / "peer_helper.py").write_text(textwrap.dedent(HELPER))
    env = dict(os.environ)
    # no telemetry from the peers (and no network beyond the package registries anyway)
    env.update(NML_DISABLE_USAGE_LOGGING="1", DO_NOT_TRACK="1", EVIDENTLY_DISABLE_TELEMETRY="1",
               PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(python), str(work / "peer_helper.py"), str(work), ",".join(parts)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        if "ModuleNotFoundError" in proc.stderr or "ImportError" in proc.stderr:
            print(install_hint(venv), file=sys.stderr)
        raise SystemExit(f"the peers' helper failed (exit {proc.returncode}); see above")
    return json.loads((work / "peers_out.json").read_text())


def install_hint(venv: Path) -> str:
    return (f"Create the peers' virtualenv (never a project dependency):\n"
            f"    python3 -m venv {venv}\n"
            f"    {venv}/bin/pip install {PIP_PACKAGES}\n")


# --------------------------------------------------------------------------- tables


def fmt(v, width: int = 9) -> str:
    if v is None:
        s = "-"
    elif isinstance(v, bool):
        s = "Y" if v else "."
    elif isinstance(v, (int, np.integer)):
        s = str(int(v))
    elif isinstance(v, float):
        if math.isnan(v):
            s = "nan"
        elif v == 0:
            s = "0"
        elif abs(v) < 1e-3 or abs(v) >= 1e5:
            s = f"{v:.2e}"
        else:
            s = f"{v:.4f}"
    else:
        s = str(v)
    return s.rjust(width)


def table(title: str, header: list[str], rows: list[list], widths: list[int] | None = None) -> None:
    widths = widths or [max(len(h), 9) for h in header]
    print(f"\n{title}")
    print(" ".join(h.rjust(w) for h, w in zip(header, widths)))
    print(" ".join("-" * w for w in widths))
    for r in rows:
        print(" ".join(fmt(v, w) for v, w in zip(r, widths)))


# --------------------------------------------------------------------------- drift: data


CATS = ("bronze", "silver", "gold", "platinum", "basic")
CAT_P = (0.35, 0.25, 0.20, 0.05, 0.15)


def drift_cases(seed: int, sizes: list[int]) -> list[dict]:
    """Seeded (reference, current) pairs, equal sizes. Each case has its own generator."""
    specs = [
        ("normal, no drift", "numeric"),
        ("normal +0.1 sd", "numeric"),
        ("normal +0.2 sd", "numeric"),
        ("normal +0.5 sd", "numeric"),
        ("lognormal(0,1), no drift", "numeric"),
        ("lognormal mu +0.2 (x1.22)", "numeric"),
        ("0.2% outliers at +50 sd", "numeric"),
        ("categorical, no drift", "categorical"),
        ("categorical gold->GOLD", "categorical"),
    ]
    out = []
    for i, (label, kind) in enumerate(specs):
        for j, n in enumerate(sizes):
            rng = np.random.default_rng([seed, i, j])
            if kind == "categorical":
                ref = rng.choice(np.array(CATS), size=n, p=CAT_P)
                cur = rng.choice(np.array(CATS), size=n, p=CAT_P)
                if "GOLD" in label:
                    cur = np.where(cur == "gold", "GOLD", cur)
            elif label.startswith("lognormal"):
                ref = rng.lognormal(0.0, 1.0, n)
                cur = rng.lognormal(0.2 if "+0.2" in label else 0.0, 1.0, n)
            else:
                ref = rng.normal(0.0, 1.0, n)
                shift = {"+0.1": 0.1, "+0.2": 0.2, "+0.5": 0.5}
                cur = rng.normal(next((v for k, v in shift.items() if k in label), 0.0), 1.0, n)
                if "outliers" in label:
                    k = max(1, round(0.002 * n))
                    cur[rng.choice(n, size=k, replace=False)] = 50.0
            out.append({"id": f"c{i}n{n}", "label": label, "kind": kind, "n": n, "ref": ref, "cur": cur})
    return out


# --------------------------------------------------------------------------- drift: our side


def numeric_profile(x: np.ndarray) -> ColumnProfile:
    sketch = kll_doubles_sketch(200)
    sketch.update(np.asarray(x, dtype=float))
    mean = float(x.mean())
    return ColumnProfile(name="x", kind="numeric", dtype="double", count=x.size, n_finite=x.size, mean=mean,
                         m2=float(np.sum((x - mean) ** 2)), min=float(x.min()), max=float(x.max()),
                         kll=bytes(sketch.serialize()))


def exact_numeric_counts(x: np.ndarray, edges: tuple[float, ...]) -> tuple[int, ...]:
    """Counts on Bins edges: bin 0 (-inf, e1), bin i [e_i, e_i+1), last [e_last, inf)."""
    below = np.searchsorted(np.sort(x), np.asarray(edges), side="left")  # values < each edge
    return tuple(int(c) for c in np.diff(np.concatenate([[0], below, [x.size]])))


def categorical_profile(x: np.ndarray) -> ColumnProfile:
    values, counts = np.unique(x, return_counts=True)
    top = {str(v): int(c) for v, c in zip(values, counts)}
    return ColumnProfile(name="x", kind="categorical", dtype="string", count=x.size, top=top, top_k=len(top))


def exact_categorical_counts(x: np.ndarray, categories: tuple[str, ...]) -> tuple[int, ...]:
    known = [int(np.sum(x == c)) for c in categories]
    return tuple(known + [int(x.size - sum(known))])


def binned_profiles(ref: np.ndarray, cur: np.ndarray, kind: str) -> tuple[ColumnProfile, ColumnProfile]:
    """Reference and current profiles with exact counts on the reference's bins, as the engine keeps them."""
    if kind == "numeric":
        r, c = numeric_profile(ref), numeric_profile(cur)
        bins = compare.reference_bins(r, N_BINS)
        lo, hi = bins.edges[0], bins.edges[-1]

        def tails(x: np.ndarray) -> tuple[float, float]:  # the exact tail sums the scan keeps
            return float(np.sum(lo - x[x < lo])), float(np.sum(x[x >= hi] - hi))

        return (replace(r, bins=Bins(exact_numeric_counts(ref, bins.edges), edges=bins.edges, tails=tails(ref))),
                replace(c, bins=Bins(exact_numeric_counts(cur, bins.edges), edges=bins.edges, tails=tails(cur))))
    r, c = categorical_profile(ref), categorical_profile(cur)
    bins = compare.reference_bins(r, N_BINS)
    return (replace(r, bins=Bins(exact_categorical_counts(ref, bins.categories), categories=bins.categories)),
            replace(c, bins=Bins(exact_categorical_counts(cur, bins.categories), categories=bins.categories)))


def evidently_bins(ref: np.ndarray, cur: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Evidently's bins (``get_binned_data``): equal-width Sturges bins over both samples for
    numbers, the union of the values for categories."""
    if kind == "numeric":
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return np.histogram(ref, edges)[0], np.histogram(cur, edges)[0], len(edges) - 1
    keys = sorted(set(ref.tolist()) | set(cur.tolist()))
    return (np.array([np.sum(ref == k) for k in keys]), np.array([np.sum(cur == k) for k in keys]), len(keys))


def ours_for_case(case: dict, draws: int) -> dict:
    """Our statistics, medians over ``draws`` independent KLL sketches (the sketch is randomised)."""
    kind, ref, cur = case["kind"], case["ref"], case["cur"]
    names = ["psi", "js", "chi2"] + (["ks", "wasserstein"] if kind == "numeric" else [])
    acc: dict[str, list] = {k: [] for k in [*names, "ks_D", "chi2_stat", "evidence_p", "n_bins"]}
    for _ in range(draws if kind == "numeric" else 1):
        r, c = binned_profiles(ref, cur, kind)
        for name in names:
            value, p = compare.compute(name, r, c)
            if name == "ks":
                acc["ks_D"].append(value)
                acc["ks"].append(p)
            elif name == "chi2":
                acc["chi2_stat"].append(value)
                acc["chi2"].append(p)
            else:
                acc[name].append(value)
        acc["evidence_p"].append(compare.evidence_p(r, c))
        acc["n_bins"].append(len(r.bins.counts))
    out = {k: float(np.median(v)) for k, v in acc.items() if v}
    out["n_bins"] = int(out["n_bins"])
    if kind == "numeric":
        w = np.asarray(acc["wasserstein"])
        out["w_min"], out["w_max"] = float(w.min()), float(w.max())
        out["w_share_drift"] = float(np.mean(w >= stats.STATISTICS["wasserstein"].threshold))
        ones_r, ones_c = np.ones(ref.size), np.ones(cur.size)
        out["w_exact"] = stats.wasserstein_weighted(ref, ones_r, cur, ones_c, scale=float(np.std(ref, ddof=1)))
    er, ec, nb = evidently_bins(ref, cur, kind)
    out["psi_on_ev_bins"] = stats.psi(er, ec)
    out["js_on_ev_bins"] = stats.jensen_shannon(er, ec)
    out["ev_n_bins"] = nb
    return out


def null_replicates(seed: int, reps: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 999])
    return {"num_ref": rng.normal(size=(reps, n)), "num_cur": rng.normal(size=(reps, n)),
            "cat_ref": rng.choice(np.array(CATS), size=(reps, n), p=CAT_P),
            "cat_cur": rng.choice(np.array(CATS), size=(reps, n), p=CAT_P)}


def ours_null(null: dict[str, np.ndarray]) -> dict[str, list[float]]:
    ks_p, chi_p = [], []
    for a, b in zip(null["num_ref"], null["num_cur"]):
        r, c = binned_profiles(a, b, "numeric")
        ks_p.append(compare.compute("ks", r, c)[1])
    for a, b in zip(null["cat_ref"], null["cat_cur"]):
        r, c = binned_profiles(a, b, "categorical")
        chi_p.append(compare.compute("chi2", r, c)[1])
    return {"ks_p": ks_p, "chi2_p": chi_p}


def print_drift(cases: list[dict], ours: dict, peers: dict, null_ours: dict, null_n: int, draws: int) -> None:
    ev = peers["drift"]
    thr_js = stats.STATISTICS["js"].threshold
    print("\n" + "=" * 100)
    print(f"DRIFT  ours: spark_audit.drift.compare.compute on profiles (KLL k=200, {N_BINS} reference quantile "
          f"bins + tail/range bins, exact counts; median of {draws} KLL draws)")
    print(f"       Evidently {peers['versions'].get('evidently')}: legacy stattests on the raw samples "
          "(equal-width Sturges bins over both samples for PSI/JS)")
    print("       decisions: Y = drift. W, PSI: >= 0.1. JS: ours >= "
          f"{thr_js} (base 2) = Evidently's 0.1 (natural log). KS, chi2: p < 0.05 (Evidently KS: p <= 0.05).")
    print("       'engine' = material AND evidence_p <= 0.05 (chi2/KS on exact counts, no FDR, phi = 1).")
    num = [c for c in cases if c["kind"] == "numeric"]

    rows, agree = [], 0
    for c in num:
        o, e = ours[c["id"]], ev[c["id"]]["wasserstein"]
        mat = o["wasserstein"] >= 0.1
        agree += mat == e[1]
        rows.append([c["label"], c["n"], o["wasserstein"], o["w_max"] - o["w_min"], o["w_share_drift"], o["w_exact"],
                     e[0], o["wasserstein"] - e[0], mat, e[1], mat and o["evidence_p"] <= 0.05])
    table("a1. Wasserstein W1 / reference std  (Evidently: wasserstein_distance_norm on raw values, np.std ddof 0)",
          ["case", "n", "ours", "spread", "Y share", "ours raw", "Evidently", "ours-Ev", "ours Y", "Ev Y",
           "engine"],
          rows, [27, 7, 9, 10, 7, 9, 9, 9, 6, 5, 6])
    print(f"   decisions agree in {agree}/{len(num)} cases. 'ours' = the engine's W1 (exact counts on the reference's "
          f"bins + exact tail sums; the sketch only shapes the interpolation inside a bin), median over {draws} "
          "sketches,\n   'spread' = max - min over them, 'Y share' = share of draws with W >= 0.1, 'ours raw' = our W1 "
          "formula on the raw values")

    rows, agree = [], 0
    for c in cases:
        o, e = ours[c["id"]], ev[c["id"]]["js"]
        e2 = e[0] / math.sqrt(LN2)
        mat = o["js"] >= thr_js
        agree += mat == e[1]
        rows.append([c["label"], c["n"], o["js"], e[0], e2, o["js_on_ev_bins"], o["js_on_ev_bins"] - e2,
                     o["n_bins"], o["ev_n_bins"], mat, e[1], mat and o["evidence_p"] <= 0.05])
    table("a2. Jensen-Shannon distance  (ours base 2; Evidently natural log, converted d2 = de / sqrt(ln 2))",
          ["case", "n", "ours b2", "Ev ln", "Ev->b2", "ours@Evbins", "diff@same", "our bins", "Ev bins",
           "ours Y", "Ev Y", "engine"],
          rows, [27, 7, 9, 9, 9, 11, 9, 8, 7, 6, 5, 6])
    print(f"   decisions agree in {agree}/{len(cases)} cases; 'ours@Evbins' = our jensen_shannon on "
          "Evidently's bins, 'diff@same' = that minus Ev->b2 (formula check)")

    rows, agree = [], 0
    for c in cases:
        o, e = ours[c["id"]], ev[c["id"]]["psi"]
        mat = o["psi"] >= 0.1
        agree += mat == e[1]
        rows.append([c["label"], c["n"], o["psi"], e[0], o["psi"] - e[0], o["psi_on_ev_bins"],
                     o["psi_on_ev_bins"] - e[0], mat, e[1], mat and o["evidence_p"] <= 0.05])
    table("a3. PSI  (ours: proportions floored at 1e-4 and renormalised; Evidently: zeros -> 1e-4 "
          "(or min/1e6), no renormalisation)",
          ["case", "n", "ours", "Evidently", "ours-Ev", "ours@Evbins", "diff@same", "ours Y", "Ev Y", "engine"],
          rows, [27, 7, 9, 9, 9, 11, 9, 6, 5, 6])
    print(f"   decisions agree in {agree}/{len(cases)} cases")

    rows, agree = [], 0
    for c in num:
        o, e = ours[c["id"]], ev[c["id"]]
        mine, theirs = o["ks"] < 0.05, e["ks"][1]
        agree += mine == theirs
        rows.append([c["label"], c["n"], o["ks_D"], e["ks_D"], o["ks_D"] - e["ks_D"], o["ks"], e["ks"][0],
                     mine, theirs])
    table("a4. Kolmogorov-Smirnov  (ours: D on exact counts at the reference's bin edges, a lower bound, "
          "kstwo p; Evidently: scipy ks_2samp on raw values)",
          ["case", "n", "D ours", "D raw", "D diff", "p ours", "p Evidently", "ours Y", "Ev Y"],
          rows, [27, 7, 9, 9, 9, 9, 11, 6, 5])
    print(f"   decisions agree in {agree}/{len(num)} cases")

    rows, agree = [], 0
    for c in cases:
        o, e = ours[c["id"]], ev[c["id"]].get("chi2")
        mine = o["chi2"] < 0.05
        if e is not None:
            agree += mine == e[1]
        rows.append([c["label"], c["n"], o["chi2_stat"], o["chi2"], None if e is None else e[0], mine,
                     None if e is None else e[1]])
    table("a5. chi-square p-value  (ours: 2 x K homogeneity test on the reference's bins; Evidently "
          "'chisquare': goodness of fit of current to the reference's proportions, categorical only)",
          ["case", "n", "ours X2", "p ours", "p Evidently", "ours Y", "Ev Y"], rows, [27, 7, 10, 10, 11, 6, 5])
    ncat = sum(c["kind"] == "categorical" for c in cases)
    print(f"   decisions agree in {agree}/{ncat} categorical cases (Evidently has no numeric chi-square)")

    reps = len(null_ours["ks_p"])
    rate = lambda ps, strict=True: float(np.mean([(p < 0.05) if strict else (p <= 0.05) for p in ps]))  # noqa: E731
    table(f"a6. false-alarm rate under no drift: {reps} replicates, n = {null_n} per side (nominal 0.05)",
          ["test", "ours", "Evidently"],
          [["KS, normal", rate(null_ours["ks_p"]), rate(peers["null"]["ks_p"], False)],
           ["chi2, 5 categories", rate(null_ours["chi2_p"]), rate(peers["null"]["chi2_p"])]], [20, 9, 9])


# --------------------------------------------------------------------------- CBPE


CHUNKS = [  # (label, beta a, beta b, label probability exponent)
    ("no shift", 2.0, 2.0, 1.5),
    ("cov. shift: scores up", 3.0, 1.8, 1.5),
    ("cov. shift: scores down", 1.6, 3.0, 1.5),
    ("cov. shift: strong, high", 6.0, 1.5, 1.5),
    ("concept drift p=s^3", 2.0, 2.0, 3.0),
]


def draw_chunk(rng: np.random.Generator, n: int, a: float, b: float, k: float):
    """Scores ~ Beta(a, b); labels ~ Bernoulli(score ** k); prediction = score >= 0.5."""
    s = rng.beta(a, b, n)
    return s, (s >= 0.5).astype(np.int64), (rng.random(n) < s**k).astype(np.int64)


def cbpe_data(seed: int, n_ref: int, chunk: int) -> dict[str, np.ndarray]:
    """The reference (Beta(2, 2) scores, labels ~ Bernoulli(score ** 1.5): a miscalibrated model)
    and the analysis chunks of ``CHUNKS``, one after another."""
    rng = np.random.default_rng([seed, 2024])
    out = dict(zip(("ref_score", "ref_pred", "ref_label"), draw_chunk(rng, n_ref, 2.0, 2.0, 1.5)))
    parts = [draw_chunk(rng, chunk, a, b, k) for _, a, b, k in CHUNKS]
    for i, key in enumerate(("ana_score", "ana_pred", "ana_label")):
        out[key] = np.concatenate([p[i] for p in parts])
    return out


def score_bins(s: np.ndarray, bins: int) -> np.ndarray:
    """``spark_audit.decay.metrics.score_bin`` in numpy: min(floor(clip(s, 0, 1) * bins), bins - 1)."""
    return np.minimum(np.floor(np.clip(s, 0.0, 1.0) * bins), bins - 1).astype(int)


def realised(score: np.ndarray, pred: np.ndarray, y: np.ndarray, bins: int) -> dict[str, float]:
    tp = float(np.sum((pred == 1) & (y == 1)))
    fp = float(np.sum((pred == 1) & (y == 0)))
    tn = float(np.sum((pred == 0) & (y == 0)))
    fn = float(np.sum((pred == 0) & (y == 1)))
    n1, n0 = y.sum(), (1 - y).sum()
    auc_raw = (rankdata(score)[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    b = score_bins(score, bins)
    auc_bin = roc_auc_from_bins(np.bincount(b[y == 1], minlength=bins), np.bincount(b[y == 0], minlength=bins))
    return {"accuracy": (tp + tn) / (tp + fp + tn + fn), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn), "roc_auc": float(auc_raw), "roc_auc_binned": float(auc_bin)}


def ours_cbpe(d: dict[str, np.ndarray], chunk: int, bins: int) -> tuple[list[dict], object]:
    rb = score_bins(d["ref_score"], bins)
    pos = np.bincount(rb[d["ref_label"] == 1], minlength=bins)
    neg = np.bincount(rb[d["ref_label"] == 0], minlength=bins)
    cal = fit_calibration(pos, neg)
    out = []
    for i in range(len(d["ana_score"]) // chunk):
        sl = slice(i * chunk, (i + 1) * chunk)
        s, pred = d["ana_score"][sl], d["ana_pred"][sl]
        b = score_bins(s, bins)
        p = np.asarray(cal.probs)[b]
        pp = pred == 1  # predicted positive by the prediction column, as estimated_exprs(prediction_col=...)
        row = {"e__tp": float(p[pp].sum()), "e__fp": float((1 - p[pp]).sum()),
               "e__tn": float((1 - p[~pp]).sum()), "e__fn": float(p[~pp].sum()), "e__n": int(s.size),
               "e__bin_n": np.bincount(b, minlength=bins).tolist()}
        est = estimated_from_row(row, prefix="e__", calibration=cal)
        out.append({"est": est, "se": {m: estimated_se(m, est) for m in CBPE_METRICS},
                    "real": realised(s, pred, d["ana_label"][sl], bins)})
    return out, cal


def simulated_sd(seed: int, chunk: int, reps: int, bins: int) -> list[dict[str, float]]:
    """Per chunk type, the sd of the realised metrics over ``reps`` fresh chunks drawn the same way:
    the sampling error a standard error should match."""
    rng = np.random.default_rng([seed, 77])
    out = []
    for _, a, b, k in CHUNKS:
        vals = [realised(*draw_chunk(rng, chunk, a, b, k), bins) for _ in range(reps)]
        out.append({m: float(np.std([v[m] for v in vals], ddof=1)) for m in CBPE_METRICS})
    return out


def print_cbpe(ours: list[dict], peers: dict, n_ref: int, chunk: int, bins: int, sim: list[dict],
               sim_reps: int) -> None:
    nml = peers["cbpe"]
    print("\n" + "=" * 100)
    print(f"CBPE  reference {n_ref} rows, scores ~ Beta(2,2), labels ~ Bernoulli(score^1.5) (miscalibrated), "
          f"prediction = score >= 0.5; analysis chunks of {chunk} rows")
    print(f"      ours: fit_calibration on {bins} uniform score bins (the engine's YAML default score_bins=20), "
          "expected confusion counts per chunk, estimated_from_row, estimated_se")
    print(f"      NannyML {peers['versions'].get('nannyml')} CBPE(chunk_size={chunk}), isotonic calibration on "
          f"raw scores (needs_calibration = {nml['needs_calibration']}); alert = outside ±3 sd of its "
          "reference chunks")
    print(f"      'sd sim' = sd of the realised metric over {sim_reps} fresh chunks of the same kind (what a "
          "sampling error should match); 'real.bin20' = realised ROC AUC on the 20 score bins (ties count 1/2)")
    for i, (label, a, b, k) in enumerate(CHUNKS):
        print(f"      chunk {i}: {label:26s} scores ~ Beta({a:g},{b:g}), labels ~ Bernoulli(score^{k:g})")
    for m in CBPE_METRICS:
        rows, errs = [], []
        for i, (o, n) in enumerate(zip(ours, nml["chunks"])):
            e, r = o["est"][m], n[m]
            errs.append((abs(e - o["real"][m]), abs(r["value"] - o["real"][m]), abs(e - r["value"])))
            row = [f"{i} {CHUNKS[i][0]}", o["real"][m]]
            if m == "roc_auc":
                row.append(o["real"]["roc_auc_binned"])
            row += [e, r["value"], abs(e - r["value"]), o["se"][m], r["sampling_error"], sim[i][m], r["realized"],
                    r["alert"], f"[{r['lower_threshold']:.3f},{r['upper_threshold']:.3f}]"]
            rows.append(row)
        err = np.asarray(errs)
        header = ["chunk", "realised"] + (["real.bin20"] if m == "roc_auc" else []) + [
            "ours", "NannyML", "|ours-NML|", "se ours", "se NML", "sd sim", "NML real.", "NML alert",
            "NML thresholds"]
        widths = [28, 9] + ([10] if m == "roc_auc" else []) + [9, 9, 10, 9, 9, 9, 9, 9, 16]
        table(f"b. {m}", header, rows, widths)
        print(f"   MAE vs realised: ours {err[:, 0].mean():.4f}, NannyML {err[:, 1].mean():.4f};  "
              f"MAE |ours-NannyML| {err[:, 2].mean():.4f};  "
              f"without the concept-drift chunk: ours {err[:-1, 0].mean():.4f}, NannyML {err[:-1, 1].mean():.4f}, "
              f"|ours-NML| {err[:-1, 2].mean():.4f}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers-venv", default=DEFAULT_VENV, help=f"virtualenv with Evidently and NannyML "
                    f"(default {DEFAULT_VENV})")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--sizes", default="600,4000,100000", help="sample sizes per side for the drift cases")
    ap.add_argument("--sketch-draws", type=int, default=11, help="independent KLL sketches per numeric case")
    ap.add_argument("--null-reps", type=int, default=1000, help="no-drift replicates for the false-alarm rates")
    ap.add_argument("--null-n", type=int, default=1000, help="rows per side in each no-drift replicate")
    ap.add_argument("--ref-rows", type=int, default=20000, help="CBPE reference rows")
    ap.add_argument("--chunk", type=int, default=5000, help="CBPE chunk size")
    ap.add_argument("--sim-reps", type=int, default=200,
                    help="fresh chunks per kind for the sd of the realised metrics")
    ap.add_argument("--only", choices=("drift", "cbpe"), help="run one part only")
    ap.add_argument("--keep", help="write the exchanged files to this folder and keep them")
    args = ap.parse_args(argv)

    venv = Path(args.peers_venv)
    if not (venv / "bin" / "python").exists():
        print(f"No peers' virtualenv at {venv}.\n" + install_hint(venv), file=sys.stderr)
        return 2
    parts = [args.only] if args.only else ["drift", "cbpe"]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="peer_check_") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "drift" in parts:
            cases = drift_cases(args.seed, [int(s) for s in args.sizes.split(",")])
            np.savez(work / "drift.npz", **{f"{c['id']}__{side}": c[side] for c in cases for side in ("ref", "cur")})
            (work / "drift_cases.json").write_text(json.dumps(
                [{k: c[k] for k in ("id", "label", "kind", "n")} for c in cases]))
            null = null_replicates(args.seed, args.null_reps, args.null_n)
            np.savez(work / "null.npz", **null)
            ours = {c["id"]: ours_for_case(c, args.sketch_draws) for c in cases}
            null_ours = ours_null(null)
        if "cbpe" in parts:
            data = cbpe_data(args.seed, args.ref_rows, args.chunk)
            np.savez(work / "cbpe.npz", **data)
            (work / "cbpe.json").write_text(json.dumps({"metrics": list(CBPE_METRICS), "chunk_size": args.chunk}))
            cbpe_ours, _ = ours_cbpe(data, args.chunk, SCORE_BINS)
            sim = simulated_sd(args.seed, args.chunk, args.sim_reps, SCORE_BINS)
        t_ours = time.time() - t0
        peers = run_helper(venv, work, parts)
        print(f"seed {args.seed}; peers: {peers['versions']}; ours {t_ours:.1f}s, peers' helper "
              f"{time.time() - t0 - t_ours:.1f}s; exchanged files in {work}"
              + ("" if args.keep else " (deleted)"))
        if "drift" in parts:
            print_drift(cases, ours, peers, null_ours, args.null_n, args.sketch_draws)
        if "cbpe" in parts:
            print_cbpe(cbpe_ours, peers, args.ref_rows, args.chunk, SCORE_BINS, sim, args.sim_reps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
