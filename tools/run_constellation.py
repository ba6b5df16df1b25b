"""Brings up a local constellation (the README's first command) and keeps it running.

Starts alpha and its auditors as real processes (tools/cluster.py), initializes the
constellation, funds demo accounts through the local ledger's faucet, and prints where
everything is: the frontend at alpha's URL, the nodes, the demo keys. Ctrl-C (or SIGTERM)
stops everything it started.

Between runs the constellation is kept: its node keys, demo accounts and admin password are
written to `var/<name>/constellation.json` (mode 0600, a local demo's secrets) and the next run
restarts the same nodes on the same databases; `--fresh` (or a changed shape, missing
databases, changed migrations) starts a new one, and the first line says which and why.

One run at a time: before anything else a run takes two exclusive locks, `var/<name>/up.lock`
(the constellation's databases and state) and `var/up-port-<port>.lock` (its ports), held
until it exits (the kernel drops them with the process, even on a crash). A second run while
one is running, still starting included (its servers do not listen yet while it drops and
migrates databases), refuses at once naming the first one's port and pid; a port taken by
anything else is refused too. Either way nothing was started or changed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quanta.core.keys import KeyPair  # noqa: E402
from tools.cluster import (  # noqa: E402
    Cluster,
    database_exists,
    migrations_fingerprint,
    wait_for_state,
)

DEMO_FUNDING = (("USD", "10000"), ("XLM", "10000"), ("BTC", "10"))


def demo_accounts_fund(cluster: Cluster, keys: list[KeyPair]) -> None:
    """Pays demo funds for each key into the vault (their deposits)."""
    for key in keys:
        for asset, amount in DEMO_FUNDING:
            cluster.faucet(key.public_key_strkey, asset, amount)


STATE_FILE = "constellation.json"


@dataclass
class Kept:
    """What a run keeps for the next one: the node keys, demo keys and admin password."""

    nodes: list[str]
    demo: list[str]
    admin_password: str
    migrations: str

    @classmethod
    def read(cls, path: Path) -> Kept | None:
        """Returns the kept constellation, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(path.read_text())
            return cls(data["nodes"], data["demo"], data["admin_password"], data["migrations"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        """Writes it readable by the owner only (it holds secrets of the local demo)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(self.__dict__, file, indent=2)


def ports_taken(first: int, count: int) -> list[int]:
    """Returns the ports of first .. first + count - 1 that something listens on."""
    taken = []
    for port in range(first, first + count):
        with socket.socket() as probe:
            # As the servers do: connections of a stopped run in TIME_WAIT do not hold the
            # port, a listener does.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                taken.append(port)
    return taken


LOCKS_DIR = Path(__file__).resolve().parent.parent / "var"


class RunLock:
    """An exclusive lock on a file, held by this process until it exits (not inherited by
    the servers it starts: Python opens files non-inheritable). The file names the holder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.descriptor: int | None = None

    def acquire(self, port: int) -> str | None:
        """Takes the lock and writes "pid port" into it; returns the holder's line when
        another process holds it (the lock is not taken then)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 100, 0).decode(errors="replace").strip()
            os.close(descriptor)
            return holder or "? ?"
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {port}\n".encode(), 0)
        self.descriptor = descriptor
        HELD_LOCKS.append(self)
        return None


HELD_LOCKS: list[RunLock] = []  # Held until the process exits.


def run_locks_take(name: str, port: int) -> str | None:
    """Takes this run's locks (its name, its base port); returns the refusal sentence when
    another run holds one of them. The locks stay held until the process exits."""
    for path in (LOCKS_DIR / name / "up.lock", LOCKS_DIR / f"up-port-{port}.lock"):
        holder = RunLock(path).acquire(port)
        if holder is not None:
            pid, _, held_port = holder.partition(" ")
            return (
                f"refused: a constellation is already running on port {held_port or '?'} "
                f"(pid {pid}; its lock: {path}); stop it with Ctrl-C first, or pass --name "
                f"and --port; nothing was started or changed"
            )
    return None


def why_fresh(args: argparse.Namespace, kept: Kept | None, name: str, size: int) -> str | None:
    """Returns why this run must start a new constellation, or None to keep the last one."""
    if args.fresh:
        return "--fresh was given"
    if kept is None:
        return "no constellation was kept in var/" + name
    if len(kept.nodes) != size or len(kept.demo) != args.demo_accounts:
        return "the kept one has another number of nodes or demo accounts"
    if kept.migrations != migrations_fingerprint():
        return "the database migrations changed since it was kept"
    databases = [f"constellation_{name}_{i}" for i in range(size)]
    if not all(database_exists(db) for db in [*databases, f"constellation_{name}_ledger"]):
        return "its databases are gone"
    return None


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auditors", type=int, default=2, help="auditors besides alpha")
    parser.add_argument("--port", type=int, default=8000, help="alpha's HTTP port")
    parser.add_argument("--demo-accounts", type=int, default=2, help="funded demo accounts")
    parser.add_argument("--fresh", action="store_true", help="start a new constellation")
    parser.add_argument("--name", default="local", help="databases and var/NAME (default local)")
    return parser.parse_args(argv)


def _summary(cluster: Cluster, demo: list[KeyPair], password: str) -> None:
    info = cluster.info()
    print(f"constellation Ready at apex {info['apex']}: frontend at {cluster.alpha.url}/")
    constellation = info["constellation_id"]
    print(f"  constellation id {constellation} (every signature is bound to it)")
    print(f"  the page pinned to it: {cluster.alpha.url}/?constellation={constellation}")
    for node in cluster.nodes:
        role = "alpha" if node.index == 0 else "auditor"
        print(f"  {role:7} {node.keypair.public_key_strkey} {node.url} db={node.database}")
    funding = ", ".join(f"{amount} {asset}" for asset, amount in DEMO_FUNDING)
    print(f"demo accounts ({funding} each at creation; import the secret in the browser):")
    for key in demo:
        print(f"  {key.public_key_strkey}  secret {key.secret}")
    print(f"admin: {cluster.alpha.url}/admin/ user admin, password {password}")
    print(f"logs in {cluster.workdir}")
    print("Ctrl-C stops everything (the constellation is kept for the next run)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Runs the constellation until interrupted."""
    args = _parse(argv)
    size = 1 + args.auditors
    refusal = run_locks_take(args.name, args.port)
    if refusal is not None:
        print(refusal, file=sys.stderr, flush=True)
        return 1
    taken = ports_taken(args.port, size)
    if taken:
        ports = ", ".join(str(port) for port in taken)
        print(
            f"refused: port {ports} is in use (another tools/up.sh still running? stop it "
            f"with Ctrl-C, or pass --port); nothing was started or changed",
            file=sys.stderr,
        )
        return 1
    state_path = Path(__file__).resolve().parent.parent / "var" / args.name / STATE_FILE
    kept = Kept.read(state_path)
    reason = why_fresh(args, kept, args.name, size)
    if reason is None and kept is not None:
        print(
            f"keeping the constellation of the last run ({state_path}); --fresh starts over",
            flush=True,
        )
        return _run(args, size, kept, fresh=False)
    print(f"starting a FRESH constellation ({reason}): new keys, empty databases", flush=True)
    state_path.unlink(missing_ok=True)  # Until the new one is funded, nothing is kept.
    fresh = Kept(
        [KeyPair.random().secret for _ in range(size)],
        [KeyPair.random().secret for _ in range(args.demo_accounts)],
        secrets.token_urlsafe(12),
        migrations_fingerprint(),
    )
    return _run(args, size, fresh, fresh=True)


def _run(args: argparse.Namespace, size: int, state: Kept, *, fresh: bool) -> int:
    """Starts (fresh: initializes and funds) the constellation and waits for a signal."""
    # Demo mode turns on the browser's faucet button (local ledger only; never in production).
    cluster = Cluster(
        size,
        name=args.name,
        base_port=args.port,
        seeds=[KeyPair.from_secret(secret) for secret in state.nodes],
        extra_env={"CONSTELLATION_DEMO": "1"},
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    demo = [KeyPair.from_secret(secret) for secret in state.demo]
    try:
        return _serve(cluster, state, demo, stop, fresh=fresh)
    except (TimeoutError, OSError) as error:
        print(f"the constellation did not start ({error}): see the logs in {cluster.workdir}")
        return 1
    finally:
        cluster.stop()


def _serve(
    cluster: Cluster, state: Kept, demo: list[KeyPair], stop: threading.Event, *, fresh: bool
) -> int:
    """Starts the nodes (fresh: initializes and funds them), prints the summary, waits."""
    cluster.start(keep=not fresh)
    if fresh:
        answer = cluster.initialize()
        if answer.get("status") != 200:
            print(f"initialization failed: {answer}", file=sys.stderr)
            return 1
    for node in cluster.nodes:
        wait_for_state(cluster, "Ready", 60, node)
    if fresh:
        demo_accounts_fund(cluster, demo)
        cluster.admin_create("admin", state.admin_password)
        state.write(Path(cluster.workdir) / STATE_FILE)
    _summary(cluster, demo, state.admin_password)
    stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
