"""End-to-end throughput and latency of a real local constellation.

Goal: how many client requests per second a constellation acknowledges and finalizes on this
machine, and how long a client waits for each, next to figures measured in the same run that
do not depend on the network path: single-core ed25519 verifications per second and the
core engine's quanta per second (bench/engine.py, pre-verified).

Method:
1. `tools/cluster.py` starts alpha and `--auditors` auditors as real processes (daphne, the
   engine worker, the herald link), each with its own PostgreSQL database and Redis prefix,
   and initializes the constellation. `--auditors 0` measures one alpha alone (acknowledged is
   final there); `--auditors 2` measures consensus with 2-of-3 finality.
2. `--clients` clients (the real Python client, each its own WebSocket) are funded through the
   local ledger faucet and registered by deposit quanta.
3. Saturation phase (`--seconds`): every client keeps `--window` requests in flight; the mix is
   60 % limit orders a few ticks around the mid (most cross), 20 % cancellations of the
   client's last order its result showed resting (an order when none is known; rejected if it
   filled meanwhile, as live), 20 % payments to another client. Counted: acknowledged and
   finalized requests per second, and the requests sent and rejected per kind.
4. Half-load phase (`--seconds`): requests are sent open-loop at half the finalized rate of
   phase 3, and the times to acknowledgement and to finality are reported (p50/p99).
The load generator shares the machine's cores with the nodes, as any client on the same host
would; its clients verify the node signatures of 1 in `--verify-one-in` results (the payload
hash of every one). The cores each process kept busy during saturation are read from /proc.
Alpha's `/metrics` is scraped before and after each phase: its finalized counter and latency
histograms are printed beside the bench's own counts (`saturation_metrics_*`,
`half_load_metrics_*`, and the ratio of finalized counts).
Output: one JSON object on stdout, one human line on stderr. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: find the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import (  # noqa: E402
    build_workload,
    ed25519_verifications_per_second,
    initialized_engine,
    run_engine,
)
from constellation_client import ConstellationClient  # noqa: E402
from constellation_client.result import RequestResult  # noqa: E402
from exchange.core.matching import TimeInForce, order_id_of  # noqa: E402
from exchange.core.orderbook import Side  # noqa: E402
from quanta import gc_policy  # noqa: E402
from quanta.core.keys import KeyPair  # noqa: E402
from quanta.core.xdr.schema import OrderPlacedEffect  # noqa: E402
from tools.cluster import Cluster, published_pin, wait_for_state  # noqa: E402
from tools.metrics_scrape import Samples, histogram_quantile_s, scrape, value  # noqa: E402

UNIT = 10_000_000
MID_PRICE = 1.0
TICK = 0.001
FINALITY_WAIT_S = 10.0


@dataclass
class Tally:
    """What one phase saw: counts and per-request latencies in seconds."""

    acknowledged: int = 0
    finalized: int = 0
    errors: int = 0
    # Requests sent and rejected per kind: the mix actually sent depends on the window (a
    # cancellation is due only when an order of the client's is known to rest).
    sent_by_kind: Counter[str] = field(default_factory=Counter)
    rejected_by_kind: Counter[str] = field(default_factory=Counter)
    ack_s: list[float] = field(default_factory=list)
    final_s: list[float] = field(default_factory=list)
    # When each request whose finality is in `final_s` was sent (perf_counter seconds): the
    # p99 per second of a phase shows whether its tail is spread or comes in stalls.
    final_sent_at: list[float] = field(default_factory=list)

    def final_p99_by_second(self) -> list[float | None]:
        """Returns the finality p99 (ms) of the requests sent in each second of the phase."""
        if not self.final_sent_at:
            return []
        first = min(self.final_sent_at)
        seconds: list[list[float]] = [[] for _ in range(int(max(self.final_sent_at) - first) + 1)]
        for sent, latency in zip(self.final_sent_at, self.final_s, strict=True):
            seconds[int(sent - first)].append(latency)
        return [percentile_ms(latencies, 0.99) for latencies in seconds]

    @property
    def sent(self) -> int:
        """Returns how many requests were sent, of every kind."""
        return self.sent_by_kind.total()

    @property
    def rejected(self) -> int:
        """Returns how many requests the node rejected, of every kind."""
        return self.rejected_by_kind.total()


@dataclass
class Trader:
    """One benchmark client and what it last placed."""

    client: ConstellationClient
    peers: list[bytes]
    rng: random.Random
    resting: list[int] = field(default_factory=list)

    def next_kind(self) -> str:
        """Draws the kind of the next request: 60 % orders, 20 % cancellations of the last
        order known to rest (an order when none is known), 20 % payments."""
        roll = self.rng.random()
        if roll < 0.6 or (roll < 0.8 and not self.resting):
            return "order"
        return "cancel" if roll < 0.8 else "payment"

    async def request(self, kind: str) -> RequestResult:
        """Sends a request of `kind` and returns its first answer."""
        if kind == "order":
            side = self.rng.choice((Side.SELL, Side.BUY))
            ticks = self.rng.randint(-3, 3) + (2 if side is Side.BUY else -2)
            price = round(MID_PRICE + ticks * TICK, 3)
            amount = self.rng.randint(1, 20) * UNIT // 10
            result = await self.client.place_order("XLM", side, amount, price, TimeInForce(0))
            if result.ok and rests(result):
                self.resting = [*self.resting[-9:], order_id_of(result.apex)]
            return result
        if kind == "cancel":
            return await self.client.cancel_order(self.resting.pop())
        return await self.client.pay(self.rng.choice(self.peers), "USD", UNIT // 100)


def rests(result: RequestResult) -> bool:
    """Tells whether an order's result shows a remainder placed on the book (an order that
    filled entirely at once has nothing left to cancel)."""
    own = result.effects
    return own is not None and any(isinstance(e, OrderPlacedEffect) for e in own.effects)


async def timed_request(trader: Trader, tally: Tally) -> None:
    """Sends one request and records when it was acknowledged and finalized."""
    start = time.perf_counter()
    kind = trader.next_kind()
    tally.sent_by_kind[kind] += 1
    try:
        result = await trader.request(kind)
    except Exception:  # A broken connection counts; the phase goes on.
        tally.errors += 1
        return
    if not result.ok:
        tally.rejected_by_kind[kind] += 1
        return
    tally.acknowledged += 1
    tally.ack_s.append(time.perf_counter() - start)
    if await result.wait_final(FINALITY_WAIT_S):
        tally.finalized += 1
        tally.final_s.append(time.perf_counter() - start)
        tally.final_sent_at.append(start)


async def saturate(
    traders: list[Trader],
    window: int,
    seconds: float,
    report_every_s: float = 0.0,
    cluster: Cluster | None = None,
) -> tuple[Tally, float, list[dict[str, float]]]:
    """Keeps `window` requests in flight per trader for `seconds`; returns the tally, the
    elapsed time and, every `report_every_s` (0: never), the figures of that window (also
    printed to stderr as it goes: a long run shows whether the cost holds as the history
    grows)."""
    tally = Tally()
    deadline = time.perf_counter() + seconds
    windows: list[dict[str, float]] = []

    async def lane(trader: Trader) -> None:
        while time.perf_counter() < deadline:
            await timed_request(trader, tally)

    async def report() -> None:
        last_count, last_at, last_cpu = 0, start, cpu_seconds()
        while True:
            await asyncio.sleep(report_every_s)  # A reporting period, not a synchronization.
            now, count = time.perf_counter(), tally.finalized
            finalized = count - last_count
            line: dict[str, float] = {
                "at_s": round(now - start, 1),
                "finalized_total": count,
                "finalized_per_s": round(finalized / (now - last_at), 1),
            }
            if cluster is not None:
                # The cluster's own CPU (nodes, load generator, PostgreSQL, Redis; not the
                # machine's other work) per finalized quantum: the figure that would grow
                # with the history if a cost did, whatever else the machine was doing.
                cpu_now = cpu_seconds()
                cores = cpu_by_role(cluster, last_cpu, now - last_at, cpu_now)
                own = sum(v for role, v in cores.items() if role != "other")
                line["cluster_cpu_ms_per_finalized"] = round(
                    own * (now - last_at) * 1000 / max(1, finalized), 3
                )
                last_cpu = cpu_now
            # The machine's speed drifts over a long run (other tenants): CPU time, not wall
            # time, of a short reference (it shares the load generator's core meanwhile).
            verify_per_cpu_s = ed25519_verifications_per_second(2_000, clock=time.thread_time)
            line["ed25519_verify_per_cpu_s"] = round(verify_per_cpu_s, 1)
            windows.append(line)
            print(json.dumps(line), file=sys.stderr, flush=True)
            last_count, last_at = count, now

    start = time.perf_counter()
    reporter = asyncio.create_task(report()) if report_every_s > 0 else None
    try:
        await asyncio.gather(*(lane(t) for t in traders for _ in range(window)))
    finally:
        if reporter is not None:
            reporter.cancel()
    return tally, time.perf_counter() - start, windows


async def open_loop(traders: list[Trader], rate_per_s: float, seconds: float) -> Tally:
    """Sends requests at `rate_per_s` (round robin over traders) for `seconds`."""
    tally = Tally()
    tasks: list[asyncio.Task[None]] = []
    total = max(1, int(rate_per_s * seconds))
    start = time.perf_counter()
    for index in range(total):
        delay = start + index / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # Pacing the load, not synchronizing with anything.
        trader = traders[index % len(traders)]
        tasks.append(asyncio.create_task(timed_request(trader, tally)))
    await asyncio.wait_for(asyncio.gather(*tasks), FINALITY_WAIT_S * 3)
    return tally


def cpu_seconds() -> dict[int, tuple[float, str]]:
    """Returns CPU seconds used so far and a short name, for every process on the machine.

    A process's figure includes its reaped children's (cutime, cstime): PostgreSQL backends
    that end during a phase (Django recycles connections every 60 s; autovacuum workers come
    and go) are counted in the postmaster's instead of vanishing from the sum."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        used = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        found[int(entry.name)] = (used / ticks, command)
    return found


