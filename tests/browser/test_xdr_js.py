"""The browser's codec, signing and finality checks agree with the Python reference.

Goal: a frame the browser sends is byte for byte the frame `constellation_client` would send,
and the browser reads and verifies what the nodes send exactly as the Python client does.

Method: the ES modules of `static/js/` run under Node (`js_harness.mjs`, one process per
test); Python produces the inputs with the real codec, keys and signature helpers, and
compares the answers. Random messages come from the schema's Hypothesis strategies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.envelopes import envelope_bytes, server_frame
from quanta.core.keys import KeyPair, decode_secret_seed
from quanta.core.signatures import payload_hash
from quanta.core.status import StatusCode
from quanta.core.testing import keypair
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataInfo,
    AccountDataRequest,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    EffectsGroup,
    EffectsGroupHash,
    NodeSignature,
    OrderCancellationRequest,
    OrderRequest,
    PayloadProof,
    PaymentRequest,
    QuantumInfoItem,
    QuantumInfoRequest,
    QuantumResultMessage,
    QueryOrder,
    ResultMessage,
    WithdrawalRequest,
)
from quanta.tests.strategies import messages

# Any 32 bytes do as the constellation these frames belong to.
CONSTELLATION_ID = hashlib.sha256(b"test constellation").digest()
HARNESS = Path(__file__).with_name("js_harness.mjs")
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (v20+) is needed to run the JS modules")


def run_js(job: str, args: dict[str, Any]) -> Any:
    """Runs one harness job under Node and returns its JSON answer."""
    assert NODE is not None
    completed = subprocess.run(
        [NODE, str(HARNESS)],
        input=json.dumps({"job": job, "args": args}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def matches(js: Any, value: Any) -> bool:
    """Tells whether the harness's JSON form of a decoded value equals a Python schema value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            isinstance(js, dict)
            and js.get("_type") == type(value).__name__
            and all(
                matches(js.get(f.name), getattr(value, f.name)) for f in dataclasses.fields(value)
            )
        )
    if isinstance(value, bytes):
        return js == {"$hex": value.hex()}
    if isinstance(value, tuple):
        return isinstance(js, list) and len(js) == len(value) and all(map(matches, js, value))
    if isinstance(value, float):
        # JSON carries the shortest text of the double; the re-encoded bytes compare its bits.
        return js is None if not math.isfinite(value) else float(js) == value
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return js == value
    if isinstance(js, dict) and "$big" in js:
        return int(js["$big"]) == value
    return isinstance(js, int) and js == int(value)


@settings(
    max_examples=3,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(messages(), min_size=25, max_size=25))
def test_js_decodes_and_reencodes_random_messages_identically(batch: list[Any]) -> None:
    """Every message decodes to the same fields in JS and re-encodes to the same bytes."""
    vectors = [{"type": "Message", "hex": encode(m, MESSAGE).hex()} for m in batch]
    answers = run_js("roundTrip", {"vectors": vectors})
    for message, vector, answer in zip(batch, vectors, answers, strict=True):
        assert "error" not in answer, (answer, message)
        assert answer["hex"] == vector["hex"]
        assert matches(answer["value"], message), message


def test_js_refuses_what_the_python_codec_refuses() -> None:
    """Trailing bytes, non-zero padding, bad booleans and unknown arms are refused."""
    order = OrderRequest(1, bytes(32), 2, "XLM", Side.SELL, 3, 1.5, TimeInForce.GOOD_TILL_EXPIRE)
    good = encode(order, MESSAGE)
    asset_padding = 4 + 8 + 32 + 8 + 4 + 3  # discriminant, id, account, nonce, length, "XLM"
    bad_padding = good[:asset_padding] + b"\x01" + good[asset_padding + 1 :]
    bad_bool = encode(AccountDataRequest(1, bytes(32), 2), MESSAGE)
    vectors = [
        {"type": "Message", "hex": (good + b"\x00\x00\x00\x00").hex()},
        {"type": "Message", "hex": bad_padding.hex()},
        {"type": "Message", "hex": (b"\x00\x00\x03\xe7" + good[4:]).hex()},
        {"type": "Message", "hex": good[:-4].hex()},
        {"type": "QuantumInfoResponse", "hex": "00" * 3},
        {"type": "Message", "hex": bad_bool.hex()},
    ]
    answers = run_js("rejects", {"vectors": vectors})
    assert answers[:5] == ["XdrError"] * 5
    assert answers[5] == "accepted"


def _big(value: int) -> dict[str, str]:
    return {"$big": str(value)}


