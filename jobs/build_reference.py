"""spark-submit entry point: profile the reference rows and log them to MLflow.

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 \
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
      jobs/build_reference.py conf/churn_audit.yaml
"""

import sys

from spark_audit.cli import main

if __name__ == "__main__":
    sys.exit(main(["reference", "build", *sys.argv[1:]]))
