"""Start and stop a local constellation of real processes: the one harness used by the
README's `tools/up.sh`, the cluster tests and the benchmarks.

Each node gets its own PostgreSQL database (cloned from a migrated template, so a node starts
in well under a second), its own Redis key prefix and its own processes: daphne (web: gateway,
herald endpoint, HTTP) and the engine worker (`runworker quanta`). Processes run with this
repository's Python; logs go to `<workdir>/<node>-<process>.log`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from constellation_client.chain import ChainError, genesis_id  # noqa: E402
from constellation_client.wire import node_urls  # noqa: E402
from quanta.core.keys import KeyPair  # noqa: E402
from quanta.core.testing import default_settings, settings_quantum  # noqa: E402
from quanta.core.xdr.codec import encode  # noqa: E402
from quanta.core.xdr.schema import ConstellationSettings  # noqa: E402
from tools.fetch import urlopen  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "CONSTELLATION_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CONSTELLATION_REDIS_URL", "redis://127.0.0.1:6379/0")
# Two checkouts testing at once (CONSTELLATION_TEST_RUN, as in the test settings) may hold
# different migrations: each keeps templates of its own.
_RUN = os.environ.get("CONSTELLATION_TEST_RUN", "")
TEMPLATE_DB = f"constellation_template{_RUN}"
LEDGER_TEMPLATE_DB = f"constellation_template{_RUN}_ledger"
READY_TIMEOUT_S = 60.0


@dataclass
class Node:
    """One node of the local constellation and its processes."""

    index: int
    keypair: KeyPair
    http_port: int
    database: str
    redis_prefix: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Returns the node's HTTP base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def env(self, alpha: Node, ledger_database: str) -> dict[str, str]:
        """Returns the environment of this node's processes."""
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="constellation_site.settings.base",
            CONSTELLATION_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{self.database}",
            CONSTELLATION_LEDGER_URL=f"postgres://postgres@127.0.0.1:5432/{ledger_database}",
            CONSTELLATION_REDIS_URL=REDIS_URL,
            CONSTELLATION_REDIS_PREFIX=self.redis_prefix,
            CONSTELLATION_NODE_SECRET=self.keypair.secret,
            CONSTELLATION_HTTP_PORT=str(self.http_port),
            CONSTELLATION_ROLE="alpha" if self.index == 0 else "auditor",
            CONSTELLATION_ALPHA_URL=f"ws://127.0.0.1:{alpha.http_port}/ws/herald/",
            PYTHONUNBUFFERED="1",
        )
        return env


def _admin_execute(statement: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(statement)


def template_database_ensure(python: str = sys.executable) -> None:
    """Creates and migrates the template databases once (again when migrations change): one
    for node databases, one for the ledger (each alias keeps its own migration records)."""
    fingerprint = _migrations_fingerprint()
    for database, alias in ((TEMPLATE_DB, "default"), (LEDGER_TEMPLATE_DB, "ledger")):
        if _database_comment(database) == fingerprint:
            continue
        _admin_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _admin_execute(f'CREATE DATABASE "{database}"')
        url = f"postgres://postgres@127.0.0.1:5432/{database}"
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="constellation_site.settings.base",
            CONSTELLATION_DATABASE_URL=url,
            CONSTELLATION_LEDGER_URL=url,
        )
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0", "--database", alias],
            cwd=ROOT,
            env=env,
            check=True,
        )
        _admin_execute(f"COMMENT ON DATABASE \"{database}\" IS '{fingerprint}'")


def _database_comment(database: str) -> str | None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        row = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return None if row is None else row[0]


def _migrations_fingerprint() -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:32]


def database_exists(name: str) -> bool:
    """Tells whether a database of that name exists."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def migrations_fingerprint() -> str:
    """Returns the fingerprint of every app's migrations (what the templates were built from)."""
    return _migrations_fingerprint()


def database_create(name: str, template: str = TEMPLATE_DB) -> None:
    """Creates a fresh database from a migrated template."""
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def redis_prefix_clear(prefix: str) -> None:
    """Deletes every Redis key of a node prefix (stale status, channel leftovers)."""
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


