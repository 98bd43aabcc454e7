"""spark-submit entry point: audit windows against the reference.

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 \
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
      jobs/run_audit.py conf/churn_audit.yaml [--start 2026-01-08 --end 2026-01-15]

Exit code: 0 healthy, 1 critical findings, 2 bad spec, 3 data or infrastructure problem.
"""

import sys

from spark_audit.cli import main

if __name__ == "__main__":
    sys.exit(main(["audit", *sys.argv[1:]]))
