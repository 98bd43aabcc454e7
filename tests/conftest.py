import os
import shutil
import tempfile

import pytest


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession with Delta for the whole suite."""
    from spark_audit.session import get_spark

    warehouse = tempfile.mkdtemp(prefix="spark-audit-warehouse-")
    session = get_spark(
        "local[2]",
        app_name="spark-audit-tests",
        extra_conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.warehouse.dir": warehouse,
            "spark.default.parallelism": "2",
        },
    )
    yield session
    session.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch):
    """A real MLflow tracking store (SQLite) and artifact folder under tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None) if hasattr(mlflow, "set_tracking_uri") else None
    os.environ.pop("MLFLOW_TRACKING_URI", None)
