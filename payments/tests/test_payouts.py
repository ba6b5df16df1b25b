"""Alpha's payout desk against a fake provider: builds for the stamp it is given, registers
what executed with alpha's own signature, gathers valid auditor signatures, and submits once a
majority signed. No database: the fake keeps everything in memory."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from payments.core.local_ledger import rotation_decode, signature_valid, transaction_sign
from payments.core.rotation import local_rotation
from payments.payouts import PayoutDesk
from quanta.core.alpha import AlphaNode
from quanta.core.config import Config
from quanta.core.engine import Engine
from quanta.core.pending import PendingUpdates
from quanta.core.processors.settings import ROTATION_TTL_MS
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.status import BadRequest, ConstellationError, InvalidState, StatusCode
from quanta.core.testing import PROVIDER_ID, default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import NodeState, TxSignature, VaultRotationTx, WithdrawalRequest

NODES = [keypair(220), keypair(221), keypair(222)]
REQUEST = WithdrawalRequest(1, NODES[0].public_key, 1, PROVIDER_ID, "USD", 5, "EXT", 0)


class FakeProvider:
    """The part of the provider interface the desk uses, recorded."""

    def __init__(self) -> None:
        self.built: list[tuple[int, int]] = []
        self.submitted: list[tuple[bytes, int]] = []
        self.fail_build = False
        self.broken: set[bytes] = set()  # transactions whose submission raises a bug
        self.rotated: list[tuple[bytes, int]] = []

    def build_withdrawal(self, apex: int, timestamp_ms: int, request: Any) -> bytes:
        if self.fail_build:
            raise RuntimeError("provider bug")
        self.built.append((apex, timestamp_ms))
        return f"tx-{apex}-{timestamp_ms}".encode()

    def withdrawal_accepted(self, transaction: bytes) -> None:
        pass

    def transaction_expiry_ms(self, transaction: bytes) -> int:
        return 10**12

    def sign_withdrawal(self, transaction: bytes) -> TxSignature:
        return TxSignature(NODES[0].public_key, b"alpha")

    def signature_valid(self, transaction: bytes, signature: TxSignature) -> bool:
        return signature.signature == b"good"

    def needs_preparation(self) -> bool:
        return False

    # vault rotations: the local ledger's format and signatures
    def build_rotation(
        self, old: tuple[bytes, ...], new: tuple[bytes, ...], version: int, valid_until_ms: int
    ) -> bytes:
        return local_rotation(f"vault-{id(self)}", new, version, valid_until_ms)

    def sign_rotation(self, transaction: bytes) -> TxSignature:
        return transaction_sign(transaction, NODES[0])

    def rotation_signature_valid(
        self, transaction: bytes, signature: TxSignature, old: tuple[bytes, ...]
    ) -> bool:
        return signature.signer in old and signature_valid(transaction, signature)

    def rotation_expiry_ms(self, transaction: bytes) -> int:
        return rotation_decode(transaction).valid_until_ms

    def submit_rotation(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        self.rotated.append((transaction, len(signatures)))

    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        if transaction in self.broken:
            raise RuntimeError("value too long for type character varying(56)")
        self.submitted.append((transaction, len(signatures)))


def _desk() -> tuple[PayoutDesk, FakeProvider]:
    provider = FakeProvider()
    return PayoutDesk(lambda: {PROVIDER_ID: provider}, lambda: 5_000), provider  # type: ignore[dict-item]


def test_the_desk_builds_for_the_stamp_it_is_handed() -> None:
    desk, provider = _desk()
    assert desk.build(7, 1_234, REQUEST) == b"tx-7-1234"
    assert provider.built == [(7, 1_234)]


def test_a_provider_bug_becomes_an_internal_error_for_the_request() -> None:
    desk, provider = _desk()
    provider.fail_build = True
    with pytest.raises(ConstellationError) as caught:
        desk.build(7, 1_234, REQUEST)
    assert caught.value.status == StatusCode.INTERNAL_ERROR


def test_an_unknown_provider_is_a_bad_request() -> None:
    desk, _ = PayoutDesk(lambda: {}, lambda: 0), None
    with pytest.raises(BadRequest):
        desk.build(1, 1, REQUEST)


async def test_a_majority_of_signatures_submits_the_payout() -> None:
    desk, provider = _desk()
    desk.accepted(2, REQUEST, b"tx-2")
    desk.offer(2, TxSignature(NODES[1].public_key, b"forged"))
    desk.offer(2, TxSignature(NODES[1].public_key, b"good"))
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    state: ConstellationState = alpha.engine.state
    state.withdrawals[2] = _withdrawal()
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.submitted == [(b"tx-2", 2)]


async def test_a_signed_payout_waits_until_its_quantum_is_persisted_at_alpha() -> None:
    # Issue 15 item 2: with alpha + one auditor the payout was submitted on signatures alone,
    # before row 2 was on disk; a crash then let recovery put another quantum at apex 2.
    desk, provider = _desk()
    desk.accepted(2, REQUEST, b"tx-2")
    desk.offer(2, TxSignature(NODES[1].public_key, b"good"))
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    state: ConstellationState = alpha.engine.state
    state.withdrawals[2] = _withdrawal()
    await desk.tick(state, NodeState.READY, persisted_apex=1)
    assert provider.submitted == []
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.submitted == [(b"tx-2", 2)]


async def test_nothing_is_paid_while_alpha_is_not_ready() -> None:
    desk, provider = _desk()
    desk.accepted(2, REQUEST, b"tx-2")
    desk.offer(2, TxSignature(NODES[1].public_key, b"good"))
    await desk.tick(ConstellationState(), NodeState.RISING, persisted_apex=2)
    assert provider.submitted == []


def _withdrawal() -> Withdrawal:
    return Withdrawal(2, 1, PROVIDER_ID, "USD", 5, 0, "EXT", b"tx-2")


async def test_one_payout_that_raises_does_not_stop_the_others() -> None:
    # A withdrawal to a 60-character destination made the ledger raise DataError in every
    # tick, before any later payout or expiry cancellation: all of them stopped for good.
    desk, provider = _desk()
    provider.broken.add(b"tx-2")
    for apex in (2, 3):
        desk.accepted(apex, REQUEST, f"tx-{apex}".encode())
        desk.offer(apex, TxSignature(NODES[1].public_key, b"good"))
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    state: ConstellationState = alpha.engine.state
    state.withdrawals[2] = _withdrawal()
    state.withdrawals[3] = dataclasses.replace(_withdrawal(), withdrawal_id=3, transaction=b"tx-3")
    await desk.tick(state, NodeState.READY, persisted_apex=3)
    assert provider.submitted == [(b"tx-3", 2)]
    assert not desk.book.payouts[2].submitted and desk.book.payouts[2].attempts == 1


@pytest.mark.django_db(databases=["default", "ledger"])
def test_the_local_ledger_refuses_a_destination_that_is_not_an_account() -> None:
    # XDR allows 256 characters, the ledger's column 56: such a withdrawal was accepted and
    # then failed in the database at every payout tick.
    from payments.providers.local_ledger.provider import LocalLedgerProvider

    settings = default_settings(NODES).providers[0]
    provider = LocalLedgerProvider(settings, NODES[0], tuple(n.public_key for n in NODES), {})
    long_one = dataclasses.replace(REQUEST, destination="G" * 60)
    with pytest.raises(BadRequest, match="destination must be a G"):
        provider.build_withdrawal(2, 1_000, long_one)
    provider.prepare()
    good = dataclasses.replace(REQUEST, destination=NODES[1].public_key_strkey)
    assert provider.build_withdrawal(2, 1_000, good)


async def test_a_restored_payout_takes_the_signatures_that_came_before_it() -> None:
    """After a restart the book is empty and the auditors sign the recovered withdrawal again
    before the first tick restores its payout from the state: those signatures were dropped,
    alpha's own was missing, and the withdrawal could only expire unpaid (seen with real
    processes in tests/cluster/test_payout_durability.py)."""
    desk, provider = _desk()
    desk.offer(2, TxSignature(NODES[1].public_key, b"forged"))
    desk.offer(2, TxSignature(NODES[2].public_key, b"good"))
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    state: ConstellationState = alpha.engine.state
    state.withdrawals[2] = _withdrawal()
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.submitted == [(b"tx-2", 2)], "alpha's and the valid auditor's signatures"


async def test_a_restored_payout_short_of_signatures_is_asked_for_again() -> None:
    """A restart of alpha after the withdrawal was final and persisted (but not submitted):
    the auditors send nothing again for a final quantum, so the restored payout has alpha's
    signature alone. The desk names it until a majority signed (the herald then sends the
    quantum again and the auditors sign its transaction again); then it is paid."""
    desk, provider = _desk()
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    state: ConstellationState = alpha.engine.state
    assert desk.signatures_wanted(state, persisted_apex=2) == []  # nothing restored yet
    state.withdrawals[2] = _withdrawal()
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.submitted == []
    assert desk.signatures_wanted(state, persisted_apex=1) == []  # not final on disk: waits
    assert desk.signatures_wanted(state, persisted_apex=2) == [2]
    desk.offer(2, TxSignature(NODES[1].public_key, b"good"))
    assert desk.signatures_wanted(state, persisted_apex=2) == []
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.submitted == [(b"tx-2", 2)]


async def test_a_provider_whose_preparation_raises_does_not_stop_the_others() -> None:
    # A local vault of other signers (the auditors changed) raised in `prepare`, before any
    # payout of any provider: every payout tick aborted for good.
    desk, provider = _desk()

    class Broken(FakeProvider):
        def needs_preparation(self) -> bool:
            return True

        def prepare(self) -> None:
            raise RuntimeError("VAULT is a vault of other signers")

    desk.providers = lambda: {"local-broken": Broken(), PROVIDER_ID: provider}  # type: ignore[dict-item]
    desk.accepted(2, REQUEST, b"tx-2")
    desk.offer(2, TxSignature(NODES[1].public_key, b"good"))
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    state: ConstellationState = alpha.engine.state
    state.withdrawals[2] = _withdrawal()
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.submitted == [(b"tx-2", 2)]


# --- vault rotations (issue 18) ------------------------------------------------------------

NEW_NODES = [NODES[0], keypair(223), keypair(224)]


def _rotation_desk(
    providers: int = 1,
) -> tuple[PayoutDesk, FakeProvider, ConstellationState, list[int]]:
    """A desk with the rotations of an update at apex 2 replacing two of three auditors (of
    `providers` vaults: the first is returned; the others are `other_provider_ids`)."""
    clock = [5_000]
    fakes = {PROVIDER_ID: FakeProvider()}
    fakes.update({f"{PROVIDER_ID}-{i}": FakeProvider() for i in range(1, providers)})
    desk = PayoutDesk(lambda: fakes, lambda: clock[0])  # type: ignore[arg-type, return-value]
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(NODES), NODES).update, 1_000)
    prev = alpha.engine.state.require_config()
    new_settings = dataclasses.replace(default_settings(NEW_NODES), version=2)
    new = Config.from_settings(new_settings, prev.constellation_id)
    built = tuple(
        VaultRotationTx(
            provider_id,
            fake.build_rotation(prev.auditor_keys, new.auditor_keys, 2, 5_000 + ROTATION_TTL_MS),
        )
        for provider_id, fake in sorted(fakes.items())
    )
    begun = desk.rotation_begin(prev, 2, built, NODES[0])
    assert [r.expiry_ms for r in begun] == [5_000 + ROTATION_TTL_MS] * providers
    return desk, fakes[PROVIDER_ID], alpha.engine.state, clock


def rotation_sign(rotation: Any, keypair: Any) -> TxSignature:
    return transaction_sign(rotation.transaction, keypair)


async def test_a_rotation_is_submitted_with_an_old_majority_once_its_update_is_persisted() -> None:
    desk, provider, state, _ = _rotation_desk()
    rotation = desk._rotation_of[PROVIDER_ID, 2]
    new_key = transaction_sign(rotation.transaction, NEW_NODES[1])
    assert not desk.rotation_offer(2, new_key)  # a new key's counts nothing
    assert len(desk.rotations[PROVIDER_ID].payouts[2].signatures) == 1
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == []  # alpha alone: 1 of the 2 old signatures needed
    signature = rotation_sign(rotation, NODES[2])
    assert desk.rotation_offer(2, signature)  # a removed auditor's
    assert not desk.rotation_offer(3, signature)  # no rotation at apex 3
    await desk.tick(state, NodeState.READY, persisted_apex=1)
    assert provider.rotated == []  # the update is not final and persisted yet
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == [(rotation.transaction, 2)]
    assert desk.rotations[PROVIDER_ID].payouts == {}  # applied: forgotten
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert len(provider.rotated) == 1  # once


async def test_a_rotation_waits_for_the_payouts_the_old_signers_signed_before_it() -> None:
    desk, provider, state, clock = _rotation_desk()
    desk.book.add(1, PROVIDER_ID, b"tx-1", expiry_ms=60_000)  # built before the update
    state.withdrawals[1] = _withdrawal()
    rotation = desk._rotation_of[PROVIDER_ID, 2]
    desk.rotation_offer(2, rotation_sign(rotation, NODES[1]))
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == []  # its old signers' payout may still go first
    clock[0] = 60_000
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == [(rotation.transaction, 2)]


async def test_a_rotation_short_of_the_old_majority_expires_unsubmitted() -> None:
    """An old signer offline (and the removed one sent nothing): the rotation waits, then is
    dropped at its expiry, with an error naming the fallback (`vault_rotate`)."""
    desk, provider, state, clock = _rotation_desk()
    clock[0] = 5_000 + ROTATION_TTL_MS
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == [] and desk.rotations[PROVIDER_ID].payouts == {}


class MemoryRotationStore:
    """A `RotationStore` in a dict: what alpha's database would hold across a restart."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], tuple[Any, list[TxSignature]]] = {}

    def save(self, rotation: Any, signatures: list[TxSignature]) -> None:
        self.rows[rotation.apex, rotation.provider] = (rotation, list(signatures))

    def delete(self, apex: int, provider: str) -> None:
        self.rows.pop((apex, provider), None)