def process_role(cluster: Cluster, pid: int, command: str) -> str:
    """Names what a process is in this benchmark: node and process, or the service."""
    for index, node in enumerate(cluster.nodes):
        for name, process in node.processes.items():
            if process.pid == pid:
                return f"node{index}-{name}"
    if pid == os.getpid():
        return "load-generator"
    for service in ("postgres", "redis"):
        if service in command:
            return service
    return "other"


def cpu_by_role(
    cluster: Cluster,
    before: dict[int, tuple[float, str]],
    seconds: float,
    after: dict[int, tuple[float, str]] | None = None,
) -> dict[str, float]:
    """Returns the cores each role kept busy from `before` to `after` (`cpu_seconds`
    snapshots; `after` taken now if not given)."""
    cores: dict[str, float] = {}
    for pid, (used, command) in (cpu_seconds() if after is None else after).items():
        spent = used - before.get(pid, (0.0, command))[0]
        if spent > 0:
            role = process_role(cluster, pid, command)
            cores[role] = cores.get(role, 0.0) + spent / seconds
    return {role: round(value, 3) for role, value in sorted(cores.items(), key=lambda i: -i[1])}


def percentile_ms(values: list[float], fraction: float) -> float | None:
    """Returns the `fraction` percentile of `values` (seconds) in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, int(fraction * len(ordered)))
    return round(ordered[index] * 1000, 1)


async def funded_traders(
    cluster: Cluster, count: int, seed: int, verify_one_in: int
) -> list[Trader]:
    """Connects `count` clients and registers each with a deposit of USD and XLM."""
    keys = [KeyPair.random() for _ in range(count)]
    # The benchmark started this cluster itself: pinning what its genesis hashes to is sound.
    pin = published_pin(cluster)
    clients = [
        await ConstellationClient.connect(
            cluster.alpha.url, k, constellation_id=pin, verify_one_in=verify_one_in
        )
        for k in keys
    ]
    for asset in ("USD", "XLM"):
        await asyncio.gather(
            *(
                asyncio.to_thread(cluster.faucet, k.public_key_strkey, asset, "1000000")
                for k in keys
            )
        )
    for client in clients:
        for _ in range(2):
            notification = await client.next_notification(timeout_s=60)
            assert notification is not None, "a deposit did not arrive"
            assert await notification.wait_final(FINALITY_WAIT_S)
    peers = [k.public_key for k in keys]  # raw keys: a payment needs no strkey decoding
    return [
        Trader(c, [p for p in peers if p != k.public_key], random.Random(seed + i))
        for i, (c, k) in enumerate(zip(clients, keys, strict=True))
    ]


async def read_notifications(client: ConstellationClient) -> None:
    """Reads the client's notifications (fills of its resting orders, payments to it) as a
    trader would; unread, they piled up to the client's bound of 10 000 and were dropped."""
    while True:
        await client.next_notification()


