import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from spark_audit.errors import SpecError
from spark_audit.profile.exprs import Sketches
from spark_audit.spec import load_spec, parse_spec

CONF = Path(__file__).resolve().parents[1] / "conf"

MINIMAL = {
    "name": "a",
    "source": {"path": "/data/t", "timestamp_column": "ts"},
    "features": ["x", {"name": "c", "kind": "categorical"}],
    "output": {"path": "/out"},
}


def test_example_spec_loads_with_every_key():
    spec = load_spec(CONF / "churn_audit.yaml")
    assert spec.name == "churn-audit"
    assert spec.window.size == "1 day"
    assert spec.window.start == datetime(2026, 1, 8, tzinfo=timezone.utc)
    assert [f.name for f in spec.features][:3] == ["age", "tenure_months", "monthly_charges"]
    assert spec.features[2].drift.statistic == "psi" and spec.features[2].drift.threshold == 0.2
    assert spec.features[2].importance == 2.0
    assert spec.slices == ("country",)
    assert spec.reference_uri() == "models:/spark-audit-demo-churn/1"


def test_minimal_spec_defaults():
    spec = parse_spec(MINIMAL)
    assert spec.drift.bins == 20 and spec.drift.statistics == ("psi", "js")
    assert (spec.findings.fdr, spec.findings.min_rows) == (0.05, 200)
    assert spec.features[0].kind is None and spec.features[1].kind == "categorical"
    assert spec.profile.top_k == 20


def test_spec_hash_is_stable_and_sensitive():
    a, b = parse_spec(MINIMAL), parse_spec(dict(MINIMAL))
    assert a.spec_hash() == b.spec_hash()
    changed = parse_spec({**MINIMAL, "drift": {"bins": 30}})
    assert changed.spec_hash() != a.spec_hash()


@pytest.mark.parametrize(
    "patch, key, words",
    [
        ({"sauce": 1}, "sauce", "unknown key"),
        ({"source": {"path": "/t", "timestamp_colum": "ts"}}, "source.timestamp_colum", "unknown key"),
        ({"source": {"path": "/t", "table": "x.y"}}, "source", "exactly one"),
        ({"features": []}, "features", "non-empty list"),
        ({"features": [{"name": "x", "kind": "numberish"}]}, "features[0].kind", "expected one of"),
        ({"features": ["x", "x"]}, "features[1].name", "listed twice"),
        ({"features": [{"name": "x", "drift": {"statistic": "kl"}}]}, "features[0].drift.statistic", "psi"),
        ({"window": {"size": "daily"}}, "window.size", "duration"),
        ({"window": {"size": "1 day", "start": "2026-02-01", "end": "2026-01-01"}}, "window.end", "after"),
        ({"drift": {"bins": 1}}, "drift.bins", "[2, 1000]"),
        ({"drift": {"statistics": ["psi", "kl"]}}, "drift.statistics", "kl"),
        ({"reference": {"uri": "s3://bucket/x"}}, "reference.uri", "models:/"),
        ({"model": {"name": "m", "version": "1", "alias": "prod"}}, "model", "not both"),
        ({"output": {}}, "output", "exactly one"),
        ({"features": [{"name": "c", "kind": "categorical", "drift": {"statistic": "ks"}}]},
         "features[0].drift.statistic", "does not apply to the categorical column 'c'"),
        ({"features": [{"name": "t", "kind": "timestamp", "drift": {"statistic": "psi"}}]},
         "features[0].drift.statistic", "not compared for drift"),
        ({"findings": {"max_row_age": "soon"}}, "findings.max_row_age", "duration"),
        ({"quality": {"task": "binary", "label": "y", "score": "s", "labels": {"keys": ["id"], "path": "/l",
                                                                                "max_delay": "a while"}}},
         "quality.labels.max_delay", "duration"),
    ],
)
def test_errors_name_the_key_path(patch, key, words):
    with pytest.raises(SpecError) as e:
        parse_spec({**MINIMAL, **patch}, file="audit.yaml")
    assert f"audit.yaml: {key}: " in str(e.value)
    assert words in str(e.value)


def test_missing_required_key():
    data = dict(MINIMAL)
    del data["output"]
    with pytest.raises(SpecError, match="output: is required"):
        parse_spec(data)


