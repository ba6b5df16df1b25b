"""The abuse suite (issue 17): each attack against a real 3-node constellation while honest
clients trade, with the honest clients' finality and alpha's web-process memory with and
without it.

Goal: show that no cheap attack stalls or starves a node: during every attack the honest
clients' finality p99 stays under 1 s and alpha's web process under 300 MiB (the issue's
targets, reported as met or not, never failed on), no process dies, no node log holds a
traceback, and PostgreSQL connections stay within the pools.

Method:
1. `tools/cluster.py` starts alpha and two auditors as real processes (as bench/cluster.py),
   initialized with init_constellation's default rate limits (`--rate-limits`, per account:
   1 200 requests a minute, 36 000 an hour; the test clusters' settings have none);
   `--clients` honest clients (the real Python client) are funded and registered, plus three
   accounts the attacks use (one with `--resting-orders` resting orders far from the mid).
2. Baseline phase (`--seconds`): the honest clients send `--rate` requests per second in all
   (orders around the mid, cancellations, payments to each other: bench/cluster.py's mix),
   open loop, and each request's time to finality is recorded.
3. Then one attack at a time (tools/abuse.py), the same honest load running beside it for
   the attack's length: (a) held_frames, (b) connection_flood, (c) oversized, (d) init_update,
   (e) nodes, (f) account_data, (g) history, (j) db_connections, (k) fuzz (`--fuzz-frames`,
   default 100 000, over the three routes), then the two whose effects last: (i) cursor_zero
   and (h) long_destination.
   Attackers connect from their own loopback addresses (127.0.0.2 and up).
4. Alpha's web-process RSS (VmRSS of it and its children) is sampled every 0.2 s in each
   phase; its VmHWM (peak since start) is read after each phase. Process deaths are polled
   every 0.5 s; "Traceback" lines are counted in every node log after each phase.
Output: one JSON object per phase on stdout (the baseline first), then a summary object;
a human line per phase on stderr. The load generator shares the machine's cores with the
nodes. Not part of the test suite (tests/cluster/test_abuse.py holds the quick forms).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: find the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench.cluster import (  # noqa: E402
    FINALITY_WAIT_S,
    UNIT,
    Tally,
    Trader,
    funded_traders,
    percentile_ms,
    read_notifications,
    timed_request,
)
from constellation_client import ConstellationClient  # noqa: E402
from exchange.core.orderbook import Side  # noqa: E402
from quanta.core.keys import KeyPair  # noqa: E402
from quanta.core.testing import default_settings  # noqa: E402
from quanta.core.xdr.schema import RequestRateLimits  # noqa: E402
from tools import abuse  # noqa: E402
from tools.cluster import Cluster, free_base_port, wait_for_state  # noqa: E402

P99_TARGET_MS = 1000.0
RSS_TARGET_MIB = 300.0
PROVIDER = "local-vault"
Attack = Callable[[float], Awaitable[dict[str, Any]]]
"""Runs an attack until a deadline (monotonic; an attack with a fixed amount of work may run
past it) and returns its counts."""


# --- measuring -------------------------------------------------------------------------------


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Returns a field of /proc/<pid>/status (KiB) of a process plus its children's."""
    total = 0
    for candidate in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def children(pid: int) -> list[int]:
    """Returns the pids whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


async def sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    """Keeps the largest VmRSS seen in `peak[0]` until `stop` (sampling every 0.2 s)."""
    while not stop.is_set():
        peak[0] = max(peak[0], await asyncio.to_thread(rss_kib, pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except TimeoutError:
            pass


async def honest_load(traders: list[Trader], rate: float, stop: asyncio.Event) -> Tally:
    """Sends `rate` requests per second (round robin over traders) until `stop`; waits for
    the outstanding ones (bounded) and returns the tally."""
    tally = Tally()
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    index = 0
    while not stop.is_set():
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)  # Pacing, or the phase ended.
                break
            except TimeoutError:
                pass
        tasks.append(asyncio.create_task(timed_request(traders[index % len(traders)], tally)))
        index += 1
    if tasks:
        await asyncio.wait(tasks, timeout=FINALITY_WAIT_S * 2)
    return tally


def honest_figures(tally: Tally) -> dict[str, Any]:
    """Returns the honest clients' counts and finality percentiles of a phase."""
    return {
        "sent": tally.sent,
        "finalized": tally.finalized,
        "rejected": tally.rejected,
        "errors": tally.errors,
        "final_p50_ms": percentile_ms(tally.final_s, 0.5),
        "final_p99_ms": percentile_ms(tally.final_s, 0.99),
    }


