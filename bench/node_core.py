"""Alpha's per-quantum work around the engine, in one process: execute, sign, collect the
auditors' signatures, finalize (issue 21).

Goal: a figure for what `quanta.core.alpha.AlphaNode` adds to the engine per quantum once its
bounded memories (`RECENT_QUANTA_MAX` final payload hashes, the recent quanta) are full, as
they are in any node that runs for more than a few seconds at load: `bench/engine.py` stops
at the engine and `bench/cluster.py` mixes every process of the machine.

Method: alpha + 2 auditors (2-of-3 finality), `--accounts` funded accounts paying each other
round robin (pre-signed, as the gateway hands alpha verified requests). A first, untimed pass
computes every quantum's payload hash and signs it with both auditor keys; a fresh alpha then
runs the same requests at the same timestamps (so the same payload hashes): `submit`, the
first auditor's signature (verified in `add_signature`: it makes the quantum final), the
second's (late: kept, and verified with `late_signature_failures` every 50 quanta, as the
flush does off the hot path). Timed: the process's CPU time over the last `--measure` quanta
of `--n`.
Output: one JSON line (µs per quantum, and per single-core ed25519 verification of the same
process, whose ratio is the figure to compare across runs and machines).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: find the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import ed25519_verifications_per_second  # noqa: E402
from quanta.core.alpha import AlphaNode  # noqa: E402
from quanta.core.engine import Engine  # noqa: E402
from quanta.core.evidence import late_signature_failures  # noqa: E402
from quanta.core.keys import KeyPair  # noqa: E402
from quanta.core.pending import PendingUpdates  # noqa: E402
from quanta.core.signatures import constellation_id_of  # noqa: E402
from quanta.core.testing import (  # noqa: E402
    default_settings,
    deposit_quantum,
    keypair,
    settings_quantum,
    sign_message,
)
from quanta.core.xdr.schema import MessageEnvelope, PaymentRequest  # noqa: E402

UNIT = 10_000_000
REPLY = ("gateway-hub.bench", 1)
LATE_CHECK_EVERY = 50


def funded_alpha(nodes: list[KeyPair], payers: list[KeyPair]) -> AlphaNode:
    """Returns an initialized alpha whose `payers` hold USD."""
    alpha = AlphaNode(nodes[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(nodes), nodes).update, 1_000)
    alpha.notify(deposit_quantum(1, [(p, "USD", 1_000_000 * UNIT) for p in payers]), 1_001)
    return alpha


def signed_payments(payers: list[KeyPair], count: int, cid: bytes) -> list[MessageEnvelope]:
    """Returns `count` payments, round robin over `payers` (each to the next one)."""
    envelopes = []
    for index in range(count):
        payer = payers[index % len(payers)]
        payee = payers[(index + 1) % len(payers)]
        nonce = index // len(payers) + 1
        request = PaymentRequest(index + 1, payer.public_key, nonce, "USD", UNIT, payee.public_key)
        envelopes.append(sign_message(request, payer, cid))
    return envelopes


def run(
    alpha: AlphaNode,
    envelopes: list[MessageEnvelope],
    signatures: list[tuple[bytes, bytes]],
    measure_from: int,
) -> float:
    """Runs every request with its two auditor signatures; returns the CPU seconds of this
    process the quanta from `measure_from` on took (CPU, not wall: the machine is shared)."""
    start = 0.0
    for index, envelope in enumerate(envelopes):
        if index == measure_from:
            start = time.process_time()
        alpha.submit(envelope, 2_000 + index, REPLY)
        apex = alpha.engine.state.apex
        first, second = signatures[index]
        assert alpha.add_signature(apex, 1, first), "final with the first auditor"
        alpha.add_signature(apex, 2, second)
        if index % LATE_CHECK_EVERY == 0:
            assert late_signature_failures(alpha.take_late()) == []
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    """Measures and prints one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=30_000, help="quanta in all")
    parser.add_argument("--measure", type=int, default=10_000, help="the last quanta timed")
    parser.add_argument("--accounts", type=int, default=200)
    args = parser.parse_args(argv)
    nodes = [keypair(240 + i) for i in range(3)]
    payers = [keypair(300 + i) for i in range(args.accounts)]
    cid = constellation_id_of(default_settings(nodes))
    envelopes = signed_payments(payers, args.n, cid)
    dry = funded_alpha(nodes, payers)
    signatures = []
    for index, envelope in enumerate(envelopes):
        dry.submit(envelope, 2_000 + index, REPLY)
        payload = dry.unfinalized[dry.engine.state.apex].executed.payload_hash
        signatures.append((nodes[1].sign(payload), nodes[2].sign(payload)))
        dry.add_signature(dry.engine.state.apex, 1, signatures[-1][0])
    seconds = run(funded_alpha(nodes, payers), envelopes, signatures, args.n - args.measure)
    verify_per_s = ed25519_verifications_per_second(5_000)
    us = seconds / args.measure * 1e6
    print(
        json.dumps(
            {
                "n": args.n,
                "measured": args.measure,
                "alpha_cpu_us_per_quantum": round(us, 2),
                "ref_ed25519_verify_per_s": round(verify_per_s, 1),
                "alpha_quantum_in_verifications": round(us * verify_per_s / 1e6, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