def test_browser_frames_equal_python_frames_byte_for_byte() -> None:
    """The browser's signed request frames are exactly the envelopes of the spec: the message,
    the key, and its signature of the constellation-bound message digest."""
    trader, other = keypair(7), keypair(8)
    headers = [(1000 + i, 5_000_000 + i) for i in range(5)]
    expected = [
        OrderRequest(1000, trader.public_key, 5_000_000, "XLM", Side.BUY, 25_000_000, 0.125, 1),
        PaymentRequest(1001, trader.public_key, 5_000_001, "USD", 10, other.public_key),
        OrderCancellationRequest(1002, trader.public_key, 5_000_002, 77),
        WithdrawalRequest(1003, trader.public_key, 5_000_003, "local-vault", "USD", 5, "dest", 1),
        AccountDataRequest(1004, trader.public_key, 5_000_004),
        QuantumInfoRequest(901, trader.public_key, 0, QueryOrder.DESC, 50),
    ]
    calls = [
        ["placeOrder", ["XLM", 2, _big(25_000_000), 0.125, 1]],
        ["pay", [other.public_key_strkey, "USD", _big(10)]],
        ["cancelOrder", [_big(77)]],
        ["withdraw", ["local-vault", "USD", _big(5), "dest", _big(1)]],
        ["accountData", []],
        ["history", [50]],
    ]
    header = [
        {"message_id": _big(i), "account": {"$hex": trader.public_key.hex()}, "nonce": _big(n)}
        for i, n in headers
    ]
    answer = run_js(
        "frames",
        {
            "seed": decode_secret_seed(trader.secret).hex(),
            "header": header,
            "calls": calls,
            "nextMessageId": "900",
            "constellationId": CONSTELLATION_ID.hex(),
        },
    )
    assert answer["address"] == trader.public_key_strkey
    assert answer["secret"] == trader.secret
    sealed = [
        envelope_bytes(encode(message, MESSAGE), trader, CONSTELLATION_ID).hex()
        for message in expected
    ]
    assert answer["sent"] == sealed


def test_js_strkeys_match_python_and_reject_typos() -> None:
    """Public keys encode like Python's strkeys; a changed character fails the checksum."""
    keys = [keypair(i) for i in range(1, 4)] + [KeyPair.random()]
    text = keys[0].public_key_strkey
    typo = text[:10] + ("A" if text[10] != "A" else "B") + text[11:]
    answer = run_js(
        "strkeys",
        {"raw": [k.public_key.hex() for k in keys], "strkeys": [text, typo, keys[1].secret]},
    )
    assert answer["encoded"] == [k.public_key_strkey for k in keys]
    assert answer["decoded"][0] == keys[0].public_key.hex()
    assert "checksum" in answer["decoded"][1]
    assert "not a public key" in answer["decoded"][2]


def _result_message(signers: list[int], tamper: bool = False) -> tuple[QuantumResultMessage, bytes]:
    """Returns a quantum result signed by the given auditor indexes, and its effects hash."""
    group = EffectsGroup(5, 1, (BalanceUpdateEffect("USD", BalanceUpdateSign.PLUS, 10),))
    other = EffectsGroupHash(6, bytes(range(32)))
    own_hash = hashlib.sha256(encode(group)).digest()
    effects_hash = hashlib.sha256(own_hash + other.hash).digest()
    quantum_hash = bytes([9]) * 32
    digest = payload_hash(CONSTELLATION_ID, 42, quantum_hash, effects_hash)
    signatures = tuple(NodeSignature(i, keypair(i).sign(digest)) for i in signers)
    claimed = bytes(32) if tamper else digest
    message = QuantumResultMessage(
        3,
        StatusCode.SUCCESS,
        "",
        42,
        quantum_hash,
        PayloadProof(claimed, signatures),
        (group, other),
        None,
    )
    return message, effects_hash


