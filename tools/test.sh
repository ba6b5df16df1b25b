#!/usr/bin/env bash
# The README's test command: prepares the machine (tools/setup.sh) and runs the whole suite.
# Extra arguments go to pytest.
#
# With options only (CI passes -q), the suite runs as two pytest processes at once: the
# cluster and browser tests (tests/cluster, tests/browser: real node processes, Chromium) in
# the foreground, and every other test beside them at a lower CPU priority (nice 10, about a
# tenth of a core when both are busy), under a test-run name of its own (CONSTELLATION_TEST_RUN
# + "_unit": its own databases and Redis prefix) and without Hypothesis's per-example deadline
# (conftest.py). The cluster tests spend much of their time waiting on their nodes, and the
# other tests fill those gaps instead of running after them. Their output follows the cluster
# run's; the exit status is the first failure's. With a test path or any other argument (or
# CONSTELLATION_TEST_ONE_PROCESS=1), one pytest process runs what the arguments select.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
PY="${CONSTELLATION_VENV:-$ROOT/.venv}/bin/python"

only_options=1
for argument in "$@"; do
    [[ "$argument" == -* ]] || only_options=0
done
if [[ "$only_options" == 0 || "${CONSTELLATION_TEST_ONE_PROCESS:-}" == 1 ]]; then
    exec "$PY" -m pytest "$@"
fi

unit_log="$(mktemp -t constellation-unit-tests.XXXXXX)"
CONSTELLATION_TEST_RUN="${CONSTELLATION_TEST_RUN:-}_unit" CONSTELLATION_HYPOTHESIS_PROFILE=shared_cpu \
    nice -n 10 \
    "$PY" -m pytest "$@" --ignore=tests/cluster --ignore=tests/browser >"$unit_log" 2>&1 &
unit_pid=$!
trap 'kill "$unit_pid" 2>/dev/null || true; rm -f "$unit_log"' EXIT
cluster_status=0
"$PY" -m pytest "$@" tests/cluster tests/browser || cluster_status=$?
unit_status=0
wait "$unit_pid" || unit_status=$?
echo "== the other tests (run beside the cluster tests, at nice 10)"
cat "$unit_log"
if [[ "$cluster_status" != 0 ]]; then
    exit "$cluster_status"
fi
exit "$unit_status"