class Watch:
    """Process deaths (polled) and traceback counts of a cluster, per phase."""

    def __init__(self, cluster: Cluster) -> None:
        """Starts with what the logs hold now."""
        self.cluster = cluster
        self.deaths: dict[str, dict[str, Any]] = {}
        self.phase = "setup"
        self.seen = abuse.tracebacks(cluster.workdir)

    async def poll(self) -> None:
        """Records every node process that exits, with the phase it died in."""
        while True:
            for name, code in abuse.dead_processes(self.cluster).items():
                self.deaths.setdefault(name, {"exit_code": code, "phase": self.phase})
            await asyncio.sleep(0.5)  # Polling a process table: no event to wait for.

    def new_tracebacks(self) -> dict[str, int]:
        """Returns the tracebacks each log gained since the last call."""
        now = abuse.tracebacks(self.cluster.workdir)
        gained = {log: count - self.seen.get(log, 0) for log, count in now.items()}
        self.seen = now
        return {log: count for log, count in gained.items() if count}


async def run_phase(
    name: str, attack: Attack | None, context: Context, seconds: float
) -> dict[str, Any]:
    """Runs the honest load (and `attack`) for a phase; returns its figures."""
    context.watch.phase = name
    stop = asyncio.Event()
    peak = [0]
    pid = context.cluster.alpha.processes["web"].pid
    sampler = asyncio.create_task(sample_rss(pid, peak, stop))
    honest = asyncio.create_task(honest_load(context.traders, context.rate, stop))
    started = time.monotonic()
    counts: dict[str, Any] = {}
    try:
        if attack is None:
            await asyncio.sleep(seconds)  # The baseline: the honest load alone for a while.
        else:
            counts = await attack(started + seconds)
    except Exception as error:  # An attack that broke is a figure too; the run goes on.
        counts = {"attack_failed": f"{type(error).__name__}: {error}"}
    finally:
        stop.set()
    tally = await honest
    await sampler
    return {
        "attack": name,
        "seconds": round(time.monotonic() - started, 1),
        "honest": honest_figures(tally),
        "alpha_web_rss_peak_mib": round(peak[0] / 1024, 1),
        "alpha_web_vmhwm_mib": round(rss_kib(pid, "VmHWM") / 1024, 1),
        "counts": counts,
        "pg_connections": abuse.pg_connections(context.cluster),
        "new_tracebacks": context.watch.new_tracebacks(),
        "deaths_so_far": dict(context.watch.deaths),
    }


# --- the attacks -----------------------------------------------------------------------------


class Context:
    """What the attacks need: the cluster, the honest traders and the attackers' accounts."""

    def __init__(
        self, cluster: Cluster, traders: list[Trader], extra: list[Trader], args: Any
    ) -> None:
        """Keeps the cluster, the honest traders and three funded attacker accounts."""
        self.cluster = cluster
        self.traders = traders
        self.maker, self.flooder, self.withdrawer = (t.client for t in extra)
        self.args = args
        self.rate = float(args.rate)
        self.watch = Watch(cluster)

    @property
    def url(self) -> str:
        """Returns alpha's HTTP base URL."""
        return self.cluster.alpha.url


def as_dict(counts: Counter[str]) -> dict[str, Any]:
    """Returns counts, largest first."""
    return dict(counts.most_common())


