#!/usr/bin/env bash
# The README's test command: prepares the machine (tools/setup.sh) and runs the whole suite.
# Extra arguments go to pytest.
#
# The network-namespace deployment test runs in a pytest process of its own, after the rest:
# it passes alone, but after the other cluster tests in one process its nodes' HTTPS never
# answered the test process within 60 s (seen twice; cause not yet found, see the closing
# note of 2026-12-02). Both runs must pass.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
PY="${CONSTELLATION_VENV:-$ROOT/.venv}/bin/python"
NETNS_TEST="tests/cluster/test_deployment_netns.py"
if [ "$#" -eq 0 ] || [ "$*" = "-q" ]; then
    "$PY" -m pytest "$@" --deselect "$NETNS_TEST::test_nodes_on_separate_hosts_over_tls_survive_a_cut_auditor_link"
    exec "$PY" -m pytest "$@" "$NETNS_TEST"
fi
exec "$PY" -m pytest "$@"
