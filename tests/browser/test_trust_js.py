"""The browser trusts nothing the node says: its digests, its settings-chain check, and how it
binds results to requests (issue 16).

Goal: the page's digests are the Python ones (`quanta.core.signatures`) and the spec's;
the settings chain verifies forward from the pinned id and any break is a specific refusal;
a quantum result completes a request only through a proven NonceUpdate of that request's
nonce, whatever its unsigned status and message id say; a rejection alpha did not sign is
"unverified"; a replayed result is ignored and counted, a sequence jump is reported.

Method: the ES modules run under Node (`js_harness.mjs`, as in test_xdr_js.py); Python builds
the chains and the node's frames with the real codec and keys, signing with the rule written
out in `tests/browser/bound.py`, and checks the answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from exchange.core.orderbook import Side
from quanta.core import signatures
from quanta.core.envelopes import envelope_bytes
from quanta.core.keys import decode_secret_seed
from quanta.core.status import StatusCode
from quanta.core.testing import default_settings, keypair
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AccountDataInfo,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    ConstellationSettings,
    ConstellationUpdate,
    EffectsGroup,
    EffectsGroupHash,
    HandshakeRequest,
    HandshakeResponse,
    NodeSignature,
    NonceUpdateEffect,
    PayloadProof,
    QuantumInfoItem,
    QuantumInfoResponse,
    QuantumResultMessage,
    ResultMessage,
)
from tests.browser import bound
from tests.browser.test_xdr_js import pytestmark as node_needed
from tests.browser.test_xdr_js import run_js

pytestmark = node_needed

AUDITORS = [keypair(i) for i in range(3)]
GENESIS = default_settings(AUDITORS)
CID = bound.constellation_id(GENESIS)


def _big(value: int) -> dict[str, str]:
    return {"$big": str(value)}


def _hex(value: bytes) -> dict[str, str]:
    return {"$hex": value.hex()}


def test_js_digests_equal_the_python_and_the_spec_ones() -> None:
    """boundDigest, messageDigest, payloadHash, updateDigest and constellationIdOf give the
    bytes of `quanta.core.signatures` and of the rule written out with hashlib."""
    other = hashlib.sha256(b"other").digest()
    update = ConstellationUpdate(7, dataclasses.replace(GENESIS, version=2))
    body = encode(update, MESSAGE)
    cases = [
        ("bound", [_hex(CID), 1, _hex(b"abc")], bound.bound(CID, 1, b"abc")),
        ("bound", [_hex(other), 3, _hex(b"")], bound.bound(other, 3, b"")),
        ("message", [_hex(CID), _hex(body)], signatures.message_digest(CID, body)),
        (
            "payload",
            [_hex(CID), _big(2**64 - 1), _hex(bytes(32)), _hex(bytes(range(32)))],
            signatures.payload_hash(CID, 2**64 - 1, bytes(32), bytes(range(32))),
        ),
        ("update", [_hex(other), _hex(body)], signatures.update_digest(other, update)),
        ("id", [_hex(encode(GENESIS))], signatures.constellation_id_of(GENESIS)),
    ]
    spec = [
        bound.bound(CID, 1, b"abc"),
        bound.bound(other, 3, b""),
        bound.bound(CID, bound.MESSAGE_DOMAIN, body),
        bound.payload(CID, 2**64 - 1, bytes(32), bytes(range(32))),
        bound.bound(other, bound.SETTINGS_DOMAIN, body),
        CID,
    ]
    answer = run_js("digests", {"cases": [{"kind": k, "args": a} for k, a, _ in cases]})
    assert answer["answers"] == [expected.hex() for _, _, expected in cases]
    assert answer["answers"] == [digest.hex() for digest in spec]
    assert answer["domains"] == {
        name: int(value) for name, value in signatures.Domain.__members__.items()
    }


def _settings(version: int, auditors: list[int], alpha: int | None = None) -> ConstellationSettings:
    keys = [keypair(i) for i in auditors]
    settings = default_settings(keys, version=version)
    if alpha is not None:
        settings = dataclasses.replace(settings, alpha=keypair(alpha).public_key)
    return settings


def _chain() -> list[dict[str, object]]:
    """Genesis (0, 1, 2), then 3 replaces 2 (signed by 0, 1), then alpha moves to 1 and 4
    replaces 0 (signed by 1, 3 of version 2)."""
    v2 = _settings(2, [0, 1, 3])
    v3 = _settings(3, [1, 3, 4], alpha=1)
    return [
        bound.update_entry(GENESIS, AUDITORS[:2]),
        bound.update_entry(v2, [keypair(0), keypair(1)], CID),
        bound.update_entry(v3, [keypair(1), keypair(3)], CID),
    ]


def _failure(answer: dict[str, Any], reason: str, text: str) -> None:
    assert answer.get("reason") == reason, answer
    assert text in answer["message"], answer


def test_js_verifies_the_settings_chain_forward_from_the_pin() -> None:
    """The head's keys are trusted: alpha 1 and auditors 1, 3, 4 of version 3. Without a pin
    the genesis served is adopted (trust on first use) and its id is the one Python gives."""
    good = _chain()
    answers = run_js(
        "chains", {"cases": [{"pin": CID.hex(), "entries": good}, {"pin": None, "entries": good}]}
    )
    for answer in answers:
        assert answer["id"] == CID.hex() == signatures.constellation_id_of(GENESIS).hex()
        assert answer["version"] == _big(3)
        assert answer["alphaKey"] == _hex(keypair(1).public_key)
        assert answer["alphaIndex"] == 0
        assert answer["auditorKeys"] == [_hex(keypair(i).public_key) for i in (1, 3, 4)]
        assert answer["quoteAsset"] == "USD"


def test_js_refuses_every_broken_chain_and_says_why() -> None:
    """Another genesis, a gap, a minority, signatures by the new auditors instead of the
    previous ones, the old unbound digest, another constellation's digest, a repeated
    signer, a genesis that is not version 1 and a mislabelled entry are all refused."""
    good = _chain()
    other = _settings(1, [5, 6, 7])
    other_id = bound.constellation_id(other)
    v2 = _settings(2, [0, 1, 3])
    v2_body = encode(ConstellationUpdate(2, v2), MESSAGE)
    cases = [
        (
            CID,
            [bound.update_entry(other, [keypair(5), keypair(6)])],
            "genesis-mismatch",
            other_id.hex(),
        ),
        (CID, [good[0], good[2]], "broken-chain", "expected version 2, the node served version 3"),
        (
            CID,
            [good[0], bound.update_entry(v2, [keypair(0)], CID)],
            "broken-chain",
            "by 1 of the 3 auditors of version 1; 2 are required",
        ),
        (
            CID,
            [good[0], bound.update_entry(v2, [keypair(0), keypair(3)], CID)],
            "broken-chain",
            "by 1 of the 3",
        ),
        (
            CID,
            [
                good[0],
                bound.update_entry(v2, AUDITORS, CID, digest=hashlib.sha256(v2_body).digest()),
            ],
            "broken-chain",
            "by 0 of the 3",
        ),
        (
            CID,
            [good[0], bound.update_entry(v2, AUDITORS, other_id)],
            "broken-chain",
            "by 0 of the 3",
        ),
        (
            CID,
            [bound.update_entry(GENESIS, [AUDITORS[0], AUDITORS[0]])],
            "broken-chain",
            "by 1 of the 3 auditors it lists",
        ),
        (
            None,
            [bound.update_entry(_settings(2, [0, 1, 2]), AUDITORS)],
            "broken-chain",
            "expected the genesis (version 1)",
        ),
        (
            CID,
            [bound.update_entry(GENESIS, AUDITORS, version=4)],
            "broken-chain",
            "listed as version 4",
        ),
        (
            CID,
            [{"version": 1, "apex": 1, "envelope": "!!"}],
            "broken-chain",
            "not a signed settings update",
        ),
        (CID, [], "no-chain", "serves no settings at all"),
    ]
    answers = run_js(
        "chains",
        {"cases": [{"pin": pin and pin.hex(), "entries": entries} for pin, entries, _, _ in cases]},
    )
    for (_, _, reason, text), answer in zip(cases, answers, strict=True):
        _failure(answer, reason, text)
    assert answers[0]["expected"] == CID.hex() and answers[0]["served"] == other_id.hex()
    assert answers[1]["expected"] == CID.hex()


def test_js_pages_the_chain_and_stops_on_a_bad_page() -> None:
    """Pages are asked with after=<last version>; a later refresh asks only what follows the
    head. A node that says more follow but sends none, or that claims another id, is refused."""
    good = _chain()
    pages = [
        {"constellation_id": CID.hex(), "updates": good[:2], "more": True},
        {"constellation_id": CID.hex(), "updates": good[2:], "more": False},
        {"constellation_id": CID.hex(), "updates": [], "more": False},
    ]
    answer = run_js("chainFetch", {"pin": CID.hex(), "pages": pages, "refreshes": 2})
    path = "/api/constellation/settings-chain"
    assert answer["asked"] == [f"{path}?after=0", f"{path}?after=2", f"{path}?after=3"]
    assert [a["version"] for a in answer["answers"]] == [_big(3), _big(3)]

    endless = [{"constellation_id": CID.hex(), "updates": [], "more": True}]
    stuck = run_js("chainFetch", {"pin": CID.hex(), "pages": endless, "refreshes": 1})
    _failure(stuck["answers"][0], "broken-chain", "an empty page says more updates follow")
    liar = [{"constellation_id": "ab" * 32, "updates": good, "more": False}]
    lied = run_js("chainFetch", {"pin": CID.hex(), "pages": liar, "refreshes": 1})
    _failure(lied["answers"][0], "genesis-mismatch", f"constellation {CID.hex()} was expected")


def test_js_reads_the_pin_from_the_link() -> None:
    """?constellation= and #constellation= both pin (upper case is read as lower case); a
    malformed id is a refusal, no id is no pin."""
    urls = [
        f"http://node.test/?constellation={CID.hex()}",
        f"http://node.test/#constellation={CID.hex().upper()}",
        "http://node.test/",
        "http://node.test/?constellation=1234",
    ]
    answers = run_js("pins", {"urls": urls})
    assert answers[:3] == [CID.hex(), CID.hex(), None]
    _failure(answers[3], "bad-pin", "64 hex characters")


TRADER = keypair(20)
ACCOUNT = 5
OTHER_GROUP = EffectsGroupHash(9, bytes(range(32)))


def _result(
    apex: int,
    sequence: int,
    effects: tuple[Any, ...],
    signers: tuple[int, ...] = (0,),
    *,
    message_id: int = 0,
    status: StatusCode = StatusCode.SUCCESS,
    account: int = ACCOUNT,
    tamper: bool = False,
    account_data: AccountDataInfo | None = None,
) -> QuantumResultMessage:
    """A quantum result for `account` with its own group in full, signed by `signers`."""
    group = EffectsGroup(account, sequence, effects)
    effects_hash = hashlib.sha256(
        hashlib.sha256(encode(group)).digest() + OTHER_GROUP.hash
    ).digest()
    quantum_hash = hashlib.sha256(apex.to_bytes(8, "big")).digest()
    digest = bound.payload(CID, apex, quantum_hash, effects_hash)
    proof = PayloadProof(
        bytes(32) if tamper else digest,
        tuple(NodeSignature(i, AUDITORS[i].sign(digest)) for i in signers),
    )
    return QuantumResultMessage(
        message_id, status, "", apex, quantum_hash, proof, (group, OTHER_GROUP), account_data
    )


def _nonce(nonce: int) -> NonceUpdateEffect:
    return NonceUpdateEffect(nonce, nonce - 1)


def _session(
    calls: list[Any],
    headers: list[tuple[int, int]],
    frames: list[bytes],
    pages: list[dict[str, Any]] | None = None,
    gap_grace_ms: int = 0,
) -> dict[str, Any]:
    """Runs a client on the genesis chain: `calls`, then the node's `frames`; `pages` are
    what the node serves as its settings chain when the client asks (none: unreachable);
    a sequence jump is reported after `gap_grace_ms` if still open."""
    return run_js(
        "session",
        {
            "pages": pages or [],
            "gapGraceMs": gap_grace_ms,
            "seed": decode_secret_seed(TRADER.secret).hex(),
            "entries": [bound.update_entry(GENESIS, AUDITORS)],
            "accountId": str(ACCOUNT),
            "header": [
                {"message_id": _big(m), "account": _hex(TRADER.public_key), "nonce": _big(n)}
                for m, n in headers
            ],
            "calls": calls,
            "frames": [frame.hex() for frame in frames],
        },
    )


def test_js_results_complete_a_request_only_by_its_proven_nonce() -> None:
    """A result whose unsigned status says 500 and whose id names another request completes
    the request whose nonce it proves; one proving another nonce is a notification; a
    refusal without alpha's valid signature is "unverified", a signed one a refusal; a result
    whose proof fails is ignored; the finalization updates the executed request."""
    alpha = AUDITORS[0]
    calls = [
        ["pay", [TRADER.public_key_strkey, "USD", _big(10)]],
        ["placeOrder", ["XLM", int(Side.SELL), _big(5), 2.0, 0]],
        ["accountData", []],
        ["pay", [TRADER.public_key_strkey, "USD", _big(11)]],
    ]
    headers = [(11, 1000), (12, 1001), (13, 1002), (14, 1003)]
    pay = (_nonce(1000), BalanceUpdateEffect("USD", BalanceUpdateSign.MINUS, 10))
    frames = [
        encode(_result(50, 1, pay, message_id=12, status=StatusCode.INTERNAL_ERROR), MESSAGE),
        encode(_result(51, 2, (_nonce(999),), message_id=12), MESSAGE),
        encode(ResultMessage(13, StatusCode.FORBIDDEN, "forbidden"), MESSAGE),
        bound.frame(ResultMessage(14, StatusCode.BAD_REQUEST, "insufficient"), alpha, CID),
        bound.frame(ResultMessage(12, StatusCode.BAD_REQUEST, "no"), AUDITORS[1], CID),
        encode(_result(52, 3, (_nonce(1001),), tamper=True), MESSAGE),
        encode(_result(50, 1, pay, (0, 2)), MESSAGE),
    ]
    answer = _session(calls, headers, frames)
    paid, order, data, refused = (r["value"] for r in answer["results"])
    assert [r["state"] for r in answer["results"]] == ["resolved"] * 4
    assert paid["kind"] == "executed" and paid["ok"] is True and paid["apex"] == _big(50)
    assert (
        paid["finalized"] is True and paid["signaturesVerified"] == 2 and paid["auditorCount"] == 3
    )
    assert order["kind"] == "unverified" and "not validly signed by alpha" in order["description"]
    assert data["kind"] == "unverified" and "unsigned ResultMessage" in data["description"]
    assert refused["kind"] == "rejected" and refused["status"] == 400
    assert refused["description"] == "insufficient"
    notifications = [e for e in answer["events"] if e["type"] == "notification"]
    assert [n["result"]["apex"] for n in notifications] == [_big(51)]
    assert answer["stats"] == {
        "replays": 0,
        "repeats": 0,
        "unproven": 1,
        "unverified": 2,
        "jumps": 0,
    }
    finals = [e for e in answer["events"] if e["type"] == "result" and e["result"]["finalized"]]
    assert [e["result"]["apex"] for e in finals] == [_big(50)]


def test_js_ignores_replays_and_reports_sequence_jumps() -> None:
    """After the verified history (last final sequence 3): a result at sequence 2 is a replay,
    a repeat of a final one is ignored, a second quantum claiming a taken sequence is a
    replay, a jump from 4 to 7 is reported, and a result of another account is ignored."""
    alpha = AUDITORS[0]
    history_group = EffectsGroup(ACCOUNT, 3, (_nonce(900),))
    effects_hash = hashlib.sha256(hashlib.sha256(encode(history_group)).digest()).digest()
    quantum_hash = bytes([7]) * 32
    digest = bound.payload(CID, 40, quantum_hash, effects_hash)
    item = QuantumInfoItem(
        40,
        quantum_hash,
        effects_hash,
        1,
        history_group,
        tuple(NodeSignature(i, AUDITORS[i].sign(digest)) for i in (0, 1)),
        group_hashes=(EffectsGroupHash(ACCOUNT, hashlib.sha256(encode(history_group)).digest()),),
    )
    deposit = (BalanceUpdateEffect("USD", BalanceUpdateSign.PLUS, 5),)
    frames = [
        bound.frame(
            QuantumInfoResponse(21, StatusCode.SUCCESS, "", (item,), None, None), alpha, CID
        ),
        encode(_result(45, 2, deposit, (0, 1)), MESSAGE),
        encode(_result(60, 4, deposit, (0, 1)), MESSAGE),
        encode(_result(60, 4, deposit, (0, 1, 2)), MESSAGE),
        encode(_result(61, 4, deposit, (0, 1)), MESSAGE),
        encode(_result(70, 7, deposit, (0, 1)), MESSAGE),
        encode(_result(65, 5, deposit, (0, 1)), MESSAGE),
        encode(_result(80, 1, deposit, (0, 1), account=6), MESSAGE),
    ]
    answer = _session([["history", [50]]], [(21, 0)], frames)
    assert answer["results"][0] == {"state": "resolved", "value": {"items": 1}}
    notifications = [e["result"]["apex"] for e in answer["events"] if e["type"] == "notification"]
    assert notifications == [_big(60), _big(70), _big(65)]
    jumps = [e for e in answer["events"] if e["type"] == "sequence"]
    assert jumps == [
        {
            "type": "sequence",
            "account": _big(ACCOUNT),
            "from": _big(4),
            "to": _big(7),
            "missed": _big(2),
        }
    ]
    logs = [e["text"] for e in answer["events"] if e["type"] == "trust-log"]
    assert any("apex 45, account sequence 2 (at or below 3" in text for text in logs), logs
    assert any("apex 61, account sequence 4 (already taken by apex 60)" in text for text in logs), (
        logs
    )
    assert answer["stats"] == {
        "replays": 2,
        "repeats": 1,
        "unproven": 1,
        "unverified": 0,
        "jumps": 1,
    }


def test_js_verifies_alphas_handshake_and_signs_its_answer_for_the_constellation() -> None:
    """A HandshakeRequest signed by alpha for this constellation is answered with a
    HandshakeResponse signed over the bound digest (the bytes Python's envelope gives); one
    signed over the old unbound digest stops the client for good."""
    alpha = AUDITORS[0]
    challenge = HandshakeRequest(1, bytes(range(32)))
    good = _session([], [(31, 0)], [bound.frame(challenge, alpha, CID)])
    expected = envelope_bytes(
        encode(HandshakeResponse(31, challenge.handshake_data), MESSAGE), TRADER, CID
    )
    assert good["sent"] == [expected.hex()]
    body = encode(challenge, MESSAGE)
    unbound = body + alpha.public_key + alpha.sign(hashlib.sha256(body).digest())
    bad = _session([], [(31, 0)], [unbound])
    refusals = [e for e in bad["events"] if e["type"] == "trust"]
    assert len(refusals) == 1 and refusals[0]["reason"] == "forged-frame"
    assert "invalid signature" in refusals[0]["message"]
    assert bad["sent"] == ["closed"]


def test_js_reports_no_jump_when_the_skipped_sequences_arrive_in_time() -> None:
    """An acknowledgement of one's own next request may overtake the finalization of an
    earlier quantum: sequence 3 before 2 is no jump once 2 arrives within the grace period,
    and neither is a replay."""
    deposit = (BalanceUpdateEffect("USD", BalanceUpdateSign.PLUS, 5),)
    frames = [
        encode(_result(10, 1, deposit, (0, 1)), MESSAGE),
        encode(_result(12, 3, (_nonce(77),)), MESSAGE),
        encode(_result(11, 2, deposit, (0, 1)), MESSAGE),
    ]
    answer = _session([], [], frames, gap_grace_ms=300)
    notifications = [e["result"]["apex"] for e in answer["events"] if e["type"] == "notification"]
    assert notifications == [_big(10), _big(12), _big(11)]
    assert not [e for e in answer["events"] if e["type"] == "sequence"]
    assert answer["stats"] == {
        "replays": 0,
        "repeats": 0,
        "unproven": 0,
        "unverified": 0,
        "jumps": 0,
    }


def test_js_follows_a_new_alpha_through_the_chain_and_refuses_an_unknown_signer() -> None:
    """A frame signed by another key than alpha's makes the client verify the chain forward
    once: if the new head names that key as alpha the frame is accepted, else it is a
    forged frame and the client stops."""
    v2 = _settings(2, [0, 1, 2], alpha=1)
    moved = {
        "constellation_id": CID.hex(),
        "updates": [bound.update_entry(v2, AUDITORS[:2], CID)],
        "more": False,
    }
    challenge = HandshakeRequest(1, bytes(range(32)))
    followed = _session([], [(31, 0)], [bound.frame(challenge, AUDITORS[1], CID)], [moved])
    assert followed["version"] == _big(2)
    assert len(followed["sent"]) == 1
    assert not [e for e in followed["events"] if e["type"] == "trust"]
    still = {"constellation_id": CID.hex(), "updates": [], "more": False}
    refused = _session([], [(31, 0)], [bound.frame(challenge, AUDITORS[1], CID)], [still])
    assert refused["version"] == _big(1)
    trust = [e for e in refused["events"] if e["type"] == "trust"]
    assert len(trust) == 1 and "not signed by alpha's key" in trust[0]["message"]