def attacks(context: Context) -> dict[str, Attack]:
    """Returns the attacks by name, in the order they run."""
    url, cluster = context.url, context.cluster

    async def held_frames(deadline: float) -> dict[str, Any]:
        return as_dict(await abuse.held_frames(url, deadline, 240, first_host=0))

    async def connection_flood(deadline: float) -> dict[str, Any]:
        return as_dict(await abuse.connection_flood(url, deadline, host_index=10))

    async def oversized(deadline: float) -> dict[str, Any]:
        return as_dict(await abuse.oversized(url, deadline, first_host=20))

    async def init_update(deadline: float) -> dict[str, Any]:
        before = cluster.info()["settings_version"]
        counts = await asyncio.to_thread(abuse.init_update_loop, cluster, deadline)
        after = cluster.info()["settings_version"]
        return {**as_dict(counts), "settings_version_before": before, "after": after}

    async def nodes(deadline: float) -> dict[str, Any]:
        return as_dict(await asyncio.to_thread(abuse.nodes_hammer, cluster, deadline))

    async def account_data(deadline: float) -> dict[str, Any]:
        flooder = context.flooder.keypair
        return as_dict(
            await abuse.account_data_flood(url, flooder, deadline, 32, abuse.attacker_host(30))
        )

    async def history(deadline: float) -> dict[str, Any]:
        account = context.maker.keypair  # an account with a long history: its orders
        gateway, chronicler = await asyncio.gather(
            abuse.history_loop(url, abuse.GATEWAY, account, deadline, abuse.attacker_host(31)),
            abuse.history_loop(url, abuse.CHRONICLER, account, deadline, abuse.attacker_host(32)),
        )
        return {"gateway": as_dict(gateway), "chronicler": as_dict(chronicler)}

    async def long_destination(deadline: float) -> dict[str, Any]:
        return await withdrawals_after_a_long_destination(context, deadline)

    async def cursor_zero(deadline: float) -> dict[str, Any]:
        auditor = cluster.nodes[1].keypair
        return as_dict(
            await abuse.cursor_zero_loop(url, auditor, deadline, abuse.attacker_host(33))
        )

    async def db_connections(deadline: float) -> dict[str, Any]:
        return await http_and_ws_connects(context)

    async def fuzz(deadline: float) -> dict[str, Any]:
        return await fuzz_every_route(context)

    # The last two leave lasting effects (a backlog of catch-ups in alpha's engine; a payout
    # that fails every tick), so they run after every other attack.
    return {
        "held_frames": held_frames,
        "connection_flood": connection_flood,
        "oversized": oversized,
        "init_update": init_update,
        "nodes": nodes,
        "account_data": account_data,
        "history": history,
        "db_connections": db_connections,
        "fuzz": fuzz,
        "cursor_zero": cursor_zero,
        "long_destination": long_destination,
    }


def ledger_balance(cluster: Cluster, address: str, asset: str) -> int:
    """Returns an address's balance on the cluster's local ledger."""
    url = f"postgresql://postgres@127.0.0.1:5432/{cluster.ledger_database}"
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT COALESCE(SUM(CASE WHEN destination = %s THEN amount ELSE 0 END), 0)"
            " - COALESCE(SUM(CASE WHEN source = %s THEN amount ELSE 0 END), 0)"
            " FROM payments_ledgertransfer WHERE asset = %s",
            (address, address, asset),
        ).fetchone()
    return int(row[0]) if row else 0


async def withdrawals_after_a_long_destination(context: Context, deadline: float) -> dict[str, Any]:
    """Attack (h): one withdrawal to a 60-character destination, then a normal withdrawal
    from each honest trader; counts how many of those reach their payee by `deadline` (at
    least 30 s after they were sent)."""
    long_one = await context.withdrawer.withdraw(PROVIDER, "USD", UNIT, "G" + "A" * 59)
    payees = [KeyPair.random().public_key_strkey for _ in context.traders]
    answers = await asyncio.gather(
        *(
            t.client.withdraw(PROVIDER, "USD", UNIT, payee)
            for t, payee in zip(context.traders, payees, strict=True)
        )
    )
    accepted = [p for p, a in zip(payees, answers, strict=True) if a.ok]
    paid: set[str] = set()
    until = max(deadline, time.monotonic() + 30)
    while time.monotonic() < until and len(paid) < len(accepted):
        for payee in accepted:
            if await asyncio.to_thread(ledger_balance, context.cluster, payee, "USD") == UNIT:
                paid.add(payee)
        await asyncio.sleep(0.5)  # Polling the ledger's table: no event to wait for.
    return {
        "long_destination_status": int(long_one.status),
        "long_destination_description": long_one.description,
        "normal_withdrawals_sent": len(payees),
        "normal_withdrawals_accepted": len(accepted),
        "normal_withdrawals_paid_out": len(paid),
        "waited_s": round(max(0.0, until - deadline), 1),
    }