async def measure(cluster: Cluster, args: argparse.Namespace) -> dict[str, object]:
    """Runs both phases against a started, initialized cluster."""
    traders = await funded_traders(cluster, args.clients, args.seed, args.verify_one_in)
    # The load generator sets up its collector as the nodes do (gc_policy), and puts the
    # defaults back afterwards so the references after the run are measured as before it.
    thresholds = gc.get_threshold()
    gc_policy.settle()
    readers = [asyncio.create_task(read_notifications(t.client)) for t in traders]
    try:
        scraped_before = await asyncio.to_thread(scrape, cluster.alpha.url)
        cpu_before = cpu_seconds()
        busy, elapsed, windows = await saturate(
            traders,
            args.window,
            args.saturation_seconds or args.seconds,
            args.report_every,
            cluster,
        )
        cpu = cpu_by_role(cluster, cpu_before, elapsed)
        # Scraped once every finality the load waited for has come (saturate returns then).
        scraped_after = await asyncio.to_thread(scrape, cluster.alpha.url)
        final_per_s = busy.finalized / elapsed
        half_start = time.perf_counter()
        half_rate = args.half_load_rate or max(1.0, final_per_s / 2)
        half = await open_loop(traders, half_rate, args.seconds)
        half_elapsed = time.perf_counter() - half_start
        scraped_end = await asyncio.to_thread(scrape, cluster.alpha.url)
    finally:
        for reader in readers:
            reader.cancel()
        for trader in traders:
            await trader.client.close()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return {
        "saturation_s": round(elapsed, 2),
        "saturation_sent": busy.sent,
        "saturation_rejected": busy.rejected,
        "saturation_errors": busy.errors,
        "saturation_sent_by_kind": dict(busy.sent_by_kind),
        "saturation_rejected_by_kind": dict(busy.rejected_by_kind),
        "acknowledged_per_s": round(busy.acknowledged / elapsed, 1),
        "finalized_per_s": round(final_per_s, 1),
        "saturation_ack_p50_ms": percentile_ms(busy.ack_s, 0.5),
        "saturation_final_p50_ms": percentile_ms(busy.final_s, 0.5),
        "half_load_rate_per_s": round(half_rate, 1),
        "half_load_sent": half.sent,
        "half_load_acknowledged": half.acknowledged,
        "half_load_rejected": half.rejected,
        "half_load_errors": half.errors,
        "half_load_finalized": half.finalized,
        "half_load_ack_p50_ms": percentile_ms(half.ack_s, 0.5),
        "half_load_ack_p99_ms": percentile_ms(half.ack_s, 0.99),
        "half_load_final_p50_ms": percentile_ms(half.final_s, 0.5),
        "half_load_final_p99_ms": percentile_ms(half.final_s, 0.99),
        "half_load_final_p99_ms_by_second": half.final_p99_by_second(),
        "saturation_cores_busy": round(sum(cpu.values()), 2),
        "saturation_cores_by_process": cpu,
        "saturation_windows": windows,
        **metrics_figures("saturation", scraped_before, scraped_after, elapsed, busy),
        **metrics_figures("half_load", scraped_after, scraped_end, half_elapsed, half),
    }