async def test_a_rotation_survives_a_restart_of_alpha_with_its_signatures() -> None:
    """A removed auditor signs once: its signature is persisted before anything is submitted,
    restored by the next alpha, and the rotation submitted once; then the row is gone."""
    desk, provider, state, _ = _rotation_desk()
    store = MemoryRotationStore()
    desk._rotation_store = store
    rotation = desk._rotation_of[PROVIDER_ID, 2]
    await desk.rotations_persist()
    assert len(store.rows[2, PROVIDER_ID][1]) == 1  # built, alpha's own signature
    desk.rotation_offer(2, rotation_sign(rotation, NODES[2]))
    await desk.tick(state, NodeState.READY, persisted_apex=1)  # not due: only persisted
    assert provider.rotated == [] and len(store.rows[2, PROVIDER_ID][1]) == 2
    # alpha dies; its successor starts from the store alone
    restarted = PayoutDesk(lambda: {PROVIDER_ID: provider}, lambda: 5_000, store)  # type: ignore[dict-item]
    restarted.rotations_restore(list(store.rows.values()))
    await restarted.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == [(rotation.transaction, 2)]
    assert store.rows == {}
    await restarted.tick(state, NodeState.READY, persisted_apex=2)
    assert len(provider.rotated) == 1  # once


async def test_a_restored_rotation_keeps_only_valid_old_signatures() -> None:
    desk, provider, state, _ = _rotation_desk()
    rotation = desk._rotation_of[PROVIDER_ID, 2]
    forged = TxSignature(NODES[1].public_key, b"\0" * 64)
    restarted = PayoutDesk(lambda: {PROVIDER_ID: provider}, lambda: 5_000)  # type: ignore[dict-item]
    restarted.rotations_restore([(rotation, [forged])])
    await restarted.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated == [] and restarted.rotations[PROVIDER_ID].payouts[2].signatures == {}


