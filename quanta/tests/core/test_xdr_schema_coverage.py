"""The schema declares every structure SPEC.md names, with the values SPEC.md fixes.

Goal: a message, envelope, quantum kind, effect, status code or enum value required by the
specification cannot go missing from `schema.py` (or be renamed, or change value) unnoticed.

Method: the names and values below are copied from SPEC.md ("Messages and envelopes",
"Quanta", "Effects", "States and recovery"); each is looked up in the schema's unions and
enums, and each union arm must also be a schema dataclass the codec can compile.
"""

from __future__ import annotations

import dataclasses

import pytest

from quanta.core.status import StatusCode
from quanta.core.xdr import codec, schema

SPEC_MESSAGES = [
    "HandshakeRequest",
    "HandshakeResponse",
    "AuditorHandshakeResponse",
    "ClientConnectionSuccess",
    "ResultMessage",
    "QuantumResultMessage",
    "AccountDataRequest",
    "PaymentRequest",
    "OrderRequest",
    "OrderCancellationRequest",
    "WithdrawalRequest",
    "QuantumInfoRequest",
    "ConstellationUpdate",
    "QuantaBatch",
    "ResultsBatch",
    "StateUpdate",
]
SPEC_ENVELOPES = ["MessageEnvelope", "MessageEnvelopeSignless", "ConstellationMessageEnvelope"]
SPEC_QUANTA = ["RequestQuantum", "DepositQuantum", "ConstellationQuantum", "WithdrawalQuantum"]
SPEC_EFFECTS = [
    "AccountCreate",
    "NonceUpdate",
    "BalanceCreate",
    "BalanceUpdate",
    "OrderPlaced",
    "OrderRemoved",
    "Trade",
    "CursorUpdate",
    "ConstellationUpdate",
    "WithdrawalCreate",
    "WithdrawalRemove",
]
SPEC_STATUS_CODES = {
    "SUCCESS": 200,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "PAYLOAD_TOO_LARGE": 413,
    "TOO_MANY_REQUESTS": 429,
    "INVALID_STATE": 450,
    "INTERNAL_ERROR": 500,
    "SNAPSHOT_VALIDATION_FAILED": 550,
    "UNEXPECTED_MESSAGE": 551,
}


def _arm_names(union: codec.Union) -> set[str]:
    return {arm.__name__ for arm in union.arms.values()}


@pytest.mark.parametrize("name", SPEC_MESSAGES)
def test_message_union_has_spec_message(name: str) -> None:
    assert name in _arm_names(schema.MESSAGE)
    assert getattr(schema, name) in schema.MESSAGE


@pytest.mark.parametrize("name", SPEC_ENVELOPES)
def test_envelope_exists_and_carries_any_message(name: str) -> None:
    envelope = getattr(schema, name)
    assert isinstance(envelope, type)
    assert dataclasses.is_dataclass(envelope)
    fields = dict(codec.struct_codec(envelope).fields)
    assert fields["message"] is schema.MESSAGE


def test_envelope_signatures() -> None:
    single = dict(codec.struct_codec(schema.MessageEnvelope).fields)
    assert single["signature"] is codec.struct_codec(schema.Signature)
    several = dict(codec.struct_codec(schema.ConstellationMessageEnvelope).fields)
    assert isinstance(several["signatures"], codec.Array)
    assert several["signatures"].item is schema.Signature
    assert [name for name, _ in codec.struct_codec(schema.MessageEnvelopeSignless).fields] == [
        "message"
    ]


@pytest.mark.parametrize("name", SPEC_QUANTA)
def test_quantum_body_union_has_spec_quantum(name: str) -> None:
    assert name in _arm_names(schema.QUANTUM_BODY)


def test_quantum_base_fields() -> None:
    fields = dict(codec.struct_codec(schema.Quantum).fields)
    assert fields["apex"] is codec.UINT64
    assert isinstance(fields["prev_hash"], codec.FixedOpaque)
    assert fields["prev_hash"].size == 32
    assert isinstance(fields["effects_proof"], codec.FixedOpaque)
    assert fields["effects_proof"].size == 32
    assert fields["timestamp"] in (codec.INT64, codec.UINT64)
    assert fields["body"] is schema.QUANTUM_BODY


@pytest.mark.parametrize("name", SPEC_EFFECTS)
def test_effect_union_has_spec_effect(name: str) -> None:
    assert f"{name}Effect" in _arm_names(schema.EFFECT)


def test_effects_group_and_info() -> None:
    fields = [name for name, _ in codec.struct_codec(schema.EffectsGroup).fields]
    assert fields == ["account", "account_sequence", "effects"]
    assert set(schema.EFFECTS_INFO.arms.values()) == {schema.EffectsGroup, schema.EffectsGroupHash}


def test_status_codes() -> None:
    assert {code.name: int(code) for code in StatusCode} == SPEC_STATUS_CODES


def test_order_side_and_time_in_force() -> None:
    assert {m.name: int(m) for m in schema.OrderSide} == {"SELL": 1, "BUY": 2}
    assert {m.name: int(m) for m in schema.TimeInForce} == {
        "GOOD_TILL_EXPIRE": 0,
        "IMMEDIATE_OR_CANCEL": 1,
        "FILL_OR_KILL": 2,
        "POST_ONLY": 3,
    }


def test_order_batch_items() -> None:
    assert {m.name: int(m) for m in schema.BatchItemType} == {
        "ORDER": 0,
        "CANCEL": 1,
        "CANCEL_ALL": 2,
    }
    assert int(schema.MessageType.ORDER_BATCH_REQUEST) == 17
    assert schema.OrderBatchRequest in schema.CLIENT_REQUESTS


def test_node_states() -> None:
    assert sorted(int(state) for state in schema.NodeState) == [0, 1, 2, 3, 4, 10, 20]
    assert int(schema.NodeState.READY) == 2
    assert int(schema.NodeState.FAILED) == 10


def test_message_ids_and_client_request_fields() -> None:
    for arm in schema.MESSAGE.arms.values():
        fields = dict(codec.struct_codec(arm).fields)
        assert fields["message_id"] is codec.INT64, f"{arm.__name__}.message_id"
    for request in schema.CLIENT_REQUESTS:
        fields = dict(codec.struct_codec(request).fields)
        assert fields["nonce"] is codec.UINT64, f"{request.__name__}.nonce"
        assert isinstance(fields["account"], codec.FixedOpaque)
    order = dict(codec.struct_codec(schema.OrderRequest).fields)
    assert order["price"] is codec.DOUBLE


def test_every_union_arm_compiles() -> None:
    for union in (schema.MESSAGE, schema.QUANTUM_BODY, schema.EFFECT, schema.EFFECTS_INFO):
        assert len(set(union.arms.values())) == len(union.arms)
        for arm in union.arms.values():
            assert codec.struct_codec(arm).fields, f"{arm.__name__} has no fields"
