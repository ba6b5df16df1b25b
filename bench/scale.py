"""How the engine's costs grow with the state: accounts and resting orders (issue 21).

Goal: show that a snapshot batch costs what changed since the last one, not what the state
holds. For each size the script builds a state of `--accounts` accounts (each holding USD and
XLM) and `--orders` resting orders, then executes `--batches` snapshot batches of `--quanta`
pre-verified quanta each and cuts a snapshot batch after each one, as the engine worker does
every 5 s (`PendingUpdates.cut`, which computes the state commitment).

Method:
1. The accounts are built directly in the state (as `quanta.node.snapshot` loads them): their
   keys are SHA-256 of their index (requests go in pre-verified, so no key signs anything).
   Resting orders are placed through the engine (asks at 2.000 and up, bids at 0.500 and
   down, so nothing in the workload crosses them), at most 50 per account.
2. The first state hash after the build is timed apart (`first_commit_s`: a node pays it once,
   when it loads its snapshot).
3. Workload per batch: 70 % payments between two accounts drawn uniformly from all of them,
   30 % orders around the mid price (they cross each other, rarely rest for long); so a batch
   of q quanta touches up to ~2q accounts wherever they are.
4. Figures: engine quanta/s over the batches (execution only), snapshot time (the cut:
   commitment plus copying the touched rows; median and max over the batches), the longest
   engine stall (the longest single step: one quantum or one cut), memory per account (RSS
   growth while building the accounts, and while building the commitment, divided by the
   accounts; each size runs in a process of its own, so that memory freed by a previous size
   cannot be reused), and single-core ed25519 verifications/s measured in the same process
   with the ratio to it.
Output: one JSON line per size on stdout, a human line on stderr. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (`python bench/scale.py`): find the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import ed25519_verifications_per_second  # noqa: E402
from exchange.core.accounts import Account  # noqa: E402
from exchange.core.matching import TimeInForce  # noqa: E402
from exchange.core.orderbook import Side  # noqa: E402
from quanta import gc_policy  # noqa: E402
from quanta.core.engine import Engine  # noqa: E402
from quanta.core.hashing import sha256  # noqa: E402
from quanta.core.pending import PendingUpdates  # noqa: E402
from quanta.core.signatures import constellation_id_of  # noqa: E402
from quanta.core.status import ConstellationError  # noqa: E402
from quanta.core.testing import QUOTE, default_settings, keypair, settings_quantum  # noqa: E402
from quanta.core.xdr.schema import (  # noqa: E402
    MessageEnvelope,
    OrderRequest,
    PaymentRequest,
    RequestQuantum,
    Signature,
)

UNIT = 10_000_000
FUNDING = 1_000_000 * UNIT
START_MS = 1_700_000_000_000
AUDITORS = (keypair(200), keypair(201), keypair(202))
GENESIS = default_settings(list(AUDITORS))
ORDERS_PER_ACCOUNT_MAX = 50
NO_SIGNATURE = bytes(64)


def rss_bytes() -> int:
    """Returns this process's resident set size (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096


def account_key(index: int) -> bytes:
    """Returns the public key of account `index` (never used to sign: requests are pre-verified)."""
    return sha256(index.to_bytes(8, "big"))