class Cluster:
    """A local constellation: alpha (node 0) and auditors, each with its own processes."""

    def __init__(
        self,
        size: int = 1,
        *,
        name: str = "local",
        base_port: int = 8000,
        workdir: Path | None = None,
        seeds: Sequence[KeyPair] | None = None,
        python: str = sys.executable,
        extra_env: dict[str, str] | None = None,
        node_env: dict[int, dict[str, str]] | None = None,
    ) -> None:
        """Describes `size` nodes on ports base_port, base_port + 1, ..."""
        self.name = name
        self.python = python
        self.extra_env = dict(extra_env or {})
        self.node_env = dict(node_env or {})
        self.workdir = workdir or ROOT / "var" / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        keys = list(seeds) if seeds else [KeyPair.random() for _ in range(size)]
        # Alpha's one-time initialization token (CONSTELLATION_INIT_TOKEN), which `initialize`
        # presents; extra_env or node_env may replace it ("" lets alpha make and log its own).
        self.init_token = secrets.token_urlsafe(24)
        self.ledger_database = f"constellation_{name}_ledger"
        self.nodes = [
            Node(i, keys[i], base_port + i, f"constellation_{name}_{i}", f"cst-{name}-{i}")
            for i in range(size)
        ]

    @property
    def alpha(self) -> Node:
        """Returns the alpha node."""
        return self.nodes[0]

    def start(self, *, keep: bool = False) -> Cluster:
        """Creates the databases (`keep`: reuses the existing ones, as a restart of the whole
        constellation) and starts every node's processes; waits for their web."""
        template_database_ensure(self.python)
        if not keep:
            database_create(self.ledger_database, LEDGER_TEMPLATE_DB)
        for node in self.nodes:
            if not keep:
                database_create(node.database)
            redis_prefix_clear(node.redis_prefix)
            self.start_process(node, "web")
            self.start_process(node, "engine")
            if node.index > 0:
                self.start_process(node, "herald")
        for node in self.nodes:
            wait_for_http(f"{node.url}/api/constellation/info", READY_TIMEOUT_S)
        return self

    def command(self, node: Node, process: str) -> list[str]:
        """Returns the command line of one process of a node."""
        if process == "web":
            return [
                self.python,
                "-m",
                "constellation_site.server",
                "-b",
                "127.0.0.1",
                "-p",
                str(node.http_port),
                "constellation_site.asgi:application",
            ]
        if process == "engine":
            return [self.python, "manage.py", "runworker", "quanta"]
        if process == "herald":
            return [self.python, "manage.py", "run_herald_link"]
        raise ValueError(process)

    def process_env(self, node: Node) -> dict[str, str]:
        """Returns the environment of one node's processes: the node's own, alpha's
        initialization token, then `extra_env` and the node's `node_env` over them."""
        return {
            **node.env(self.alpha, self.ledger_database),
            # Every node of a local cluster links from 127.0.0.1: the herald's cap of links
            # per address (4, for auditors on their own machines) would refuse the fifth
            # auditor for good (HTTP 429), so a cluster of 6 nodes or more never got Ready.
            "CONSTELLATION_WS_HERALD_PER_ADDRESS_MAX": str(max(4, len(self.nodes))),
            **({"CONSTELLATION_INIT_TOKEN": self.init_token} if node.index == 0 else {}),
            **self.extra_env,
            **self.node_env.get(node.index, {}),
        }

    def start_process(self, node: Node, process: str) -> None:
        """Starts (or restarts) one process of a node."""
        log = open(self.workdir / f"node{node.index}-{process}.log", "ab")  # noqa: SIM115
        node.processes[process] = subprocess.Popen(
            self.command(node, process),
            cwd=ROOT,
            env=self.process_env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_process(self, node: Node, process: str, sig: int = signal.SIGKILL) -> None:
        """Kills one process of a node (SIGKILL by default: a crash)."""
        child = node.processes.pop(process)
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass
        child.wait(timeout=15)

    def signal_process(self, node: Node, process: str, sig: int) -> None:
        """Sends a signal to one process of a node and keeps it (e.g. SIGSTOP / SIGCONT)."""
        os.killpg(node.processes[process].pid, sig)

    def initialize(self, settings: ConstellationSettings | None = None) -> dict[str, object]:
        """Signs the first settings with every node's key and posts them to alpha with its
        initialization token."""
        keys = [node.keypair for node in self.nodes]
        settings = settings or default_settings(keys, addresses=[node.url for node in self.nodes])
        return self.init_post(encode(settings_quantum(settings, keys).update))

    def init_post(self, envelope: bytes, token: str | None = None) -> dict[str, object]:
        """Posts a signed genesis envelope to alpha's init with `token` (default: the
        cluster's own; "" = none) and returns the JSON answer with its HTTP status."""
        token = self.init_token if token is None else token
        body = json.dumps({"envelope": base64.b64encode(envelope).decode()})
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http_post_json(f"{self.alpha.url}/api/constellation/init", body, headers)

    def manage(self, node: Node, *args: str) -> str:
        """Runs a management command with a node's environment; returns its output."""
        result = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=ROOT,
            env=node.env(self.alpha, self.ledger_database),
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def admin_create(self, username: str, password: str, node: Node | None = None) -> None:
        """Creates a Django superuser on a node (alpha by default) for its admin site."""
        target = node or self.alpha
        subprocess.run(
            [
                self.python,
                "manage.py",
                "createsuperuser",
                "--noinput",
                "--username",
                username,
                "--email",
                f"{username}@localhost",
            ],
            cwd=ROOT,
            env={
                **target.env(self.alpha, self.ledger_database),
                "DJANGO_SUPERUSER_PASSWORD": password,
            },
            capture_output=True,
            text=True,
            check=True,
        )

    def faucet(self, public_key: str, asset: str, amount: str) -> None:
        """Pays `amount` of `asset` into the vault from `public_key` (a deposit)."""
        self.manage(self.alpha, "faucet", public_key, asset, amount)

    def info(self, node: Node | None = None) -> dict[str, object]:
        """Returns a node's /api/constellation/info."""
        with urlopen(f"{(node or self.alpha).url}/api/constellation/info", timeout=10) as response:
            return dict(json.loads(response.read()))

    def constellation_id(self, node: Node | None = None) -> bytes:
        """Returns the constellation id a node's info serves (what every signature in it is
        bound to); the node must be initialized."""
        found = self.info(node).get("constellation_id")
        if not isinstance(found, str):
            raise RuntimeError(f"node {(node or self.alpha).index} is not initialized")
        return bytes.fromhex(found)

    def stop(self) -> None:
        """Stops every process (SIGTERM, then SIGKILL after a grace period)."""
        for node in self.nodes:
            for process in list(node.processes):
                child = node.processes.pop(process)
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                    child.wait(timeout=10)
                except ProcessLookupError:
                    continue
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait(timeout=10)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_base_port(count: int, first: int, *, stop: int = 30_000, step: int = 10) -> int:
    """Returns a port p >= `first` such that p .. p + count - 1 are free on loopback now.

    Free now, not reserved: callers in one process hand out distinct ranges (`first` moves
    on), and different processes start from different `first`s to make a clash unlikely."""
    for base in range(first, stop, step):
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} free consecutive ports between {first} and {stop}")


