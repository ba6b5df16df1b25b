"""Alpha's payout desk against a fake provider: builds for the stamp it is given, registers
what executed with alpha's own signature, gathers valid auditor signatures, and submits once a
majority signed. No database: the fake keeps everything in memory."""

from __future__ import annotations

from typing import Any

import pytest

from payments.payouts import PayoutDesk
from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.pending import PendingUpdates
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.status import BadRequest, ConstellationError, StatusCode
from quanta.core.testing import PROVIDER_ID, default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import NodeState, TxSignature, WithdrawalRequest

NODES = [keypair(220), keypair(221), keypair(222)]
REQUEST = WithdrawalRequest(1, NODES[0].public_key, 1, PROVIDER_ID, "USD", 5, "EXT", 0)


class FakeProvider:
    """The part of the provider interface the desk uses, recorded."""

    def __init__(self) -> None:
        self.built: list[tuple[int, int]] = []
        self.submitted: list[tuple[bytes, int]] = []
        self.fail_build = False

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

    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
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
