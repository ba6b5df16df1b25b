"""The state snapshot a joining node loads, and the attestations that make it trusted.

Goal: a snapshot rebuilds the very state it was cut from (same state hash; the quanta after it
replay to the same hashes as on the node that cut it), a damaged one is refused, a tampered one
re-hashed to look consistent decodes but is not attested, and a majority is counted over
distinct auditors of the settings only. The engine records the state hash at every attested
apex, and forgets it when the quantum is reverted.
"""

from __future__ import annotations

import pytest

from quanta.core.engine import Engine
from quanta.core.state_snapshot import (
    MAGIC,
    SnapshotError,
    attestation_apex_at_or_above,
    attestation_digest,
    attested_by_majority,
    snapshot_decode,
    snapshot_encode,
)
from quanta.core.testing import keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import AccountState, BalanceState
from quanta.tests.core.test_commitment import AUDITORS, CID, GENESIS, fixed_engine
from quanta.tests.core.test_determinism import record_session


def test_a_snapshot_rebuilds_the_state_it_was_cut_from() -> None:
    state = fixed_engine().state
    data = snapshot_encode(state, GENESIS, 1)
    loaded = snapshot_decode(data)
    assert loaded.state_hash == state.state_hash()
    assert loaded.state.apex == state.apex and loaded.state.last_hash == state.last_hash
    assert loaded.genesis == GENESIS and loaded.settings_apex == 1
    # What the commitment leaves out comes back too: open-order counts, the transaction.
    for account in state.accounts:
        twin = loaded.state.accounts.get_by_id(account.id)
        assert twin is not None and twin.open_orders == account.open_orders
    for withdrawal_id, withdrawal in state.withdrawals.items():
        assert loaded.state.withdrawals[withdrawal_id].transaction == withdrawal.transaction


def test_the_quanta_after_a_snapshot_replay_to_the_same_hashes() -> None:
    steps = [step for step in record_session(1, requests=120) if step.executed is not None]
    cut = len(steps) // 2
    source = Engine()
    for step in steps[:cut]:
        assert step.executed is not None
        source.replay(step.executed.quantum, verified=True)
    joined = Engine(snapshot_decode(snapshot_encode(source.state, GENESIS, 1)).state)
    for step in steps[cut:]:
        assert step.executed is not None
        executed = joined.replay(step.executed.quantum, verified=True)
        assert executed.quantum_hash == step.executed.quantum_hash
    last = steps[-1].executed
    assert last is not None
    original = Engine()
    for step in steps:
        assert step.executed is not None
        original.replay(step.executed.quantum, verified=True)
    assert joined.state.state_hash() == original.state.state_hash()


def _records(data: bytes) -> tuple[int, int]:
    """Returns where the first account record starts and how long it is."""
    offset = len(MAGIC)
    for _ in range(2):  # header, genesis
        offset += 4 + int.from_bytes(data[offset : offset + 4], "big")
    offset += 8 + 4  # settings apex, account count
    size = int.from_bytes(data[offset : offset + 4], "big")
    return offset + 4, size


def _richer(data: bytes) -> bytes:
    """Returns the snapshot with the first account's first balance raised by 1 unit."""
    start, size = _records(data)
    account = decode(AccountState, data[start : start + size])
    first = account.balances[0]
    raised = BalanceState(first.asset, first.amount + 1, first.liabilities)
    changed = encode(
        AccountState(
            account.account_id,
            account.public_key,
            account.nonce,
            account.sequence,
            (raised, *account.balances[1:]),
            account.orders,
            account.withdrawal,
        )
    )
    assert len(changed) == size
    return data[:start] + changed + data[start + size :]


def test_a_damaged_snapshot_is_refused() -> None:
    data = snapshot_encode(fixed_engine().state, GENESIS, 1)
    with pytest.raises(SnapshotError, match="does not match its own state hash"):
        snapshot_decode(_richer(data))
    with pytest.raises(SnapshotError, match="cut short"):
        snapshot_decode(data[:-3])
    with pytest.raises(SnapshotError, match="not a state snapshot"):
        snapshot_decode(b"x" + data[1:])
    with pytest.raises(SnapshotError, match="after its end"):
        snapshot_decode(data + b"\x00")


def test_a_consistent_forgery_is_not_attested() -> None:
    state = fixed_engine().state
    honest_hash = state.state_hash()
    signatures = [
        (node.public_key, node.sign(attestation_digest(CID, state.apex, honest_hash)))
        for node in AUDITORS
    ]
    # A forger re-cuts the snapshot of a state with a balance changed: it decodes (its header
    # is recomputed), but its state hash is not the one the auditors signed.
    forged_state = snapshot_decode(snapshot_encode(state, GENESIS, 1)).state
    account = forged_state.accounts.get_by_id(1)
    assert account is not None
    account.balances[sorted(account.balances)[0]].amount += 1
    forged_state.commitment.touch(1)
    forged = snapshot_decode(snapshot_encode(forged_state, GENESIS, 1))
    assert forged.state_hash != honest_hash
    settings = state.require_config().settings
    assert attested_by_majority(settings, CID, state.apex, forged.state_hash, signatures) == (0, 2)
    assert attested_by_majority(settings, CID, state.apex, honest_hash, signatures) == (3, 2)


def test_a_majority_counts_distinct_auditors_of_the_settings_only() -> None:
    state = fixed_engine().state
    settings = state.require_config().settings
    state_hash = state.state_hash()
    digest = attestation_digest(CID, state.apex, state_hash)
    stranger = keypair(999)
    one = (AUDITORS[0].public_key, AUDITORS[0].sign(digest))
    offered = [
        one,
        one,  # the same auditor twice counts once
        (stranger.public_key, stranger.sign(digest)),  # not an auditor
        (AUDITORS[1].public_key, AUDITORS[1].sign(attestation_digest(CID, 1, state_hash))),
    ]
    assert attested_by_majority(settings, CID, state.apex, state_hash, offered) == (1, 2)


def test_the_engine_records_the_state_hash_at_attested_apexes() -> None:
    steps = [step for step in record_session(2, requests=20) if step.executed is not None]
    engine = Engine()
    engine.attest_every = 4
    hashes = {}
    for step in steps:
        assert step.executed is not None
        engine.replay(step.executed.quantum, verified=True)
        hashes[engine.state.apex] = engine.state.state_hash()
    assert (
        engine.attested == [(apex, hashes[apex]) for apex in sorted(hashes) if apex % 4 == 0][-16:]
    )
    last_attested = engine.attested[-1][0]
    assert attestation_apex_at_or_above(last_attested - 1, 4) == last_attested
    assert attestation_apex_at_or_above(last_attested, 4) == last_attested


def test_a_reverted_quantum_takes_its_attestation_with_it() -> None:
    steps = [step for step in record_session(3, requests=10) if step.executed is not None]
    engine = Engine()
    engine.attest_every = len(steps)
    executed = None
    for step in steps:
        assert step.executed is not None
        executed = engine.replay(step.executed.quantum, verified=True)
    assert executed is not None and engine.attested[-1][0] == executed.apex
    engine.revert_last(executed)
    assert engine.attested == []
