"""What alpha promises and when: finalizations wait for their quantum to be persisted.

Goal: a client is only told "final" once the quantum can no longer be lost by a crash of
alpha alone, so every finalization carries the number of final quanta that must be persisted
before it may leave (the worker's sender enforces it); acknowledgements and rejections do not
wait, and an acknowledgement goes to the same destination (the account) as its finalization.
"""

from __future__ import annotations

from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.envelopes import may_be_signless
from quanta.core.pending import PendingUpdates
from quanta.core.testing import (
    default_settings,
    deposit_quantum,
    keypair,
    next_message_id,
    settings_quantum,
    sign_message,
)
from quanta.core.xdr.codec import decode
from quanta.core.xdr.schema import MESSAGE, AccountDataRequest, PaymentRequest

UNIT = 10_000_000
REPLY = ("gateway.hub!1", 7)  # A hub channel and a connection number.
PAYER, PAYEE = keypair(1), keypair(2)


def _alpha(nodes: list) -> AlphaNode:  # type: ignore[type-arg]
    alpha = AlphaNode(nodes[0], Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings(nodes), nodes).update, 1_000)
    alpha.notify(deposit_quantum(1, [(PAYER, "USD", 10 * UNIT), (PAYEE, "USD", UNIT)]), 1_001)
    return alpha


def _cid(alpha: AlphaNode) -> bytes:
    return alpha.engine.state.require_config().constellation_id


def _payment(alpha: AlphaNode) -> object:
    request = PaymentRequest(next_message_id(), PAYER.public_key, 1, "USD", UNIT, PAYEE.public_key)
    return sign_message(request, PAYER, _cid(alpha))


def test_single_node_finalization_waits_for_its_row() -> None:
    alpha = _alpha([keypair(200)])
    deliveries = alpha.submit(_payment(alpha), 2_000, REPLY)
    assert deliveries, "payer and payee are told"
    assert {d.finals_persisted_min for d in deliveries} == {alpha.finalized_count}
    assert len(alpha.take_final_rows()) == alpha.finalized_count == 3


def test_acknowledgement_does_not_wait_and_goes_to_the_account() -> None:
    nodes = [keypair(200), keypair(201), keypair(202)]
    alpha = _alpha(nodes)
    ack = alpha.submit(_payment(alpha), 2_000, REPLY)
    assert [(d.public_key, d.reply_to, d.finals_persisted_min) for d in ack] == [
        (PAYER.public_key, None, 0)
    ]
    apex = alpha.engine.state.apex
    payload = alpha.unfinalized[apex].executed.payload_hash
    finals = alpha.add_signature(apex, 1, nodes[1].sign(payload))
    assert finals
    assert {d.finals_persisted_min for d in finals} == {alpha.finalized_count}


def test_rejection_does_not_wait() -> None:
    alpha = _alpha([keypair(200)])
    envelope = _payment(alpha)
    alpha.submit(envelope, 2_000, REPLY)
    replayed = alpha.submit(envelope, 2_001, REPLY)
    assert [(d.reply_to, d.finals_persisted_min) for d in replayed] == [(REPLY, 0)]


def test_results_say_whether_their_frame_must_be_signed() -> None:
    # Account data lies outside the payload proof: only a result carrying it needs alpha's
    # frame signature (quanta.core.envelopes.may_be_signless).
    alpha = _alpha([keypair(200), keypair(201), keypair(202)])
    (payment_ack,) = alpha.submit(_payment(alpha), 2_000, REPLY)
    request = AccountDataRequest(next_message_id(), PAYER.public_key, 2)
    (data_ack,) = alpha.submit(sign_message(request, PAYER, _cid(alpha)), 2_001, REPLY)
    for delivery in (payment_ack, data_ack):
        assert delivery.signed == (not may_be_signless(decode(MESSAGE, delivery.message)))
    assert (payment_ack.signed, data_ack.signed) == (False, True)