def metrics_figures(
    phase: str, before: Samples, after: Samples, elapsed: float, busy: Tally
) -> dict[str, object]:
    """Returns what alpha's /metrics say of a phase, beside the bench's own counts:
    finalized quanta (the counter's growth; the bench counts the requests it saw final) and
    the p50 bucket bounds of acknowledgement and finality latency. Alpha measures from its
    hub's send to the engine and from execution; the bench from the client's send, so the
    client's own queue (its whole window at once in saturation) and the network path come on
    top of alpha's figures."""

    def grown(name: str) -> float:
        return value(after, name) - value(before, name)

    finalized = grown("constellation_quanta_finalized_total")
    ack = "constellation_acknowledgement_latency_seconds"
    final = "constellation_finality_latency_seconds"
    return {
        f"{phase}_metrics_finalized": int(finalized),
        f"{phase}_metrics_finalized_per_s": round(finalized / elapsed, 1),
        f"{phase}_metrics_acknowledged": int(grown(f"{ack}_count")),
        f"{phase}_metrics_ack_p50_le_ms": 1000 * histogram_quantile_s(after, ack, 0.5, before),
        f"{phase}_metrics_final_p50_le_ms": 1000 * histogram_quantile_s(after, final, 0.5, before),
        f"{phase}_ratio_metrics_over_bench_finalized": round(finalized / max(1, busy.finalized), 4),
    }