async def http_and_ws_connects(context: Context) -> dict[str, Any]:
    """Attack (j): 10 000 `GET /api/constellation/info` (16 threads) and 1 000 authenticated
    `/ws/` sessions (10 at a time, from 20 addresses), with PostgreSQL connections per node
    sampled throughout."""
    cluster = context.cluster
    before = abuse.pg_connections(cluster)
    peak = dict(before)
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            for name, count in (await asyncio.to_thread(abuse.pg_connections, cluster)).items():
                peak[name] = max(peak[name], count)
            try:
                await asyncio.wait_for(done.wait(), 0.5)
            except TimeoutError:
                pass

    def requests() -> Counter[str]:
        with ThreadPoolExecutor(16) as pool:
            return Counter(
                pool.map(abuse.http_status, [f"{context.url}/api/constellation/info"] * 10_000)
            )

    constellation_id = abuse.constellation_id_at(context.url)

    async def one(index: int) -> str:
        host = abuse.attacker_host(40 + index % 20)
        try:
            ws = await abuse.session(
                context.url,
                abuse.GATEWAY,
                KeyPair.random(),
                host=host,
                constellation_id=constellation_id,
            )
        except Exception as error:  # noqa: BLE001 (counted, the attack goes on)
            return f"error:{type(error).__name__}"
        await ws.close()
        return "connected"

    async def sessions() -> Counter[str]:
        counts: Counter[str] = Counter()
        for start in range(0, 1_000, 10):
            counts.update(await asyncio.gather(*(one(start + i) for i in range(10))))
        return counts

    sampler = asyncio.create_task(sample())
    try:
        http, ws = await asyncio.gather(asyncio.to_thread(requests), sessions())
    finally:
        done.set()
        await sampler
    return {
        "http": as_dict(http),
        "ws_sessions": as_dict(ws),
        "pg_before": before,
        "pg_peak": peak,
        "pg_after": abuse.pg_connections(cluster),
    }


async def fuzz_every_route(context: Context) -> dict[str, Any]:
    """Attack (k): `--fuzz-frames` frames, 40 % to /ws/, 40 % to /ws/chronicler/, 20 % to
    /ws/herald/ authenticated as an auditor (node 2's key, at alpha's apex so no catch-up is
    streamed), 6 addresses per route."""
    total = context.args.fuzz_frames
    apex = int(str(context.cluster.info()["apex"]))
    shares = {abuse.GATEWAY: 0.4, abuse.CHRONICLER: 0.4, abuse.HERALD: 0.2}
    results = await asyncio.gather(
        *(
            abuse.fuzz(
                context.url,
                path,
                int(total * share),
                seed=context.args.seed + index,
                lanes=6,
                first_host=100 + 10 * index,
                auditor=context.cluster.nodes[2].keypair if path == abuse.HERALD else None,
                auditor_cursor=apex,
            )
            for index, (path, share) in enumerate(shares.items())
        )
    )
    return {path: tally.as_json() for path, tally in zip(shares, results, strict=True)}


