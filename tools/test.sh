#!/usr/bin/env bash
# The README's test command: prepares the machine (tools/setup.sh) and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
PY="${CONSTELLATION_VENV:-$ROOT/.venv}/bin/python"
exec "$PY" -m pytest "$@"
