"""The gateway's checks take only what is signed for this constellation.

Goal: a request or handshake answer signed for constellation A is refused by constellation B
even from a key both know (M8 and L3 in the security review: before, every digest was SHA-256
of the message alone, so a request replayed from a test constellation to another where the
key had a lower nonce executed, and a phishing node could relay a handshake). Method: the pure
checks, with frames signed by the core's own envelope rule under two ids; the engine's own
re-verification (what auditors run) is checked the same way.
"""

from __future__ import annotations

import pytest

from quanta.core.engine import verify_envelope
from quanta.core.envelopes import GatewayError, envelope_bytes
from quanta.core.gateway import check_handshake, check_request
from quanta.core.signatures import constellation_id_of
from quanta.core.status import StatusCode, Unauthorized
from quanta.core.testing import default_settings, keypair, sign_message
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import MESSAGE, HandshakeResponse, PaymentRequest

CLIENT = keypair(40)
A = constellation_id_of(default_settings([keypair(41), keypair(42), keypair(43)]))
B = constellation_id_of(default_settings([keypair(44), keypair(45), keypair(46)]))
CHALLENGE = bytes(range(32))


def _payment() -> PaymentRequest:
    return PaymentRequest(7, CLIENT.public_key, 1, "USD", 10, keypair(47).public_key)


def test_a_request_signed_for_a_is_taken_by_a_and_refused_by_b() -> None:
    frame = envelope_bytes(encode(_payment(), MESSAGE), CLIENT, A)
    assert check_request(frame, CLIENT.public_key, A).message == _payment()
    with pytest.raises(GatewayError) as refused:
        check_request(frame, CLIENT.public_key, B)
    assert refused.value.status == StatusCode.UNAUTHORIZED and refused.value.message_id == 7
    assert "another constellation" in str(refused.value)


def test_the_engine_refuses_a_request_signed_for_another_constellation() -> None:
    envelope = sign_message(_payment(), CLIENT, A)
    verify_envelope(envelope, A)
    with pytest.raises(Unauthorized, match="invalid signature"):
        verify_envelope(envelope, B)


def test_a_handshake_answer_relayed_from_another_constellation_fails() -> None:
    answer = encode(HandshakeResponse(1, CHALLENGE), MESSAGE)
    frame = envelope_bytes(answer, CLIENT, A)
    assert check_handshake(frame, CHALLENGE, A).signature.signer == CLIENT.public_key
    with pytest.raises(GatewayError) as refused:
        check_handshake(frame, CHALLENGE, B)
    assert refused.value.status == StatusCode.UNAUTHORIZED and refused.value.close
