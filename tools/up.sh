#!/usr/bin/env bash
# The README's first command: prepares the machine (tools/setup.sh) and runs a local
# constellation in the foreground until Ctrl-C. Extra arguments go to run_constellation.py:
# the constellation of the last run is kept (same keys, databases, demo accounts) unless
# --fresh is given, the first line says which, and a taken port is refused before anything
# is touched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
exec "${CONSTELLATION_VENV:-$ROOT/.venv}/bin/python" tools/run_constellation.py "$@"
