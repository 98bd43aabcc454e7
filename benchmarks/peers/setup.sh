#!/usr/bin/env bash
# Create the peer profilers' virtualenvs (never the project's .venv), idempotently:
#   $PEERS_DIR/whylogs  whylogs 1.6.4 + PySpark 3.5.9 (whylogs' spark extra needs pyspark<4, pyarrow<13)
#   $PEERS_DIR/deequ    PyDeequ 1.7.0 + PySpark 3.5.9 (the Deequ jar, 2.1.0-spark-3.5, is fetched
#                       from Maven Central by spark.jars.packages on the first run of deequ_profile.py)
# A venv whose marker file lists the same pins is skipped; otherwise it is (re)installed.
#
#   bash benchmarks/peers/setup.sh                 # both, under benchmarks/peers/.venvs
#   PEERS_DIR=/tmp/peers bash benchmarks/peers/setup.sh deequ
set -euo pipefail

PEERS_DIR="${PEERS_DIR:-$(cd "$(dirname "$0")" && pwd)/.venvs}"
PYTHON="${PYTHON:-python3.11}"

WHYLOGS_PINS=(
    "whylogs[spark]==1.6.4" "pyspark==3.5.9" "pyarrow==12.0.1" "numpy==1.26.4" "pandas==2.3.3" "protobuf==7.36.2"
)
DEEQU_PINS=(
    "pydeequ==1.7.0" "pyspark==3.5.9" "pandas==2.3.3" "numpy==2.4.6"
)

make_venv() {
    local name="$1"; shift
    local dir="$PEERS_DIR/$name" marker="$PEERS_DIR/$name/.peers-pins"
    local want; want="$(printf '%s\n' "$@")"
    if [[ -x "$dir/bin/python" && -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        echo "[peers] $dir: present with the same pins, skipped"
        return 0
    fi
    echo "[peers] $dir: installing $*"
    mkdir -p "$PEERS_DIR"
    [[ -x "$dir/bin/python" ]] || "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    "$dir/bin/python" -m pip install -q "$@"
    printf '%s\n' "$@" > "$marker"
    "$dir/bin/python" -m pip list 2>/dev/null | grep -iE '^(whylogs|pydeequ|pyspark|pyarrow|pandas|numpy|protobuf) '
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(whylogs deequ)
for t in "${targets[@]}"; do
    case "$t" in
        whylogs) make_venv whylogs "${WHYLOGS_PINS[@]}" ;;
        deequ) make_venv deequ "${DEEQU_PINS[@]}" ;;
        *) echo "unknown target: $t (whylogs, deequ)" >&2; exit 2 ;;
    esac
done
