"""Throughput of the deterministic core: pre-signed client requests through `Engine.execute`.

Goal: know how many quanta per second one alpha can sequence, with and without the client
signature check inside the engine, compared with what one core can verify in ed25519, and what
the XDR codec costs per quantum.

Method (all inputs built before any clock starts):
1. An initialized engine (3 auditors, quote USD, markets XLM/USD and BTC/USD) gets one deposit
   quantum that registers and funds `--accounts` accounts.
2. `--n` requests are generated with a seeded RNG and signed: 60 % limit orders a few ticks
   around the mid price (both sides, 80 % GTC; bids and asks overlap by two ticks, so they
   partly cross and partly rest), 20 % cancellations of one of the requester's recent resting
   orders (some filled by then: those are rejected, as they would be live; an account with
   nothing resting sends an order instead), 20 % payments. To know which
   order ids rest and whose they are, the requests are generated while a scratch engine
   executes them (untimed); the timed engines then get identical bodies and timestamps, so
   they take identical decisions.
3. Timed: (a) `engine.execute(body, now, verified=False)` (includes signature verification),
   (b) the same on a fresh engine with `verified=True` (a node verifies in parallel first),
   (c) single-core PyNaCl `VerifyKey.verify` of 64-byte signatures of 32-byte digests,
   (d) µs per `encode(Quantum)` and `decode(Quantum, bytes)` of a typical order quantum,
   (e) the pipeline as a node runs it: a pool of `--workers` processes (default 2, one per
   core here) decodes and verifies the envelopes' XDR bytes in chunks of `--chunk`, and the
   main process executes each verified chunk with `verified=True` as soon as it arrives, so
   verification overlaps execution; wall time from the first chunk sent to the last quantum
   executed (the pool is started and warmed before the clock, as a node's is).
(a), (b), (c) and (e) run `--repeat` times, interleaved, and the best round counts (as `timeit`
does: load from other processes can only slow a round down). Output: one JSON object on
stdout, one human line on stderr. `time.perf_counter` throughout. Every run must end in the
same state hash; the JSON carries it with the last quantum hash, so two versions of the
engine can be compared for bit-identical results on the same seed.
Not part of the test suite: see bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import multiprocessing.pool
import platform
import pstats
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

if __package__ in (None, ""):  # run as a script (`python bench/engine.py`): find the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.core.matching import TimeInForce, order_id_of  # noqa: E402
from exchange.core.orderbook import Side  # noqa: E402
from quanta.core.engine import Engine, verify_envelope  # noqa: E402
from quanta.core.hashing import sha256  # noqa: E402
from quanta.core.keys import KeyPair  # noqa: E402
from quanta.core.signatures import constellation_id_of  # noqa: E402
from quanta.core.status import ConstellationError, Unauthorized  # noqa: E402
from quanta.core.testing import (  # noqa: E402
    QUOTE,
    default_settings,
    deposit_quantum,
    keypair,
    request_quantum,
    settings_quantum,
)
from quanta.core.xdr.codec import XdrError, decode, encode  # noqa: E402
from quanta.core.xdr.schema import (  # noqa: E402
    MessageEnvelope,
    OrderCancellationRequest,
    OrderRequest,
    PaymentRequest,
    Quantum,
    QuantumBody,
    RequestQuantum,
)

UNIT = 10_000_000
MID_PRICE = 1.0
TICK = 0.001
SPREAD_TICKS = 5
CROSS_TICKS = 2
AUDITORS = (keypair(200), keypair(201), keypair(202))
GENESIS = default_settings(list(AUDITORS))
CONSTELLATION_ID = constellation_id_of(GENESIS)
"""Every request of the workload is signed for this constellation (the one `GENESIS` starts)."""
START_MS = 1_700_000_000_000
FUNDING = 10_000_000 * UNIT
MARKETS = ("XLM", "BTC")


@dataclass(frozen=True, slots=True)
class Workload:
    """The pre-signed requests, their timestamps and what kind each one is."""

    bodies: list[QuantumBody]
    times: list[int]
    kinds: list[str]


def client(index: int) -> KeyPair:
    """Returns the key of client `index` (kept clear of the auditors' test keys)."""
    return keypair(1_000 + index)


def initialized_engine(accounts: int) -> Engine:
    """Returns an engine with settings in force and `accounts` funded accounts."""
    engine = Engine()
    engine.execute(settings_quantum(GENESIS, AUDITORS[:2]), START_MS)
    items = [(client(i), asset, FUNDING) for i in range(accounts) for asset in (QUOTE, *MARKETS)]
    engine.execute(deposit_quantum(1, items), START_MS)
    return engine


def build_workload(n: int, accounts: int, seed: int) -> Workload:
    """Generates and signs `n` requests while a scratch engine executes them (untimed)."""
    rng = random.Random(seed)
    keys = [client(i) for i in range(accounts)]
    scratch = initialized_engine(accounts)
    nonces = [0] * accounts
    resting: list[list[int]] = [[] for _ in range(accounts)]
    workload = Workload([], [], [])
    now = START_MS
    for _ in range(n):
        who = rng.randrange(accounts)
        key = keys[who]
        nonces[who] += 1
        nonce = nonces[who]
        roll = rng.random()
        if 0.6 <= roll < 0.8 and resting[who]:
            # A recent own order; a fill may have removed it meanwhile (then it is rejected).
            order_id = rng.choice(resting[who][-8:])
            request: object = OrderCancellationRequest(1, key.public_key, nonce, order_id)
            kind = "cancel"
        elif roll >= 0.8:
            to = keys[(who + rng.randrange(1, accounts)) % accounts]
            asset = rng.choice((QUOTE, *MARKETS))
            amount = rng.randint(1, 10 * UNIT)
            request = PaymentRequest(1, key.public_key, nonce, asset, amount, to.public_key)
            kind = "payment"
        else:
            # Bids a few ticks below to just above the mid, asks the mirror image: the books
            # overlap by a few ticks, so orders partly cross and partly rest.
            side = rng.choice((Side.BUY, Side.SELL))
            ticks = rng.randint(-SPREAD_TICKS, CROSS_TICKS)
            price = round(MID_PRICE + TICK * (ticks if side is Side.BUY else -ticks), 3)
            tif = (
                TimeInForce.GOOD_TILL_EXPIRE
                if rng.random() < 0.8
                else TimeInForce.IMMEDIATE_OR_CANCEL
            )
            amount = rng.randint(UNIT // 10, 50 * UNIT)
            asset = rng.choice(MARKETS)
            request = OrderRequest(1, key.public_key, nonce, asset, side, amount, price, tif)
            kind = "order"
        body = request_quantum(request, key, CONSTELLATION_ID)  # type: ignore[arg-type]
        now += 1
        try:
            executed = scratch.execute(body, now, verified=True)
        except ConstellationError:
            executed = None
        if executed is not None and kind == "cancel":
            resting[who].remove(order_id)
        elif executed is not None and kind == "order":
            order_id = order_id_of(executed.apex)
            if scratch.state.require_exchange().get_order(order_id) is not None:
                resting[who].append(order_id)
        workload.bodies.append(body)
        workload.times.append(now)
        workload.kinds.append(kind)
    return workload


def run_engine(engine: Engine, workload: Workload, *, verified: bool) -> tuple[float, Counter[str]]:
    """Executes the workload; returns the elapsed seconds and rejections per kind."""
    rejected: Counter[str] = Counter()
    execute = engine.execute
    bodies, times, kinds = workload.bodies, workload.times, workload.kinds
    start = time.perf_counter()
    for i in range(len(bodies)):
        try:
            execute(bodies[i], times[i], verified=verified)
        except ConstellationError:
            rejected[kinds[i]] += 1
    return time.perf_counter() - start, rejected


def verify_chunk(chunk: list[bytes]) -> list[bool]:
    """Decodes and verifies a chunk of envelope bytes (runs in a pool worker); returns the
    verdict of each."""
    verdicts = []
    for data in chunk:
        try:
            verify_envelope(decode(MessageEnvelope, data), CONSTELLATION_ID)
        except (XdrError, Unauthorized):
            verdicts.append(False)
        else:
            verdicts.append(True)
    return verdicts


def envelope_chunks(workload: Workload, chunk: int) -> list[list[bytes]]:
    """Returns the XDR bytes of every request's envelope (what a node receives), in chunks."""
    envelopes = []
    for body in workload.bodies:
        assert isinstance(body, RequestQuantum)
        envelopes.append(encode(body.request))
    return [envelopes[i : i + chunk] for i in range(0, len(envelopes), chunk)]


def run_pipeline(
    engine: Engine, workload: Workload, chunks: list[list[bytes]], pool: multiprocessing.pool.Pool
) -> tuple[float, Counter[str]]:
    """Verifies the chunks in the pool while executing the verified ones (figure e); returns
    the elapsed seconds and rejections per kind."""
    rejected: Counter[str] = Counter()
    execute = engine.execute
    bodies, times, kinds = workload.bodies, workload.times, workload.kinds
    index = 0
    start = time.perf_counter()
    for verdicts in pool.imap(verify_chunk, chunks):
        for valid in verdicts:
            try:
                if not valid:
                    raise Unauthorized("invalid signature")
                execute(bodies[index], times[index], verified=True)
            except ConstellationError:
                rejected[kinds[index]] += 1
            index += 1
    return time.perf_counter() - start, rejected


def ed25519_verifications_per_second(
    iterations: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Measures single-core PyNaCl verification of 64-byte signatures of 32-byte digests, per
    second of `clock` (wall time; `time.thread_time`: this thread's CPU, which holds on a
    loaded machine)."""
    signing = [nacl.signing.SigningKey(bytes([i + 1]) * 32) for i in range(16)]
    verify = [k.verify_key for k in signing]
    digests = [sha256(i.to_bytes(8, "big")) for i in range(iterations)]
    signatures = [signing[i % 16].sign(d).signature for i, d in enumerate(digests)]
    start = clock()
    for i in range(iterations):
        verify[i % 16].verify(digests[i], signatures[i])
    return iterations / (clock() - start)


def codec_microseconds(quantum: Quantum, iterations: int) -> tuple[float, float]:
    """Returns µs per `encode(quantum)` and per `decode(Quantum, bytes)`."""
    data = encode(quantum)
    assert decode(Quantum, data) == quantum
    start = time.perf_counter()
    for _ in range(iterations):
        encode(quantum)
    encode_us = (time.perf_counter() - start) / iterations * 1e6
    start = time.perf_counter()
    for _ in range(iterations):
        decode(Quantum, data)
    decode_us = (time.perf_counter() - start) / iterations * 1e6
    return encode_us, decode_us


def typical_order_quantum(workload: Workload) -> Quantum:
    """Returns the first order of the workload as a numbered quantum (a quantum holds the
    signed request and the hashes, not the effects, so every order quantum has this size)."""
    index = workload.kinds.index("order")
    body = workload.bodies[index]
    assert isinstance(body, RequestQuantum)
    probe = initialized_engine(1)
    key = client(0)
    message = body.request.message
    assert isinstance(message, OrderRequest)
    request = OrderRequest(
        1,
        key.public_key,
        1,
        message.asset,
        message.side,
        message.amount,
        message.price,
        TimeInForce.GOOD_TILL_EXPIRE,
    )
    executed = probe.execute(request_quantum(request, key, CONSTELLATION_ID), START_MS + 1)
    return executed.quantum


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, runs every measurement and prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="requests to process")
    parser.add_argument("--accounts", type=int, default=200, help="funded accounts")
    parser.add_argument("--seed", type=int, default=1, help="seed of the request mix")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; best one counts")
    parser.add_argument("--verify-iterations", type=int, default=5_000)
    parser.add_argument("--codec-iterations", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2, help="verifying processes of (e)")
    parser.add_argument("--chunk", type=int, default=250, help="envelopes per chunk of (e)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile run (b); print its top 15 by cumulative and own time to stderr",
    )
    args = parser.parse_args(argv)

    workload = build_workload(args.n, args.accounts, args.seed)
    chunks = envelope_chunks(workload, args.chunk)
    seconds_a = seconds_b = seconds_e = verify_per_s = 0.0
    profiler = cProfile.Profile() if args.profile else None
    pool = multiprocessing.get_context("fork").Pool(args.workers)
    assert all(pool.map(verify_chunk, chunks[: args.workers])[0])  # workers up before the clock
    for attempt in range(args.repeat):
        # (a) and (b) interleaved, best of `repeat`: other load on the machine only slows down.
        unverified = initialized_engine(args.accounts)
        elapsed_a, rejected_a = run_engine(unverified, workload, verified=False)
        verified = initialized_engine(args.accounts)
        if profiler is not None and attempt == 0:
            profiler.enable()
        elapsed_b, rejected_b = run_engine(verified, workload, verified=True)
        if profiler is not None and attempt == 0:
            profiler.disable()
        pipelined = initialized_engine(args.accounts)
        elapsed_e, rejected_e = run_pipeline(pipelined, workload, chunks, pool)
        assert rejected_a == rejected_b == rejected_e, (rejected_a, rejected_b, rejected_e)
        assert unverified.state.state_hash() == verified.state.state_hash()
        assert pipelined.state.state_hash() == verified.state.state_hash()
        verified.state.check_invariants()
        seconds_a = elapsed_a if attempt == 0 else min(seconds_a, elapsed_a)
        seconds_b = elapsed_b if attempt == 0 else min(seconds_b, elapsed_b)
        seconds_e = elapsed_e if attempt == 0 else min(seconds_e, elapsed_e)
        verify_per_s = max(verify_per_s, ed25519_verifications_per_second(args.verify_iterations))
    pool.close()
    pool.join()
    encode_us, decode_us = codec_microseconds(
        typical_order_quantum(workload), args.codec_iterations
    )

    n = len(workload.bodies)
    a_per_s, b_per_s, e_per_s = n / seconds_a, n / seconds_b, n / seconds_e
    figures = {
        "n": n,
        "accounts": args.accounts,
        "seed": args.seed,
        "repeat": args.repeat,
        "mix": dict(sorted(Counter(workload.kinds).items())),
        "rejected": dict(sorted(rejected_b.items())),
        "rejected_total": sum(rejected_b.values()),
        "resting_orders_at_end": len(verified.state.require_exchange().orders),
        "final_apex": verified.state.apex,
        "final_state_hash": verified.state.state_hash().hex(),
        "last_quantum_hash": verified.state.last_hash.hex(),
        "a_execute_unverified_s": round(seconds_a, 4),
        "a_quanta_per_s": round(a_per_s, 1),
        "b_execute_verified_s": round(seconds_b, 4),
        "b_quanta_per_s": round(b_per_s, 1),
        "c_ed25519_verify_per_s": round(verify_per_s, 1),
        "ratio_a_over_c": round(a_per_s / verify_per_s, 4),
        "ratio_b_over_c": round(b_per_s / verify_per_s, 4),
        "d_encode_quantum_us": round(encode_us, 2),
        "d_decode_quantum_us": round(decode_us, 2),
        "e_pool_workers": args.workers,
        "e_pipeline_s": round(seconds_e, 4),
        "e_quanta_per_s": round(e_per_s, 1),
        "ratio_e_over_c": round(e_per_s / verify_per_s, 4),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(figures))
    print(
        f"{n} requests: {a_per_s:,.0f} quanta/s with signature checks, {b_per_s:,.0f} quanta/s "
        f"pre-verified, {verify_per_s:,.0f} ed25519 verifies/s "
        f"(a/c {a_per_s / verify_per_s:.2f}, b/c {b_per_s / verify_per_s:.2f}); "
        f"encode {encode_us:.1f} µs, decode {decode_us:.1f} µs; "
        f"{e_per_s:,.0f} quanta/s verified by a pool of {args.workers} "
        f"(e/c {e_per_s / verify_per_s:.2f}); "
        f"{figures['rejected_total']} rejected",
        file=sys.stderr,
    )
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(15)
        stats.sort_stats("tottime").print_stats(15)
        print(out.getvalue(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