async def rest_orders(client: ConstellationClient, count: int) -> int:
    """Places `count` sell orders far above the mid (they rest); returns how many rested."""
    rested = 0
    for start in range(0, count, 50):
        answers = await asyncio.gather(
            *(
                client.place_order("XLM", Side.SELL, UNIT // 10, round(100 + 0.01 * i, 2))
                for i in range(start, min(count, start + 50))
            )
        )
        rested += sum(answer.ok for answer in answers)
    return rested


# --- the run ---------------------------------------------------------------------------------


async def measure(cluster: Cluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Funds the accounts, runs the baseline and every attack; returns a figure per phase."""
    everyone = await funded_traders(cluster, args.clients + 3, args.seed, 16)
    traders, extra = everyone[: args.clients], everyone[args.clients :]
    readers = [asyncio.create_task(read_notifications(t.client)) for t in everyone]
    context = Context(cluster, traders, extra, args)
    rested = await rest_orders(context.maker, args.resting_orders)
    poller = asyncio.create_task(context.watch.poll())
    figures: list[dict[str, Any]] = []
    try:
        baseline = await run_phase("baseline", None, context, args.seconds)
        baseline["counts"] = {"maker_resting_orders": rested}
        emit(baseline, None)
        figures.append(baseline)
        for name, attack in attacks(context).items():
            if args.only and name not in args.only.split(","):
                continue
            phase = await run_phase(name, attack, context, args.seconds)
            emit(phase, baseline)
            figures.append(phase)
    finally:
        poller.cancel()
        for reader in readers:
            reader.cancel()
        for trader in everyone:
            await trader.client.close()
    return figures


def emit(phase: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    """Adds the baseline and the targets to a phase's figures; prints them."""
    p99 = phase["honest"]["final_p99_ms"]
    phase["target_p99_under_1s"] = p99 is not None and p99 < P99_TARGET_MS
    phase["target_rss_under_300mib"] = phase["alpha_web_rss_peak_mib"] < RSS_TARGET_MIB
    if baseline is not None:
        phase["baseline_final_p50_ms"] = baseline["honest"]["final_p50_ms"]
        phase["baseline_final_p99_ms"] = baseline["honest"]["final_p99_ms"]
        phase["baseline_rss_peak_mib"] = baseline["alpha_web_rss_peak_mib"]
    print(json.dumps(phase), flush=True)
    honest = phase["honest"]
    print(
        f"{phase['attack']}: final p50/p99 {honest['final_p50_ms']}/{honest['final_p99_ms']} ms"
        f" ({honest['finalized']}/{honest['sent']} final), rss peak"
        f" {phase['alpha_web_rss_peak_mib']} MiB, new tracebacks {phase['new_tracebacks']}",
        file=sys.stderr,
        flush=True,
    )


def summary(cluster: Cluster, figures: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """Returns the run's summary: tracebacks (with excerpts), deaths, PostgreSQL connections."""
    excerpts = abuse.traceback_excerpts(workdir, lines_after=12)
    return {
        "summary": True,
        "phases": [f["attack"] for f in figures],
        "targets_met": {
            f["attack"]: f["target_p99_under_1s"] and f["target_rss_under_300mib"] for f in figures
        },
        "tracebacks_per_log": abuse.tracebacks(workdir),
        "traceback_excerpts": {log: items[:3] for log, items in excerpts.items()},
        "process_deaths": abuse.dead_processes(cluster),
        "pg_connections": abuse.pg_connections(cluster),
        "logs": str(workdir),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    """Starts a 3-node cluster, runs the phases, prints the figures, stops the cluster."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--fuzz-frames", type=int, default=100_000)
    parser.add_argument("--only", default="", help="comma-separated attack names")
    parser.add_argument("--clients", type=int, default=4, help="honest clients")
    parser.add_argument("--rate", type=float, default=10.0, help="honest requests per second")
    parser.add_argument("--resting-orders", type=int, default=1_000)
    parser.add_argument("--port", type=int, default=23_000, help="first port to try")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate-limits", default="1200,36000", help="requests per account a minute,an hour"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-abuse-"))
    cluster = Cluster(3, name="abuse", base_port=free_base_port(3, args.port), workdir=workdir)
    with cluster:
        minute, hour = (int(n) for n in args.rate_limits.split(","))
        keys = [node.keypair for node in cluster.nodes]
        settings = dataclasses.replace(
            default_settings(keys, addresses=[node.url for node in cluster.nodes]),
            request_rate_limits=RequestRateLimits(minute, hour),
        )
        answer = cluster.initialize(settings)
        assert answer.get("status") == 200, answer
        for node in cluster.nodes:
            wait_for_state(cluster, "Ready", 60, node)
        figures = asyncio.run(measure(cluster, args))
        print(json.dumps(summary(cluster, figures, workdir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
