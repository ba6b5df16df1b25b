"""Result messages spliced from the engine's group XDR are the codec's own bytes.

Goal: `ResultEncoder` must give, for every account a quantum touched (and for none), with any
proof, exactly the bytes `encode(QuantumResultMessage(...), MESSAGE)` gives for the same
message, so clients and the protocol cannot tell the two apart; a result with account data
too. Method: a real engine executes a deposit to three accounts, a payment and an account
data request, and each message is compared with the whole encoding and decoded back.
"""

from __future__ import annotations

import pytest

from quanta.core.engine import Engine, Executed
from quanta.core.results import ResultEncoder
from quanta.core.signatures import constellation_id_of
from quanta.core.status import StatusCode
from quanta.core.testing import (
    default_settings,
    deposit_quantum,
    keypair,
    request_quantum,
    settings_quantum,
)
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataRequest,
    EffectsGroupHash,
    NodeSignature,
    PayloadProof,
    PaymentRequest,
    QuantumResultMessage,
)

UNIT = 10_000_000
NODES = [keypair(200), keypair(201), keypair(202)]
ALICE, BOB, CAROL = keypair(1), keypair(2), keypair(3)
SIGNATURES = [
    (),
    (NodeSignature(0, bytes(64)),),
    (NodeSignature(0, b"a" * 64), NodeSignature(2, b"b" * 64)),
]
CID = constellation_id_of(default_settings(NODES))
"""The id of the constellation these tests run (its genesis settings' hash)."""


def _engine() -> Engine:
    engine = Engine()
    engine.execute(settings_quantum(default_settings(NODES), NODES), 1_000)
    return engine


def _whole(
    executed: Executed,
    message_id: int,
    account_id: int | None,
    signatures: tuple[NodeSignature, ...],
    with_data: bool,
) -> bytes:
    effects = tuple(
        group if group.account == account_id else EffectsGroupHash(group.account, digest)
        for group, digest in zip(executed.groups, executed.group_hashes, strict=True)
    )
    message = QuantumResultMessage(
        message_id,
        StatusCode.SUCCESS,
        "",
        executed.apex,
        executed.quantum_hash,
        PayloadProof(executed.payload_hash, signatures),
        effects,
        executed.account_data if with_data else None,
    )
    return encode(message, MESSAGE)


@pytest.mark.parametrize("signatures", SIGNATURES)
def test_every_account_s_result_is_the_codec_s_bytes(signatures: tuple[NodeSignature, ...]) -> None:
    engine = _engine()
    deposit = engine.execute(
        deposit_quantum(1, [(ALICE, "USD", 10 * UNIT), (BOB, "USD", UNIT), (CAROL, "USD", UNIT)]),
        1_001,
    )
    request = PaymentRequest(5, ALICE.public_key, 1, "USD", UNIT, BOB.public_key)
    payment = engine.execute(request_quantum(request, ALICE, CID), 1_002, verified=True)
    for executed in (deposit, payment):
        encoder = ResultEncoder(executed)
        accounts = [group.account for group in executed.groups]
        assert len(accounts) >= 2
        for account_id in [*accounts, None, 999]:
            for message_id in (0, 5):
                spliced = encoder.message(message_id, account_id, signatures, None)
                assert spliced == _whole(executed, message_id, account_id, signatures, False)
                decoded = decode(MESSAGE, spliced)
                assert isinstance(decoded, QuantumResultMessage)
                full = [g for g in decoded.effects if not isinstance(g, EffectsGroupHash)]
                assert [g.account for g in full] == [a for a in accounts if a == account_id]


def test_a_result_with_account_data_is_the_codec_s_bytes_too() -> None:
    engine = _engine()
    engine.execute(deposit_quantum(1, [(ALICE, "USD", 10 * UNIT)]), 1_001)
    request = AccountDataRequest(9, ALICE.public_key, 1)
    executed = engine.execute(request_quantum(request, ALICE, CID), 1_002, verified=True)
    assert executed.account_data is not None
    account_id = executed.groups[0].account
    spliced = ResultEncoder(executed).message(9, account_id, SIGNATURES[1], executed.account_data)
    assert spliced == _whole(executed, 9, account_id, SIGNATURES[1], True)