async def test_one_update_rotates_every_vault_each_with_its_own_old_majority() -> None:
    """Two vaults: each rotation gathers its own signatures (a signer's signature of one
    counts nothing for the other) and is submitted once, each to its own provider."""
    desk, first, state, _ = _rotation_desk(providers=2)
    other_id = f"{PROVIDER_ID}-1"
    other = desk.providers()[other_id]
    second = desk._rotation_of[other_id, 2]
    assert second.transaction != desk._rotation_of[PROVIDER_ID, 2].transaction
    assert desk.rotation_offer(2, rotation_sign(second, NODES[1]))  # the second's only
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert first.rotated == [] and other.rotated == [(second.transaction, 2)]  # type: ignore[attr-defined]
    assert desk.rotation_offer(2, rotation_sign(desk._rotation_of[PROVIDER_ID, 2], NODES[2]))
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert len(first.rotated) == 1 and len(other.rotated) == 1  # type: ignore[attr-defined]


async def test_another_auditor_change_is_refused_while_a_rotation_has_not_applied() -> None:
    """Its old signers would sign for a vault that does not know them yet: refused, naming
    the pending rotation; once it applied, the next change builds its rotation."""
    desk, provider, state, _ = _rotation_desk()
    prev = state.require_config()
    newer = Config.from_settings(
        dataclasses.replace(default_settings([NODES[0], keypair(225), keypair(226)]), version=3),
        prev.constellation_id,
    )
    with pytest.raises(InvalidState, match="vault rotation of .* has not applied yet"):
        desk.build_rotations(prev, newer, 9_000)
    assert desk.build_rotations(prev, prev, 9_000) == ()  # no auditor change: no rotation
    desk.rotation_offer(2, rotation_sign(desk._rotation_of[PROVIDER_ID, 2], NODES[1]))
    await desk.tick(state, NodeState.READY, persisted_apex=2)
    assert provider.rotated and desk.build_rotations(prev, newer, 9_000)


async def test_the_vaults_an_update_rotates_are_prepared_before_it_executes() -> None:
    """A Stellar rotation is built on the vault's sequence, which `prepare` loads: a fresh
    alpha (a designate) executes its update before its first payout tick."""
    desk, provider, state, _ = _rotation_desk()
    prev = state.require_config()
    newer = Config.from_settings(
        dataclasses.replace(default_settings([NODES[0], keypair(225), keypair(226)]), version=3),
        prev.constellation_id,
    )
    prepared: list[bool] = []
    provider.needs_preparation = lambda: not prepared  # type: ignore[method-assign]
    provider.prepare = lambda: prepared.append(True)  # type: ignore[attr-defined]
    provider.vault_mismatch = None  # type: ignore[attr-defined]
    await desk.prepare_rotating(prev, prev)  # no auditor change: nothing to prepare
    assert prepared == []
    await desk.prepare_rotating(prev, newer)
    await desk.prepare_rotating(prev, newer)
    assert prepared == [True]  # once: it no longer needs it
