"""The SparkSession: the active one when there is one, else a local one with Delta."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def get_spark(
    master: str | None = None,
    *,
    app_name: str = "spark-audit",
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the active session (Databricks, spark-submit, a notebook), else start one.

    A session started here runs locally with Delta Lake; Delta's JARs are resolved
    from Maven Central on first start by ``configure_spark_with_delta_pip``.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master is None and (os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("DATABRICKS_RUNTIME_VERSION")):
        # launched by spark-submit or on Databricks: master, packages and Delta come from there
        return SparkSession.builder.appName(app_name).getOrCreate()
    from delta import configure_spark_with_delta_pip

    builder = SparkSession.builder.appName(app_name).master(
        master or os.environ.get("SPARK_AUDIT_MASTER", "local[*]")
    )
    conf = {
        **DELTA_CONF,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
        # Delta rebuilds a table's state with this many tasks (default 50); a local session
        # reads small result tables, where 50 tasks cost far more than the work
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.showConsoleProgress": "false",
        **(extra_conf or {}),
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    return configure_spark_with_delta_pip(builder).getOrCreate()