def verification_budget(figures: dict[str, object], verify_per_s: float) -> dict[str, object]:
    """Returns the CPU each process spent per finalized quantum in saturation, counted in
    single-core ed25519 verification times of the same run, and their sum (x: the ratio is
    `saturation_cores_busy` / x). The budget of bench/README.md, per run: which process
    a lever moved, in a unit the machine's speed cancels out of."""
    finalized = _number(figures, "finalized_per_s")
    cores = figures["saturation_cores_by_process"]
    assert isinstance(cores, dict)
    per_quantum = verify_per_s / max(finalized, 1e-9)
    by_process = {role: round(busy * per_quantum, 2) for role, busy in cores.items() if busy}
    return {
        "saturation_verifications_per_finalized": round(sum(by_process.values()), 2),
        "saturation_verifications_per_finalized_by_process": by_process,
    }


def reference_figures() -> dict[str, float]:
    """Measures, in this run, single-core ed25519 verifies/s and the core engine's quanta/s."""
    workload = build_workload(5_000, 100, 7)
    seconds = min(run_engine(initialized_engine(100), workload, verified=True)[0] for _ in range(2))
    return {
        "ref_ed25519_verify_per_s": round(ed25519_verifications_per_second(20_000), 1),
        "ref_core_engine_quanta_per_s": round(len(workload.bodies) / seconds, 1),
    }


def _number(figures: dict[str, object], key: str) -> float:
    """Returns one numeric figure of the measurement."""
    found = figures[key]
    assert isinstance(found, int | float), (key, found)
    return float(found)