def test_malformed_yaml_reports_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: a\nsource: {path: /t\nfeatures: [x]\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert str(p) in str(e.value) and "malformed YAML at line" in str(e.value)


def test_missing_file():
    with pytest.raises(SpecError, match="cannot read audit spec"):
        load_spec("/nonexistent/audit.yaml")


def test_no_reference_anywhere_is_an_error():
    with pytest.raises(SpecError, match="no reference"):
        parse_spec(MINIMAL).reference_uri()


def test_example_spec_has_quality_and_contract():
    spec = load_spec(CONF / "churn_audit.yaml")
    assert spec.quality.measure.task == "binary" and spec.quality.watched() == ("accuracy", "f1", "roc_auc")
    assert spec.contract.mask_columns == ("customer_id",)


@pytest.mark.parametrize(
    "quality, key, words",
    [
        ({"task": "ranking", "label": "y"}, "quality.task", "binary, regression"),
        ({"task": "regression", "label": "y"}, "quality.prediction", "needs a 'prediction' column"),
        ({"task": "binary", "label": "y"}, "quality.prediction", "needs a 'prediction' or a 'score'"),
        ({"task": "binary", "label": "y", "score": "s", "metrics": ["rmse"]}, "quality.metrics", "not a binary"),
        ({"task": "binary", "label": "y", "score": "s", "threshold": 2}, "quality.threshold", "[0, 1]"),
        ({"task": "binary", "label": "y", "score": "s", "labels": {"path": "/l"}}, "quality.labels.keys",
         "is required"),
        ({"task": "binary", "label": "y", "score": "s", "labels": {"keys": ["id"]}}, "quality.labels",
         "exactly one"),
    ],
)
def test_quality_errors_name_the_key(quality, key, words):
    with pytest.raises(SpecError) as e:
        parse_spec({**MINIMAL, "quality": quality}, file="a.yaml")
    assert f"a.yaml: {key}: " in str(e.value) and words in str(e.value)


def test_contract_as_a_path_or_a_mapping():
    # a relative path is taken from the working directory, and kept absolute (Spark SQL needs that)
    assert parse_spec({**MINIMAL, "contract": "c.yaml"}).contract.path == os.path.abspath("c.yaml")
    spec = parse_spec({**MINIMAL, "contract": {"path": "c.yaml", "sample_rows": 3}})
    assert spec.contract.sample_rows == 3
    with pytest.raises(SpecError, match="contract.sample_row: unknown key"):
        parse_spec({**MINIMAL, "contract": {"path": "c.yaml", "sample_row": 3}})


def test_fairness_attribute_must_be_a_slice():
    q = {"task": "binary", "label": "y", "score": "s", "fairness": {"attribute": "gender"}}
    with pytest.raises(SpecError, match="quality.fairness.attribute: 'gender' must also be listed in slices"):
        parse_spec({**MINIMAL, "quality": q})
    spec = parse_spec({**MINIMAL, "slices": ["gender"], "quality": q})
    assert spec.quality.fairness.max_gap == 0.1 and spec.quality.fairness.min_ratio == 0.8


def test_statistic_versus_a_kind_read_from_the_schema_is_checked_before_the_scan():
    from spark_audit.spec import check_feature_kinds

    spec = parse_spec({**MINIMAL, "features": [{"name": "x", "drift": {"statistic": "wasserstein"}}]},
                      file="audit.yaml")
    check_feature_kinds(spec, {"x": "numeric"})  # fits: no error
    with pytest.raises(SpecError, match=r"audit.yaml: features\[0\].drift.statistic: .*'wasserstein' does not apply"):
        check_feature_kinds(spec, {"x": "categorical"})


def test_allowed_names_come_from_the_registries():
    """A statistic registered in spark_audit.drift.stats is accepted by the spec at once (one place)."""
    from spark_audit.drift import stats

    info = stats.register_statistic("test_only_max_gap", stats.linf, kinds=("numeric",), higher_is_drift=True,
                                    threshold=0.2)
    try:
        spec = parse_spec({**MINIMAL, "drift": {"statistics": ["psi", "test_only_max_gap"]}})
        assert spec.drift.statistics == ("psi", "test_only_max_gap")
        with pytest.raises(SpecError, match="does not apply"):
            parse_spec({**MINIMAL, "features": [{"name": "c", "kind": "categorical",
                                                 "drift": {"statistic": "test_only_max_gap"}}]})
    finally:
        del stats.STATISTICS[info.name]
    with pytest.raises(SpecError, match="test_only_max_gap"):
        parse_spec({**MINIMAL, "drift": {"statistics": ["test_only_max_gap"]}})


def test_the_spec_imports_no_engine_module():
    """Validating a spec loads no Spark and no engine module: only the registries (pure Python)."""
    import subprocess
    import sys

    code = ("import sys, spark_audit.spec; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark' or m.startswith(("
            "'spark_audit.profile', 'spark_audit.decay', 'spark_audit.audit', 'spark_audit.quality', "
            "'spark_audit.contract', 'spark_audit.store', 'datasketches'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(CONF.parent)).stdout.strip()
    assert out == "[]"


def test_score_bins_default_is_one_fact():
    from spark_audit.catalog import SCORE_BINS
    from spark_audit.spec import QualitySpec

    spec = parse_spec({**MINIMAL, "quality": {"task": "binary", "label": "y", "score": "s"}})
    assert spec.quality.measure.score_bins == SCORE_BINS == QualitySpec("binary", "y", score="s").score_bins


def test_the_spec_and_contracts_share_one_yaml_reader(tmp_path):
    """A duplicate key (safe_load keeps the last silently) and a misspelled key get the same treatment in a
    spec as in a contract: the key path, and a did-you-mean hint."""
    p = tmp_path / "dup.yaml"
    p.write_text("name: a\nsource: {path: /t}\nfeatures: [x]\noutput: {path: /o}\nname: b\n")
    with pytest.raises(SpecError, match="name: duplicate key at line 5"):
        load_spec(p)
    with pytest.raises(SpecError, match="did you mean 'timestamp_column'"):
        parse_spec({**MINIMAL, "source": {"path": "/t", "timestamp_colum": "ts"}})


def test_profile_sketch_options():
    """profile.kll / profile.hll: defaults keep the spec's hash; other values change what the scan keeps."""
    plain = parse_spec(MINIMAL)
    assert (plain.profile.kll, plain.profile.hll) == ("auto", "categorical")
    assert Sketches.of(plain.profile).hll == ("categorical",) and Sketches.of(plain.profile).kll == "auto"
    same = parse_spec({**MINIMAL, "profile": {"kll": "auto", "hll": "categorical"}})
    assert same.spec_hash() == plain.spec_hash()
    every = parse_spec({**MINIMAL, "profile": {"kll": "always", "hll": "all"}})
    assert every.spec_hash() != plain.spec_hash()
    assert Sketches.of(every.profile).kll == "always" and "numeric" in Sketches.of(every.profile).hll
    assert Sketches.of(parse_spec({**MINIMAL, "profile": {"hll": "none"}}).profile).hll == ()
    with pytest.raises(SpecError) as e:
        parse_spec({**MINIMAL, "profile": {"kll": "sometimes"}})
    assert "profile.kll" in str(e.value) and "auto, always" in str(e.value)