class Scale:
    """One state of a given size and the nonces its requests need."""

    def __init__(self, accounts: int) -> None:
        """Initializes an engine with genesis settings and `accounts` funded accounts."""
        self.engine = Engine()
        self.engine.execute(settings_quantum(GENESIS, AUDITORS[:2]), START_MS)
        self.now_ms = START_MS
        self.accounts = accounts
        self.nonces = [0] * accounts
        self.keys = [account_key(i) for i in range(accounts)]
        state = self.engine.state
        first_id = state.next_account_id
        for index in range(accounts):
            account = Account(first_id + index, self.keys[index])
            for asset in (QUOTE, "XLM"):
                account.create_balance(asset).amount = FUNDING
            state.accounts.add(account)
        state.next_account_id = first_id + accounts

    def request(self, index: int, request: object) -> RequestQuantum:
        """Wraps a request of account `index` in an envelope (pre-verified: no signature)."""
        envelope = MessageEnvelope(request, Signature(self.keys[index], NO_SIGNATURE))  # type: ignore[arg-type]
        return RequestQuantum(envelope)

    def nonce(self, index: int) -> int:
        """Returns the next nonce of account `index`."""
        self.nonces[index] += 1
        return self.nonces[index]

    def execute(self, body: RequestQuantum) -> bool:
        """Executes one pre-verified quantum; tells whether it was accepted."""
        self.now_ms += 1
        try:
            self.engine.execute(body, self.now_ms, verified=True)
        except ConstellationError:
            return False
        return True

    def rest_orders(self, count: int) -> None:
        """Places `count` non-crossing resting orders, at most 50 per account."""
        for n in range(count):
            index = n % self.accounts
            side = Side.SELL if n % 2 else Side.BUY
            level = (n // 2) % 500
            price = 2.0 + 0.001 * level if side is Side.SELL else 0.5 - 0.001 * level
            key = self.keys[index]
            request = OrderRequest(
                1, key, self.nonce(index), "XLM", side, UNIT, round(price, 3),
                TimeInForce.GOOD_TILL_EXPIRE,
            )  # fmt: skip
            assert self.execute(self.request(index, request)), n

    def workload(self, rng: random.Random, quanta: int) -> list[RequestQuantum]:
        """Returns one batch of requests (payments between random accounts, crossing orders)."""
        bodies = []
        for _ in range(quanta):
            index = rng.randrange(self.accounts)
            key = self.keys[index]
            if rng.random() < 0.7:
                to = (index + rng.randrange(1, self.accounts)) % self.accounts
                request: object = PaymentRequest(
                    1, key, self.nonce(index), QUOTE, rng.randint(1, UNIT), self.keys[to]
                )
            else:
                side = rng.choice((Side.BUY, Side.SELL))
                ticks = rng.randint(-3, 2)
                price = round(1.0 + 0.001 * (ticks if side is Side.BUY else -ticks), 3)
                request = OrderRequest(
                    1, key, self.nonce(index), "XLM", side, rng.randint(1, 5) * UNIT, price,
                    TimeInForce.GOOD_TILL_EXPIRE if rng.random() < 0.5
                    else TimeInForce.IMMEDIATE_OR_CANCEL,
                )  # fmt: skip
            bodies.append(self.request(index, request))
        return bodies


def run_size(accounts: int, orders: int, batches: int, quanta: int, seed: int) -> dict[str, object]:
    """Builds one state and measures its batches; returns the figures of this size."""
    gc.collect()
    rss_before = rss_bytes()
    scale = Scale(accounts)
    gc.collect()
    rss_accounts = rss_bytes()
    scale.rest_orders(orders)
    # As a node does once its snapshot is loaded (`EngineWorker.start`).
    gc_policy.settle()
    rss_orders = rss_bytes()
    state = scale.engine.state
    start = time.perf_counter()
    state.state_hash()
    first_commit_s = time.perf_counter() - start
    gc.collect()
    rss_committed = rss_bytes()
    pending = PendingUpdates()
    pending.cut(state)  # what the orders touched: not part of the measured batches
    rng = random.Random(seed)
    execute_s, cut_s, stall_s, executed, rejected = 0.0, [], 0.0, 0, 0
    for _ in range(batches):
        bodies = scale.workload(rng, quanta)
        for body in bodies:
            start = time.perf_counter()
            ok = scale.execute(body)
            step = time.perf_counter() - start
            execute_s += step
            stall_s = max(stall_s, step)
            if ok:
                executed += 1
                pending.count += 1  # as `record` would; the touched keys are taken below
            else:
                rejected += 1
        _note_touched(pending, scale, bodies)
        start = time.perf_counter()
        pending.cut(state)
        step = time.perf_counter() - start
        cut_s.append(step)
        stall_s = max(stall_s, step)
    cut_s.sort()
    return {
        "accounts": accounts,
        "resting_orders_placed": orders,
        "resting_orders_at_end": len(state.require_exchange().orders),
        "batches": batches,
        "quanta_per_batch": quanta,
        "executed": executed,
        "rejected": rejected,
        "engine_quanta_per_s": round(executed / execute_s, 1),
        "snapshot_s_median": round(cut_s[len(cut_s) // 2], 4),
        "snapshot_s_max": round(cut_s[-1], 4),
        "longest_stall_s": round(stall_s, 4),
        "first_commit_s": round(first_commit_s, 4),
        "memory_per_account_bytes": round((rss_accounts - rss_before) / accounts),
        "commitment_memory_per_account_bytes": round((rss_committed - rss_orders) / accounts),
        "state_hash": state.state_hash().hex(),
    }


def _note_touched(pending: PendingUpdates, scale: Scale, bodies: list[RequestQuantum]) -> None:
    """Marks every account the batch's requests could have touched, and every order id, as the
    engine worker's `PendingUpdates.record` does from the effects (done outside the timed
    execution so that the figures are the engine's and the cut's alone)."""
    state = scale.engine.state
    exchange = state.require_exchange()
    for body in bodies:
        message = body.request.message
        account = state.accounts.get_by_key(message.account)  # type: ignore[union-attr]
        assert account is not None
        pending.accounts.add(account.id)
        if isinstance(message, PaymentRequest):
            destination = state.accounts.get_by_key(message.destination)
            assert destination is not None
            pending.accounts.add(destination.id)
    start_apex = state.apex - len(bodies)
    pending.orders.update(range(start_apex, state.apex + 1))
    for order in exchange.orders.values():
        if order.order_id > start_apex:
            pending.accounts.add(order.account_id)


def main(argv: list[str] | None = None) -> int:
    """Parses arguments and measures every size, each in a process of its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="1000,10000,100000", help="comma-separated sizes")
    parser.add_argument("--orders", default="1000", help="resting orders, comma-separated sizes")
    parser.add_argument("--batches", type=int, default=5, help="snapshot batches per size")
    parser.add_argument("--quanta", type=int, default=5_000, help="quanta per snapshot batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verify-iterations", type=int, default=5_000)
    args = parser.parse_args(argv)
    sizes = [
        (int(accounts), int(orders))
        for accounts in args.accounts.split(",")
        for orders in args.orders.split(",")
    ]
    if len(sizes) == 1:
        return measure(*sizes[0], args)
    for accounts, orders in sizes:
        command = [sys.executable, __file__, "--accounts", str(accounts), "--orders", str(orders)]
        for option in ("batches", "quanta", "seed", "verify_iterations"):
            command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        subprocess.run(command, check=True)
    return 0


def measure(accounts: int, orders: int, args: argparse.Namespace) -> int:
    """Measures one size and prints its JSON line (stdout) and a human line (stderr)."""
    assert orders <= accounts * ORDERS_PER_ACCOUNT_MAX, (accounts, orders)
    constellation_id_of(GENESIS)  # compiles the codec before any clock starts
    figures = run_size(accounts, orders, args.batches, args.quanta, args.seed)
    verify_per_s = ed25519_verifications_per_second(args.verify_iterations)
    engine_per_s = float(figures["engine_quanta_per_s"])  # type: ignore[arg-type]
    figures["ed25519_verify_per_s"] = round(verify_per_s, 1)
    figures["ratio_engine_over_verify"] = round(engine_per_s / verify_per_s, 4)
    figures["python"] = platform.python_version()
    print(json.dumps(figures), flush=True)
    print(
        f"{accounts:,} accounts, {orders:,} resting orders: "
        f"{engine_per_s:,.0f} quanta/s, snapshot {figures['snapshot_s_median']} s "
        f"(max {figures['snapshot_s_max']}), longest stall {figures['longest_stall_s']} s, "
        f"{figures['memory_per_account_bytes']} B/account "
        f"(+{figures['commitment_memory_per_account_bytes']} commitment)",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