def test_js_counts_verified_signatures_like_the_python_client() -> None:
    """Alpha alone is acknowledged, alpha + one auditor of three is final, junk is ignored,
    and a tampered payload hash verifies nothing."""
    auditors = [keypair(i) for i in range(3)]
    acknowledged, _ = _result_message([0])
    final, effects_hash = _result_message([0, 2])
    tampered, _ = _result_message([0, 1, 2], tamper=True)
    forged = dataclasses.replace(
        final,
        payload_proof=PayloadProof(
            final.payload_proof.payload_hash,
            (
                *final.payload_proof.signatures,
                NodeSignature(1, bytes(64)),
                NodeSignature(0, bytes(64)),
            ),
        ),
    )
    group_hashes = tuple(
        info
        if isinstance(info, EffectsGroupHash)
        else EffectsGroupHash(info.account, hashlib.sha256(encode(info)).digest())
        for info in final.effects
    )
    item = QuantumInfoItem(
        42,
        final.quantum_hash,
        effects_hash,
        1,
        final.effects[0],
        final.payload_proof.signatures,
        group_hashes=group_hashes,
    )
    own = final.effects[0]
    assert isinstance(own, EffectsGroup)
    # The same signed item with its own group made up: the page must not count it.
    made_up = dataclasses.replace(item, effects=dataclasses.replace(own, account_sequence=99))
    constellation = {
        "auditorKeys": [{"$hex": k.public_key.hex()} for k in auditors],
        "alphaIndex": 0,
        "constellationId": {"$hex": CONSTELLATION_ID.hex()},
    }
    results = [encode(m, MESSAGE).hex() for m in (acknowledged, final, tampered, forged)]
    answer = run_js(
        "verify",
        {
            "constellation": constellation,
            "results": results,
            "items": [encode(item).hex(), encode(made_up).hex()],
        },
    )
    checks = answer["results"]
    assert checks[0] == {
        "payloadValid": True,
        "validCount": 1,
        "alphaSigned": True,
        "isFinal": False,
    }
    assert checks[1] == {
        "payloadValid": True,
        "validCount": 2,
        "alphaSigned": True,
        "isFinal": True,
    }
    assert checks[2]["payloadValid"] is False and checks[2]["validCount"] == 0
    assert checks[3]["validCount"] == 2 and checks[3]["isFinal"] is True
    assert answer["history"] == [
        {"validCount": 2, "alphaSigned": True, "isFinal": True, "quantum": None},
        {"validCount": 0, "alphaSigned": False, "isFinal": False, "quantum": None},
    ]


def test_js_opens_server_frames_like_the_python_client() -> None:
    """Quantum results may come unsigned, anything else must be signed by alpha over the
    constellation-bound digest (a signature of another constellation or of the bare message
    is invalid); a tail that is neither nothing nor a 96-byte signature is refused."""
    alpha, other = keypair(0), keypair(1)
    result, _ = _result_message([0])
    refusal = ResultMessage(4, StatusCode.FORBIDDEN, "insufficient funds")
    account_data = AccountDataInfo(1, 2, (), (), bytes(32))
    with_account_data = dataclasses.replace(result, account_data=account_data)
    signless = server_frame(encode(result, MESSAGE), alpha, CONSTELLATION_ID)
    refusal_body = encode(refusal, MESSAGE)
    signed = server_frame(refusal_body, alpha, CONSTELLATION_ID)
    tampered = bytearray(signed)
    tampered[-1] ^= 1
    unbound = refusal_body + alpha.public_key + alpha.sign(hashlib.sha256(refusal_body).digest())
    elsewhere = envelope_bytes(refusal_body, alpha, hashlib.sha256(b"another").digest())
    frames = [
        signless,
        signed,
        envelope_bytes(encode(result, MESSAGE), alpha, CONSTELLATION_ID),
        encode(refusal, MESSAGE),
        envelope_bytes(refusal_body, other, CONSTELLATION_ID),
        bytes(tampered),
        signed[:-1],
        signless + signed[-95:],
        b"\x00\x01",
        encode(with_account_data, MESSAGE),
        unbound,
        elsewhere,
    ]
    answers = run_js(
        "openFrames",
        {
            "alphaKey": alpha.public_key.hex(),
            "constellationId": CONSTELLATION_ID.hex(),
            "frames": [f.hex() for f in frames],
        },
    )
    assert signless == encode(result, MESSAGE)
    assert matches(answers[0]["value"], result)
    assert matches(answers[1]["value"], refusal)
    assert matches(answers[2]["value"], result)
    errors = [answer.get("error", "") for answer in answers[3:]]
    assert "unsigned ResultMessage" in errors[0]
    assert "not signed by alpha" in errors[1]
    assert "invalid signature" in errors[2]
    assert "95 bytes after the message" in errors[3]
    assert "95 bytes after the message" in errors[4]
    assert "malformed frame" in errors[5]
    assert "unsigned QuantumResultMessage" in errors[6]  # Account data must come signed.
    assert "invalid signature" in errors[7]  # The old, unbound digest.
    assert "invalid signature" in errors[8]  # Another constellation's.
