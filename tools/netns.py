"""Nodes on separate "hosts" of one machine: network namespaces joined by a bridge, each node
with its own address, TLS on its web process, its own Redis and its database over
PostgreSQL's Unix socket: what docs/deploy.md describes, small enough for a test.

- `TestNetwork`: one namespace per host (`ip netns`), a veth pair from each to a bridge in
  the machine's own namespace (which holds the `.254` address, so the test process is one more
  host: the operator's), no route anywhere else; `cut`/`restore` set a host's link down/up.
  Created and removed by its user; names carry a tag of the run so runs do not collide.
- `NamespacedCluster`: `tools.cluster.Cluster` whose processes run inside the namespaces
  (`ip netns exec`): daphne on a TLS endpoint of the host's address (`wss://` between nodes,
  certificates from `tools.test_ca`), a redis-server per node on a Unix socket, PostgreSQL
  through `/var/run/postgresql` (it listens on 127.0.0.1 only, and loopback is per namespace,
  but a Unix socket is a file, reachable from every namespace), secrets in files.
Needs root and iproute2; `netns_unavailable` says why not when it cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tools.cluster import Cluster, Node
from tools.test_ca import TestCA

POSTGRES_SOCKET_DIR = "/var/run/postgresql"
HTTPS_PORT = 8443


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def netns_unavailable() -> str | None:
    """Returns why namespaces cannot be made here (None if they can)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if not Path(POSTGRES_SOCKET_DIR, ".s.PGSQL.5432").exists():
        return f"PostgreSQL has no Unix socket in {POSTGRES_SOCKET_DIR}"
    probe = f"cstprobe{os.getpid() % 100_000}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as error:
        return f"`ip netns add` failed: {getattr(error, 'stderr', error)}"
    _ip("netns", "del", probe)
    return None


@dataclass(frozen=True, slots=True)
class Host:
    """One namespace of the test network: its name, address and the bridge side of its link."""

    namespace: str
    address: str
    outer_link: str

    def exec_prefix(self) -> list[str]:
        """Returns the command prefix that runs a program inside this host."""
        return ["ip", "netns", "exec", self.namespace]


