"""A withdrawal through alpha and an auditor, in memory: the auditor validates the exact
transaction in the quantum, returns its signature in its AuditorResult, and alpha's signature
plus the auditor's make the majority the local ledger's rules ask for. No database."""

from __future__ import annotations

import pytest

from payments.core.local_ledger import (
    require_signed,
    transaction_decode,
    transaction_encode,
    transaction_sign,
    withdrawal_transaction,
)
from quanta.core.alpha import AlphaNode
from quanta.core.auditor import AuditorNode
from quanta.core.engine import Engine
from quanta.core.pending import PendingUpdates
from quanta.core.signatures import constellation_id_of
from quanta.core.status import BadRequest
from quanta.core.testing import (
    PROVIDER_ID,
    default_settings,
    deposit_quantum,
    keypair,
    settings_quantum,
    sign_message,
)
from quanta.core.xdr.schema import (
    NodeSignature,
    NodeState,
    SignedQuantum,
    TxSignature,
    WithdrawalQuantum,
    WithdrawalRequest,
)

NODES = [keypair(210), keypair(211), keypair(212)]
GENESIS = default_settings(NODES)
CONSTELLATION_ID = constellation_id_of(GENESIS)
CLIENT = keypair(7)
PAYEE = keypair(8).public_key_strkey
UNIT = 10_000_000
TTL_MS = 60_000


def _transaction(apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
    until = timestamp_ms + TTL_MS
    tx = withdrawal_transaction(
        "VAULT", request.destination, request.asset, request.amount, apex, until
    )
    return transaction_encode(tx)


def _validate(apex: int, timestamp_ms: int, request: WithdrawalRequest, data: bytes) -> None:
    if data != _transaction(apex, timestamp_ms, request):
        raise BadRequest("the transaction does not pay the request")


class _Builder:
    """Alpha's transaction builder: the local ledger's rules, optionally tampered with."""

    def __init__(self) -> None:
        self.tamper = False
        self.accepted_apexes: list[int] = []

    def build(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        data = _transaction(apex, timestamp_ms, request)
        if self.tamper:  # Pays more than asked: the auditor must refuse it.
            data = data.replace(b'"amount":30000000', b'"amount":90000000')
        return data

    def accepted(self, apex: int, request: WithdrawalRequest, transaction: bytes) -> None:
        self.accepted_apexes.append(apex)


def _nodes(builder: _Builder | None = None) -> tuple[AlphaNode, AuditorNode]:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates(), transactions=builder or _Builder())
    alpha.initialize(settings_quantum(GENESIS, NODES).update, 1_000)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), 1_001)
    auditor = AuditorNode(
        NODES[1],
        Engine(validate_transaction=_validate),
        PendingUpdates(),
        sign_transaction=lambda body: transaction_sign(body.transaction, NODES[1]),
    )
    auditor.handle_batch(tuple(alpha.take_outgoing()), alpha.engine.state.apex)
    assert auditor.status.state == NodeState.READY
    return alpha, auditor


def _withdraw(alpha: AlphaNode) -> SignedQuantum:
    request = WithdrawalRequest(5, CLIENT.public_key, 1, PROVIDER_ID, "USD", 3 * UNIT, PAYEE, 0)
    apex, timestamp = alpha.engine.next_stamp(2_000)
    assert alpha.transactions is not None
    data = alpha.transactions.build(apex, timestamp, request)
    alpha.submit(sign_message(request, CLIENT, CONSTELLATION_ID), 2_000, ("hub", 1))
    (signed,) = alpha.take_outgoing()
    assert isinstance(signed.quantum.body, WithdrawalQuantum)
    assert alpha.engine.state.withdrawals[apex].transaction == data
    return signed


def test_the_auditor_signs_the_transaction_it_validated() -> None:
    alpha, auditor = _nodes()
    signed = _withdraw(alpha)
    outcome = auditor.handle_batch((signed,), signed.quantum.apex)
    (result,) = outcome.results
    assert isinstance(result.tx_signature, TxSignature)
    body = signed.quantum.body
    assert isinstance(body, WithdrawalQuantum)
    assert transaction_decode(body.transaction).withdrawal_id == signed.quantum.apex
    alpha_signature = transaction_sign(body.transaction, NODES[0])
    keys = tuple(k.public_key for k in NODES)
    require_signed(body.transaction, [alpha_signature, result.tx_signature], keys, 2)
    assert isinstance(result.signature, NodeSignature)


def test_alpha_hears_which_withdrawal_executed_with_which_stamp() -> None:
    builder = _Builder()
    alpha, _ = _nodes(builder)
    signed = _withdraw(alpha)
    assert builder.accepted_apexes == [signed.quantum.apex]
    assert signed.quantum.timestamp == 2_000


def test_an_auditor_refuses_a_transaction_that_does_not_pay_the_request() -> None:
    builder = _Builder()
    alpha, auditor = _nodes(builder)
    builder.tamper = True
    outcome = auditor.handle_batch((_withdraw(alpha),), alpha.engine.state.apex)
    assert outcome.results == []
    assert auditor.status.state == NodeState.FAILED
    assert "does not pay" in auditor.status.reason


def test_a_withdrawal_without_a_transaction_is_refused() -> None:
    alpha = AlphaNode(NODES[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(GENESIS, NODES).update, 1_000)
    alpha.notify(deposit_quantum(1, [(CLIENT, "USD", 10 * UNIT)]), 1_001)
    alpha.take_outgoing()
    request = WithdrawalRequest(6, CLIENT.public_key, 1, PROVIDER_ID, "USD", UNIT, PAYEE, 0)
    alpha.submit(sign_message(request, CLIENT, CONSTELLATION_ID), 2_000, ("hub", 1))
    assert alpha.take_outgoing() == []
    with pytest.raises(KeyError):
        alpha.engine.state.withdrawals[alpha.engine.state.apex + 1]