def wait_for_http(url: str, timeout_s: float) -> None:
    """Polls `url` until it answers (any HTTP status) or `timeout_s` passes; the timeout
    names the last error (a refused connection is a node not up yet, a certificate refused
    is not)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up in {timeout_s} s: {error}") from None
            time.sleep(0.1)


def http_post_json(url: str, body: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    """POSTs JSON and returns the decoded JSON answer, whatever the HTTP status (the status
    also under "http_status")."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urlopen(request, timeout=60) as response:
            return {**json.loads(response.read()), "http_status": response.status}
    except urllib.error.HTTPError as error:
        return {**json.loads(error.read()), "http_status": error.code}


def wait_for_restart(
    cluster: Cluster, started_after_ms: int, state: str, timeout_s: float, node: Node | None = None
) -> dict[str, object]:
    """Waits until an engine started after `started_after_ms` reports `state`."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = wait_for_state(cluster, state, max(0.1, deadline - time.monotonic()), node)
        if int(str(info.get("engine_started_ms", 0))) > started_after_ms:
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(f"no restarted engine reached {state}: {info}")
        time.sleep(0.1)


PIN_TIMEOUT_S = 10.0
PUBLISHED_WITHIN_S = 30.0
"""How long alpha may take to publish its genesis after the nodes are Ready: the chain shows
an update only once its quantum is final and persisted (`settings_chain_after`), and with
auditors the genesis is final only once they signed it, persisted at alpha's next flush."""


def published_pin(cluster: Cluster) -> bytes:
    """Returns the id the cluster's published genesis settings hash to (waiting, bounded,
    until alpha publishes it): what a test or benchmark that started the cluster itself may
    pin its clients to (trust on first use is sound there)."""
    deadline = time.monotonic() + PUBLISHED_WITHIN_S
    while True:
        try:
            return genesis_id(node_urls(cluster.alpha.url)[1], PIN_TIMEOUT_S)
        except ChainError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def info_reaches(
    cluster: Cluster, key: str, apex: int, timeout_s: float, node: Node | None = None
) -> bool:
    """Polls a node's info (alpha's by default) until the apex under `key` ("apex": what the
    engine last published, a tick behind a final result at most; "snapshot_apex": the
    persisted snapshot) is at least `apex`; tells whether it got there within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = cluster.info(node).get(key)
        if isinstance(found, int) and found >= apex:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def wait_for_state(
    cluster: Cluster, state: str, timeout_s: float, node: Node | None = None
) -> dict[str, object]:
    """Polls a node's info until it reports `state`."""
    deadline = time.monotonic() + timeout_s
    info: dict[str, object] = {}
    while True:
        try:
            info = cluster.info(node)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            info = {"state": "unreachable"}  # The web process is (re)starting.
        if info.get("state") == state:
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(f"node did not reach {state}: {info}")
        time.sleep(0.1)
