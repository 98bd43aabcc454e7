"""spark-submit entry point for the demo (generated data, reference, audit)."""

import sys

from spark_audit.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
