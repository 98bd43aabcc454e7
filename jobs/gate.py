"""spark-submit entry point: gate a candidate model version against the champion before release.

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 \
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
      jobs/gate.py conf/churn_audit.yaml --candidate 4 [--champion champion] [--promote champion]

Exit code: 0 the gate passed, 1 it failed, 2 bad spec, 3 data or infrastructure problem.
"""

import sys

from spark_audit.cli import main

if __name__ == "__main__":
    sys.exit(main(["gate", *sys.argv[1:]]))