class TestNetwork:
    """Namespaces `names` on subnet 10.<a>.<b>.0/24, bridged; `create` then `remove`."""

    __test__ = False

    def __init__(self, names: list[str], tag: str | None = None) -> None:
        """Describes the network; nothing exists until `create`."""
        self.tag = tag or f"cst{os.getpid() % 10_000}"
        number = os.getpid() % 250
        self.subnet = f"10.{200 + number // 50}.{number % 50 + 100}"
        self.bridge = f"{self.tag}br"
        self.hosts = {
            name: Host(f"{self.tag}-{name}", f"{self.subnet}.{index + 1}", f"{self.tag}v{index}")
            for index, name in enumerate(names)
        }
        self.operator_address = f"{self.subnet}.254"

    def create(self) -> TestNetwork:
        """Makes the bridge, the namespaces and their links."""
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.operator_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for host in self.hosts.values():
                self._host_create(host)
        except BaseException:
            self.remove()
            raise
        return self

    def _host_create(self, host: Host) -> None:
        inner = f"{host.outer_link}i"
        _ip("netns", "add", host.namespace)
        _ip("link", "add", host.outer_link, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", host.namespace)
        _ip("link", "set", host.outer_link, "master", self.bridge, "up")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", inner)
        _ip("-n", host.namespace, "link", "set", inner, "up")
        _ip("-n", host.namespace, "link", "set", "lo", "up")

    def cut(self, name: str) -> None:
        """Takes a host off the network (its link down, as a pulled cable)."""
        _ip("link", "set", self.hosts[name].outer_link, "down")

    def restore(self, name: str) -> None:
        """Puts a host back on the network."""
        _ip("link", "set", self.hosts[name].outer_link, "master", self.bridge, "up")

    def remove(self) -> None:
        """Deletes whatever of the network exists (namespaces take their links along)."""
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
            subprocess.run(["ip", "link", "del", host.outer_link], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class NamespacedNode(Node):
    """A node on a host of the test network, reached at https://ADDRESS:HTTPS_PORT."""

    host: Host
    secrets_dir: Path
    ca_file: Path

    @property
    def url(self) -> str:
        """Returns the node's HTTPS base URL (its certificate names its address)."""
        return f"https://{self.host.address}:{HTTPS_PORT}"

    @property
    def redis_socket(self) -> Path:
        """Returns the Unix socket of the node's own Redis."""
        return self.secrets_dir / "redis.sock"

    def env(self, alpha: Node, ledger_database: str) -> dict[str, str]:
        """Returns the environment of a deployed node: databases over the Unix socket, its own
        Redis, alpha over wss:// checked against the CA, secrets in files, TLS settings."""
        env = super().env(alpha, ledger_database)
        assert isinstance(alpha, NamespacedNode)
        secret_file = self.secrets_dir / "node.secret"
        secret_file.write_text(env.pop("CONSTELLATION_NODE_SECRET") + "\n")
        secret_file.chmod(0o600)
        socket_query = f"?host={POSTGRES_SOCKET_DIR}"
        env.update(
            CONSTELLATION_NODE_SECRET_FILE=str(secret_file),
            CONSTELLATION_DATABASE_URL=f"postgres://postgres@/{self.database}{socket_query}",
            CONSTELLATION_LEDGER_URL=f"postgres://postgres@/{ledger_database}{socket_query}",
            CONSTELLATION_REDIS_URL=f"unix://{self.redis_socket}",
            CONSTELLATION_ALPHA_URL=f"wss://{alpha.host.address}:{HTTPS_PORT}/ws/herald/",
            CONSTELLATION_ALPHA_CA_FILE=str(self.ca_file),
            # The web process asks the other nodes for the status page over https, too.
            SSL_CERT_FILE=str(self.ca_file),
            CONSTELLATION_ALLOWED_HOSTS=self.host.address,
            CONSTELLATION_HTTPS="true",
        )
        return env


class NamespacedCluster(Cluster):
    """A `Cluster` whose node `i` runs on host `node{i}` of `network`, over TLS."""

    def __init__(self, size: int, network: TestNetwork, *, name: str, workdir: Path) -> None:
        """Describes the nodes; `start` makes their certificates, Redis servers and processes."""
        super().__init__(size, name=name, base_port=HTTPS_PORT, workdir=workdir)
        self.network = network
        self.ca = TestCA(workdir / "tls")
        self.redis_servers: list[subprocess.Popen[bytes]] = []
        nodes: list[Node] = []
        for node in self.nodes:
            placed = NamespacedNode(
                node.index, node.keypair, HTTPS_PORT, node.database, node.redis_prefix
            )
            placed.host = network.hosts[f"node{node.index}"]
            placed.secrets_dir = workdir / f"node{node.index}"
            placed.secrets_dir.mkdir(mode=0o700, exist_ok=True)
            placed.ca_file = self.ca.certificate
            nodes.append(placed)
        self.nodes = nodes
        token_file = workdir / "init.token"
        token_file.write_text(self.init_token + "\n")
        token_file.chmod(0o600)
        # Alpha's init token from its file (the variable, which `Cluster` sets, left empty).
        self.node_env = {
            0: {"CONSTELLATION_INIT_TOKEN": "", "CONSTELLATION_INIT_TOKEN_FILE": str(token_file)}
        }

    def start(self) -> NamespacedCluster:
        """Starts each node's Redis, then everything `Cluster.start` starts."""
        for node in self._placed():
            self.ca.issue(f"node{node.index}", node.host.address)
            self.redis_servers.append(_redis_start(node.redis_socket, self.workdir))
        super().start()
        return self

    def _placed(self) -> list[NamespacedNode]:
        return [node for node in self.nodes if isinstance(node, NamespacedNode)]

    def command(self, node: Node, process: str) -> list[str]:
        """Returns the process's command line inside the node's host; the web process listens
        on a TLS endpoint of the host's address only."""
        assert isinstance(node, NamespacedNode)
        if process != "web":
            return [*node.host.exec_prefix(), *super().command(node, process)]
        tls = self.workdir / "tls"
        endpoint = (
            f"ssl:port={HTTPS_PORT}:interface={node.host.address}"
            f":privateKey={tls}/node{node.index}.key:certKey={tls}/node{node.index}.pem"
        )
        server = [self.python, "-m", "constellation_site.server", "-e", endpoint]
        return [*node.host.exec_prefix(), *server, "constellation_site.asgi:application"]

    def stop(self) -> None:
        """Stops the nodes, then their Redis servers."""
        super().stop()
        for server in self.redis_servers:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        self.redis_servers.clear()


def _redis_start(socket_path: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """Starts a redis-server listening only on `socket_path`; waits until it answers."""
    log = open(workdir / f"redis-{socket_path.parent.name}.log", "ab")  # noqa: SIM115
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(unix_socket_path=str(socket_path))
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                return server
        except (redis.ConnectionError, FileNotFoundError):
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise TimeoutError(f"redis-server on {socket_path} did not come up")
        time.sleep(0.05)
