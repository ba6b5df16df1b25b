"""Determinism of the engine and the hashing rules of the quantum chain (SPEC.md, Quanta).

Goal: two nodes that execute the same quanta must agree bit for bit, a reverted quantum must
leave no trace, and every hash must follow the rule the specification states, restated here
independently of `quanta.core.hashing`:

- effects proof = SHA-256(‖ SHA-256(XDR(group)) for each group, groups by ascending account);
- quantum hash  = SHA-256(XDR(quantum));
- payload hash  = SHA-256(apex as uint64 big-endian ‖ quantum hash ‖ effects proof).

Method: `record_session` drives one engine with a seeded mix of deposits, payments, orders
that cross, cancellations, withdrawals and their settlement, plus requests that get rejected,
and records every body with its timestamp and outcome. Other engines then get exactly those
bodies and timestamps. The mix is generated with `random.Random(seed)` in the test only; the
engine itself never sees randomness.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import pytest

from exchange.core.matching import TimeInForce, order_id_of
from exchange.core.orderbook import Side
from quanta.core.engine import Engine, Executed
from quanta.core.hashing import ZERO_HASH
from quanta.core.keys import KeyPair
from quanta.core.signatures import constellation_id_of
from quanta.core.status import ConstellationError
from quanta.core.testing import (
    PROVIDER_ID,
    QUOTE,
    default_settings,
    deposit_quantum,
    keypair,
    request_quantum,
    settings_quantum,
    withdrawal_quantum,
)
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    OrderCancellationRequest,
    OrderRequest,
    PaymentRequest,
    Quantum,
    QuantumBody,
    WithdrawalRequest,
)

UNIT = 10_000_000
AUDITORS = [keypair(200), keypair(201), keypair(202)]
CLIENTS = [keypair(i) for i in range(1, 7)]
SEEDS = (1, 2, 3)
CID = constellation_id_of(default_settings(AUDITORS))
"""The id of the constellation these tests run (its genesis settings' hash)."""


@dataclass(frozen=True)
class Step:
    """One body sent to the engine, when, and what came out (None: rejected)."""

    body: QuantumBody
    now_ms: int
    executed: Executed | None


def record_session(seed: int, requests: int = 150) -> list[Step]:
    """Drives a fresh engine with a seeded request mix; returns every step it took."""
    rng = random.Random(seed)
    engine = Engine()
    steps: list[Step] = []
    nonces = {c.public_key: 0 for c in CLIENTS}
    orders: list[int] = []
    pending: list[int] = []
    clock = 1_700_000_000_000
    cursor = 0

    def send(body: QuantumBody) -> Executed | None:
        nonlocal clock
        clock += rng.randint(0, 3)
        try:
            executed: Executed | None = engine.execute(body, clock)
        except ConstellationError:
            executed = None
        steps.append(Step(body, clock, executed))
        return executed

    def signed(who: KeyPair, request: object) -> QuantumBody:
        return request_quantum(request, who, CID)  # type: ignore[arg-type]

    send(settings_quantum(default_settings(AUDITORS), AUDITORS[:2]))
    cursor += 1
    funding = [(c, a, 1_000 * UNIT) for c in CLIENTS for a in (QUOTE, "XLM", "BTC")]
    send(deposit_quantum(cursor, funding))
    for _ in range(requests):
        who = rng.choice(CLIENTS)
        key = who.public_key
        nonce = nonces[key] + 1
        roll = rng.random()
        if roll < 0.5:
            side = rng.choice([Side.BUY, Side.SELL])
            price = rng.choice([0.998, 0.999, 1.0, 1.001, 1.002])
            amount = rng.randint(1, 200 * UNIT)
            tif = rng.choice(list(TimeInForce))
            asset = rng.choice(["XLM", "BTC"])
            body = signed(who, OrderRequest(1, key, nonce, asset, side, amount, price, tif))
        elif roll < 0.65 and orders:
            body = signed(who, OrderCancellationRequest(1, key, nonce, rng.choice(orders)))
        elif roll < 0.85:
            to = rng.choice(CLIENTS)
            asset = rng.choice([QUOTE, "XLM", "BTC"])
            amount = rng.randint(1, 100 * UNIT)
            body = signed(who, PaymentRequest(1, key, nonce, asset, amount, to.public_key))
        elif roll < 0.93:
            request = WithdrawalRequest(
                1, key, nonce, PROVIDER_ID, QUOTE, rng.randint(1, 50 * UNIT), "EXT", 7
            )
            body = withdrawal_quantum(request, who, CID)
        else:
            cursor += 1
            settled = [(w, rng.random() < 0.5) for w in pending]
            pending.clear()
            body = deposit_quantum(cursor, [(who, "XLM", rng.randint(1, 10 * UNIT))], settled)
        executed = send(body)
        if executed is None:
            continue
        if hasattr(body, "request"):
            nonces[key] = nonce
        if executed.apex in engine.state.withdrawals:
            pending.append(executed.apex)
        if engine.state.require_exchange().get_order(order_id_of(executed.apex)) is not None:
            orders.append(order_id_of(executed.apex))
    return steps


@pytest.fixture(scope="module", params=SEEDS)
def session(request: pytest.FixtureRequest) -> list[Step]:
    return record_session(request.param)


def _is_trade(executed: Executed) -> bool:
    return any(type(e).__name__ == "TradeEffect" for _, e in executed.emitted)


def test_session_exercises_every_kind_of_outcome(session: list[Step]) -> None:
    executed = [s.executed for s in session if s.executed is not None]
    assert len(executed) > 60
    assert any(s.executed is None for s in session), "some requests must be rejected"
    assert sum(1 for e in executed if _is_trade(e)) >= 5, "orders must cross"


@pytest.mark.parametrize("seed", SEEDS)
def test_recording_twice_gives_the_same_chain(seed: int) -> None:
    first, second = record_session(seed), record_session(seed)
    assert [s.now_ms for s in first] == [s.now_ms for s in second]
    hashes = [(s.executed.payload_hash if s.executed else None) for s in first]
    assert hashes == [(s.executed.payload_hash if s.executed else None) for s in second]


def test_two_engines_produce_identical_hashes(session: list[Step]) -> None:
    twin = Engine()
    for step in session:
        try:
            again = twin.execute(step.body, step.now_ms)
        except ConstellationError:
            assert step.executed is None, "the twin rejected what the original accepted"
            continue
        assert step.executed is not None, "the twin accepted what the original rejected"
        assert again.quantum == step.executed.quantum
        assert again.quantum_hash == step.executed.quantum_hash
        assert again.payload_hash == step.executed.payload_hash
        assert again.group_hashes == step.executed.group_hashes


def test_same_bodies_give_same_state_hash(session: list[Step]) -> None:
    first, second = Engine(), Engine()
    for step in session:
        for engine in (first, second):
            try:
                engine.execute(step.body, step.now_ms)
            except ConstellationError:
                pass
        assert first.state.state_hash() == second.state.state_hash()
    assert first.state.apex == sum(1 for s in session if s.executed is not None)


def test_timestamp_is_part_of_the_quantum_hash(session: list[Step]) -> None:
    shifted = Engine()
    original = [s for s in session if s.executed is not None]
    for step in original:
        again = shifted.execute(step.body, step.now_ms + 1)
        assert step.executed is not None
        assert again.quantum_hash != step.executed.quantum_hash
        # The effects do not depend on the time, only the chain does.
        assert again.quantum.effects_proof == step.executed.quantum.effects_proof


def test_execute_then_revert_restores_state_hash(session: list[Step]) -> None:
    engine = Engine()
    for step in session:
        before = engine.state.state_hash()
        try:
            executed = engine.execute(step.body, step.now_ms)
        except ConstellationError:
            assert engine.state.state_hash() == before
            continue
        assert engine.state.state_hash() != before
        engine.revert_last(executed)
        engine.state.check_invariants()
        assert engine.state.state_hash() == before
        again = engine.execute(step.body, step.now_ms)
        assert again.quantum_hash == executed.quantum_hash
        assert again.payload_hash == executed.payload_hash


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_effects_proof_rule(session: list[Step]) -> None:
    for step in session:
        if step.executed is None:
            continue
        groups = step.executed.groups
        accounts = [g.account for g in groups]
        assert accounts == sorted(set(accounts)), "one group per account, ascending"
        hashes = [_sha256(encode(g)) for g in groups]
        assert step.executed.group_hashes == hashes
        assert step.executed.quantum.effects_proof == _sha256(b"".join(hashes))


def test_groups_hold_the_emitted_effects_in_order(session: list[Step]) -> None:
    for step in session:
        if step.executed is None:
            continue
        for group in step.executed.groups:
            emitted = tuple(e for account, e in step.executed.emitted if account == group.account)
            assert group.effects == emitted


def test_quantum_and_payload_hash_rules(session: list[Step]) -> None:
    prev = ZERO_HASH
    apex = 0
    for step in session:
        executed = step.executed
        if executed is None:
            continue
        quantum = executed.quantum
        apex += 1
        assert quantum.apex == apex
        assert quantum.prev_hash == prev
        assert quantum.timestamp == step.now_ms
        assert executed.quantum_hash == _sha256(encode(quantum))
        body = apex.to_bytes(8, "big") + executed.quantum_hash + quantum.effects_proof
        expected = _sha256(CID + b"\x02" + body)  # bound to the constellation, Domain.QUANTUM
        assert executed.payload_hash == expected
        assert decode(Quantum, encode(quantum)) == quantum
        prev = executed.quantum_hash


def test_replay_of_recorded_quanta_matches(session: list[Step]) -> None:
    auditor = Engine()
    for step in session:
        if step.executed is None:
            continue
        again = auditor.replay(step.executed.quantum)
        assert again.quantum_hash == step.executed.quantum_hash
        assert again.payload_hash == step.executed.payload_hash
        assert again.groups == step.executed.groups
