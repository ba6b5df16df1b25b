"""Brings up a local constellation (the README's first command) and keeps it running.

Starts alpha and its auditors as real processes (tools/cluster.py), initializes the
constellation and prints where everything is; Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.cluster import Cluster, wait_for_state  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Runs the constellation until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--auditors", type=int, default=0, help="auditors besides alpha")
    parser.add_argument("--port", type=int, default=8000, help="alpha's HTTP port")
    args = parser.parse_args(argv)
    cluster = Cluster(1 + args.auditors, name="local", base_port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with cluster:
        answer = cluster.initialize()
        if answer.get("status") != 200:
            print(f"initialization failed: {answer}", file=sys.stderr)
            return 1
        info = wait_for_state(cluster, "Ready", 60)
        print(f"constellation Ready at apex {info['apex']}: {cluster.alpha.url}/")
        for node in cluster.nodes:
            role = "alpha" if node.index == 0 else "auditor"
            print(f"  {role:7} {node.keypair.public_key_strkey} {node.url} db={node.database}")
        print(f"logs in {cluster.workdir}; Ctrl-C stops everything")
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
