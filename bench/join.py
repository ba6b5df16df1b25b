"""An empty auditor catching up: joining from a snapshot vs. replaying from apex 1 (issue 20).

Goal: how long an auditor whose database is empty takes to be Ready at alpha's apex, and how
many bytes it reads, after `--quanta` quanta of history: (a) started empty, it replays the
whole chain from apex 1 over the herald; (b) `manage.py join_from_snapshot` first loads
alpha's snapshot (checked against the settings chain and a majority-signed state hash at the
next attested apex), then it starts and catches up only what came after.

Method:
1. `tools/cluster.py` starts alpha and 2 auditors (Auditor participation) and initializes them;
   `--clients` clients (bench/cluster.py's traders: orders, cancellations, payments) keep
   requests in flight until alpha's apex passes `--quanta`.
2. A light load goes on during both measurements (one request in flight per client): the
   join needs the chain to reach the next attested apex, and a live constellation is what an
   operator rejoins.
3. Replay: auditor 2's processes are killed, it gets a new empty (migrated) database and a
   cleared Redis prefix, its processes start; timed until it is Ready at or above the apex
   alpha had when they started (its `/api/constellation/info`). Bytes: the quanta 1..apex as
   alpha serves them (`/api/constellation/quanta`, XDR of each `SignedQuantum`: what the
   herald carries, less its batch framing).
4. Join: the same fresh start, but `join_from_snapshot --from alpha` runs first; timed from
   the command's start until Ready at or above alpha's apex then. Bytes: what the command
   read (snapshot, quanta to the attested apex, attestations) plus the quanta the node then
   caught up.
Output: one JSON object on stdout, one human line on stderr. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import struct
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script: find the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cluster import funded_traders, read_notifications, saturate  # noqa: E402
from quanta.core.xdr.codec import decode  # noqa: E402
from quanta.core.xdr.schema import SignedQuantum  # noqa: E402
from tools.cluster import (  # noqa: E402
    Cluster,
    database_create,
    redis_prefix_clear,
    wait_for_state,
)

READY_WAIT_S = 3600.0


def apex_of(cluster: Cluster, index: int) -> int:
    return int(str(cluster.info(cluster.nodes[index])["apex"]))


def quanta_bytes(cluster: Cluster, after: int, upto: int) -> int:
    """Returns the bytes of the quanta (after, upto] as alpha serves them."""
    total = 0
    while after < upto:
        url = f"{cluster.alpha.url}/api/constellation/quanta?after={after}"
        with urllib.request.urlopen(url, timeout=60) as answer:
            body = answer.read()
        if not body:
            break
        offset = 0
        while offset < len(body):
            (size,) = struct.unpack_from(">I", body, offset)
            last = decode(SignedQuantum, body[offset + 4 : offset + 4 + size])
            offset += 4 + size
            if last.quantum.apex <= upto:
                total += 4 + size
        after = last.quantum.apex
    return total


def fresh(cluster: Cluster, suffix: str) -> None:
    """Kills auditor 2 and gives it an empty migrated database and a cleared Redis prefix."""
    node = cluster.nodes[2]
    for process in list(node.processes):
        cluster.kill_process(node, process)
    node.database = f"{node.database.split('__')[0]}__{suffix}"
    database_create(node.database)
    redis_prefix_clear(node.redis_prefix)


def start_and_time(cluster: Cluster, since: float, target: int) -> tuple[float, int]:
    """Starts auditor 2; returns the seconds from `since` until it is Ready at or above
    `target` (alpha's apex when the measurement began; the light load goes on) and its apex
    then."""
    node = cluster.nodes[2]
    for process in ("web", "engine", "herald"):
        cluster.start_process(node, process)
    wait_for_state(cluster, "Ready", READY_WAIT_S, node)
    while True:
        apex = apex_of(cluster, 2)
        if apex >= target:
            return time.monotonic() - since, apex
        time.sleep(0.1)  # Polling another process's progress; bounded by the load's pace.


async def measure(cluster: Cluster, args: argparse.Namespace) -> dict[str, object]:
    """Builds the history, then times the replay and the join under a light load."""
    traders = await funded_traders(cluster, args.clients, 1, 64)
    readers = [asyncio.create_task(read_notifications(t.client)) for t in traders]
    started = time.monotonic()
    while await asyncio.to_thread(apex_of, cluster, 0) < args.quanta:
        await saturate(traders, args.window, 10.0)
        print(f"history: apex {apex_of(cluster, 0)}", file=sys.stderr)
    history_s = time.monotonic() - started
    stop = asyncio.Event()

    async def light() -> None:
        while not stop.is_set():
            await saturate(traders[:2], 1, 1.0)

    load = asyncio.create_task(light())
    try:
        await asyncio.to_thread(fresh, cluster, "replay")
        target = await asyncio.to_thread(apex_of, cluster, 0)
        replay_s, replay_apex = await asyncio.to_thread(
            start_and_time, cluster, time.monotonic(), target
        )
        replay_bytes = await asyncio.to_thread(quanta_bytes, cluster, 0, replay_apex)

        await asyncio.to_thread(fresh, cluster, "join")
        pin = cluster.constellation_id().hex()
        join_started = time.monotonic()
        target = await asyncio.to_thread(apex_of, cluster, 0)
        said = await asyncio.to_thread(
            cluster.manage,
            cluster.nodes[2],
            *("join_from_snapshot", "--from", cluster.alpha.url),
            *("--genesis-id", pin, "--wait", "600"),
        )
        command_s = time.monotonic() - join_started
        found = re.search(r"joined at apex (\d+) \(snapshot at (\d+).*? (\d+) bytes in", said)
        assert found, said
        joined_apex, snapshot_apex, command_bytes = (int(found[i]) for i in (1, 2, 3))
        join_s, ready_apex = await asyncio.to_thread(start_and_time, cluster, join_started, target)
        caught_bytes = await asyncio.to_thread(quanta_bytes, cluster, joined_apex, ready_apex)
    finally:
        stop.set()
        await asyncio.wait_for(load, 120)
        for reader in readers:
            reader.cancel()
        for trader in traders:
            await trader.client.close()
    return {
        "history_build_s": round(history_s, 1),
        "replay_apex": replay_apex,
        "replay_s": round(replay_s, 1),
        "replay_bytes": replay_bytes,
        "join_command_s": round(command_s, 1),
        "join_s": round(join_s, 1),
        "join_snapshot_apex": snapshot_apex,
        "join_apex": joined_apex,
        "join_ready_apex": ready_apex,
        "join_command_bytes": command_bytes,
        "caught_bytes": caught_bytes,
        "join_output": said.strip().splitlines(),
    }


def snapshot_scale(accounts: int, orders: int) -> dict[str, object]:
    """Returns the bytes and the encode / decode (rebuild and self-check) seconds of the
    snapshot of a state of `accounts` accounts (USD and XLM each) and `orders` resting orders
    (bench/scale.py's state): what the join's snapshot costs as the state grows, without a
    cluster."""
    from bench.scale import GENESIS, Scale
    from quanta import gc_policy
    from quanta.core.state_snapshot import snapshot_decode, snapshot_encode

    gc_policy.settle()  # as join_from_snapshot does

    scale = Scale(accounts)
    scale.rest_orders(orders)
    state = scale.engine.state
    state.state_hash()
    start = time.perf_counter()
    data = snapshot_encode(state, GENESIS, 1)
    encoded_s = time.perf_counter() - start
    start = time.perf_counter()
    loaded = snapshot_decode(data)
    decoded_s = time.perf_counter() - start
    assert loaded.state_hash == state.state_hash()
    return {
        "snapshot_accounts": accounts,
        "snapshot_orders": orders,
        "snapshot_bytes": len(data),
        "snapshot_bytes_per_account": round(len(data) / accounts, 1),
        "snapshot_encode_s": round(encoded_s, 2),
        "snapshot_decode_s": round(decoded_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--snapshot-accounts",
        type=int,
        default=0,
        help="only measure the snapshot of a state of this many accounts (no cluster)",
    )
    parser.add_argument("--snapshot-orders", type=int, default=0)
    parser.add_argument("--quanta", type=int, default=100_000, help="history length")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--attest-every", type=int, default=1000)
    parser.add_argument("--port", type=int, default=19_600)
    args = parser.parse_args(argv)
    if args.snapshot_accounts:
        print(json.dumps(snapshot_scale(args.snapshot_accounts, args.snapshot_orders)))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-join-"))
    env = {"CONSTELLATION_STATE_ATTEST_EVERY": str(args.attest_every)}
    auditors = {"CONSTELLATION_PARTICIPATION": "auditor", **env}
    cluster = Cluster(
        3,
        name="benchjoin",
        base_port=args.port,
        workdir=workdir,
        extra_env=env,
        node_env={1: auditors, 2: auditors},
    )
    with cluster:
        answer = cluster.initialize()
        assert answer.get("status") == 200, answer
        for node in cluster.nodes:
            wait_for_state(cluster, "Ready", 60, node)
        figures = asyncio.run(measure(cluster, args))
    replay_apex = figures["replay_apex"]
    replay_s, replay_bytes = figures["replay_s"], figures["replay_bytes"]
    join_s, command_s = figures["join_s"], figures["join_command_s"]
    command_bytes = int(str(figures["join_command_bytes"]))
    caught_bytes = int(str(figures["caught_bytes"]))
    result = {
        "history_quanta": replay_apex,
        "attest_every": args.attest_every,
        **figures,
        "join_bytes": command_bytes + caught_bytes,
        "logs": str(workdir),
    }
    print(json.dumps(result))
    print(
        f"{replay_apex} quanta of history: replay from apex 1 {replay_s:.1f} s, "
        f"{replay_bytes:,} bytes; snapshot join {join_s:.1f} s "
        f"(command {command_s:.1f} s), {command_bytes + caught_bytes:,} bytes",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