def main(argv: list[str] | None = None) -> int:
    """Starts a cluster, measures it, prints the figures, stops the cluster."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auditors", type=int, default=2, help="auditors besides alpha")
    parser.add_argument("--clients", type=int, default=8)
    # 256 keeps both cores busy with saturation finality ~1 s: on 2026-11-26's third machine
    # 128 gave ~7 % less (cores not all busy), 512 ~5 % more at ~2 s (bench/README.md).
    parser.add_argument("--window", type=int, default=256, help="requests in flight per client")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument(
        "--saturation-seconds",
        type=float,
        default=0.0,
        help="length of the saturation phase if not --seconds (a long history run)",
    )
    parser.add_argument(
        "--report-every",
        type=float,
        default=0.0,
        help="print the saturation's finalized rate every S seconds (0: never)",
    )
    parser.add_argument(
        "--half-load-rate",
        type=float,
        default=0.0,
        help="requests/s of the open-loop phase (0: half the saturation's finalized rate); "
        "a fixed rate compares latencies across runs whose saturation differed",
    )
    parser.add_argument("--port", type=int, default=19_400, help="alpha's HTTP port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--verify-one-in",
        type=int,
        default=16,
        help="clients verify the node signatures of 1 in N results (1: all)",
    )
    parser.add_argument(
        "--auditor-participation",
        choices=("auditor", "prime"),
        default="auditor",
        help="the auditors' participation level (alpha is always prime)",
    )
    args = parser.parse_args(argv)
    before = reference_figures()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    # Auditors talk to no clients: by default they run at SPEC.md's Auditor participation,
    # keeping quanta and state but not the public history (quanta.node_identity.history_kept).
    participation = {"CONSTELLATION_PARTICIPATION": args.auditor_participation}
    cluster = Cluster(
        1 + args.auditors,
        name="bench",
        base_port=args.port,
        workdir=workdir,
        node_env={index: participation for index in range(1, 1 + args.auditors)},
    )
    with cluster:
        answer = cluster.initialize()
        assert answer.get("status") == 200, answer
        for node in cluster.nodes:
            wait_for_state(cluster, "Ready", 60, node)
        figures = asyncio.run(measure(cluster, args))
    after = reference_figures()
    verify_per_s = max(before["ref_ed25519_verify_per_s"], after["ref_ed25519_verify_per_s"])
    core_per_s = max(before["ref_core_engine_quanta_per_s"], after["ref_core_engine_quanta_per_s"])
    finalized = _number(figures, "finalized_per_s")
    acknowledged = _number(figures, "acknowledged_per_s")
    result = {
        "nodes": 1 + args.auditors,
        "auditor_participation": args.auditor_participation,
        "clients": args.clients,
        "window": args.window,
        **figures,
        "ref_ed25519_verify_per_s": verify_per_s,
        "ref_core_engine_quanta_per_s": core_per_s,
        "ratio_finalized_over_verify": round(finalized / verify_per_s, 4),
        "ratio_finalized_over_core": round(finalized / core_per_s, 4),
        "ratio_acknowledged_over_core": round(acknowledged / core_per_s, 4),
        **verification_budget(figures, verify_per_s),
        "logs": str(workdir),
        "python": platform.python_version(),
    }
    print(json.dumps(result))
    print(
        f"{result['nodes']} node(s), {args.clients} clients: "
        f"{figures['acknowledged_per_s']} acknowledged/s, {figures['finalized_per_s']} "
        f"finalized/s; at half load p50/p99 ack {figures['half_load_ack_p50_ms']}/"
        f"{figures['half_load_ack_p99_ms']} ms, final {figures['half_load_final_p50_ms']}/"
        f"{figures['half_load_final_p99_ms']} ms; ed25519 {verify_per_s:,.0f}/s, "
        f"core engine {core_per_s:,.0f} quanta/s; alpha's /metrics in saturation: "
        f"{figures['saturation_metrics_finalized_per_s']} finalized/s (x"
        f"{figures['saturation_ratio_metrics_over_bench_finalized']} of the bench's count), "
        f"at half load p50 ack <= {figures['half_load_metrics_ack_p50_le_ms']} ms, final <= "
        f"{figures['half_load_metrics_final_p50_le_ms']} ms",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
