"""Brings up a local constellation (the README's first command) and keeps it running.

Starts alpha and its auditors as real processes (tools/cluster.py), initializes the
constellation, funds demo accounts through the local ledger's faucet, and prints where
everything is: the frontend at alpha's URL, the nodes, the demo keys. Ctrl-C (or SIGTERM)
stops everything it started.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quanta.core.keys import KeyPair  # noqa: E402
from tools.cluster import Cluster, wait_for_state  # noqa: E402

DEMO_FUNDING = (("USD", "10000"), ("XLM", "10000"), ("BTC", "10"))


def demo_accounts_fund(cluster: Cluster, count: int) -> list[KeyPair]:
    """Creates `count` keys and pays demo funds for each into the vault (their deposits)."""
    keys = [KeyPair.random() for _ in range(count)]
    for key in keys:
        for asset, amount in DEMO_FUNDING:
            cluster.faucet(key.public_key_strkey, asset, amount)
    return keys


def main(argv: list[str] | None = None) -> int:
    """Runs the constellation until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auditors", type=int, default=2, help="auditors besides alpha")
    parser.add_argument("--port", type=int, default=8000, help="alpha's HTTP port")
    parser.add_argument("--demo-accounts", type=int, default=2, help="funded demo accounts")
    args = parser.parse_args(argv)
    # Demo mode turns on the browser's faucet button (local ledger only; never in production).
    cluster = Cluster(
        1 + args.auditors,
        name="local",
        base_port=args.port,
        extra_env={"CONSTELLATION_DEMO": "1"},
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with cluster:
        answer = cluster.initialize()
        if answer.get("status") != 200:
            print(f"initialization failed: {answer}", file=sys.stderr)
            return 1
        for node in cluster.nodes:
            wait_for_state(cluster, "Ready", 60, node)
        demo = demo_accounts_fund(cluster, args.demo_accounts)
        password = secrets.token_urlsafe(12)
        cluster.admin_create("admin", password)
        info = cluster.info()
        print(f"constellation Ready at apex {info['apex']}: frontend at {cluster.alpha.url}/")
        constellation = info["constellation_id"]
        print(f"  constellation id {constellation} (every signature is bound to it)")
        print(f"  the page pinned to it: {cluster.alpha.url}/?constellation={constellation}")
        for node in cluster.nodes:
            role = "alpha" if node.index == 0 else "auditor"
            print(f"  {role:7} {node.keypair.public_key_strkey} {node.url} db={node.database}")
        funding = ", ".join(f"{amount} {asset}" for asset, amount in DEMO_FUNDING)
        print(f"demo accounts ({funding} each; import the secret in the browser):")
        for key in demo:
            print(f"  {key.public_key_strkey}  secret {key.secret}")
        print(f"admin: {cluster.alpha.url}/admin/ user admin, password {password}")
        print(f"logs in {cluster.workdir}")
        print("Ctrl-C stops everything", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
