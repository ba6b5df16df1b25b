"""Goal: a history item names its counterparty from its quantum, and only from a quantum that
matches the item's signed quantum hash.

Method: real quanta (a payment request in its signed envelope, a deposit quantum, a
withdrawal quantum) encoded and hashed as the nodes do (`quanta.core.hashing.quantum_hash`),
their items signed by real auditor keys over the payload hash; then the quantum is tampered
with (a byte, another destination, another apex) and the item must be refused like a bad
signature, with no counterparty read from it.
"""

from __future__ import annotations

import dataclasses

from constellation_client.counterparty import Counterparty, item_counterparty, proven_counterparty
from constellation_client.tests.builders import (
    CONSTELLATION_ID,
    auditors,
    group_hashes_of,
    other_group,
    own_group,
    trusted,
)
from constellation_client.verify import Finality, verify_history_item
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.hashing import effects_proof, quantum_hash, sha256
from quanta.core.keys import encode_public_key
from quanta.core.signatures import payload_hash
from quanta.core.testing import keypair
from quanta.core.xdr.codec import decode, encode
from quanta.core.xdr.schema import (
    DepositItem,
    DepositQuantum,
    MessageEnvelope,
    NodeSignature,
    OrderRequest,
    PaymentRequest,
    PaymentResult,
    Quantum,
    QuantumBody,
    QuantumInfoItem,
    RequestQuantum,
    Signature,
    WithdrawalQuantum,
    WithdrawalRequest,
)

PAIRS = auditors(3)
TRUSTED = trusted(PAIRS)
ALICE = keypair(11)
BOB = keypair(12)
CAROL = keypair(13)
APEX = 77
TIMESTAMP = 1_796_148_909_644
GROUP = own_group()
GROUP_HASHES = group_hashes_of(GROUP, other_group())
EFFECTS_PROOF = effects_proof(entry.hash for entry in GROUP_HASHES)


def _envelope(message: PaymentRequest | WithdrawalRequest | OrderRequest) -> MessageEnvelope:
    # The client's signature is the nodes' business (checked before execution); the item
    # proves the quantum through its hash, so any 64 bytes do here.
    return MessageEnvelope(message, Signature(message.account, bytes(64)))


def _item(body: QuantumBody, *, apex: int = APEX) -> QuantumInfoItem:
    """Returns a final history item (2 of 3 signatures, alpha's among them) carrying `body`."""
    quantum = Quantum(apex, sha256(b"previous"), EFFECTS_PROOF, TIMESTAMP, body)
    hashed = quantum_hash(quantum)
    digest = payload_hash(CONSTELLATION_ID, apex, hashed, EFFECTS_PROOF)
    signatures = tuple(NodeSignature(i, PAIRS[i].sign(digest)) for i in (0, 1))
    return QuantumInfoItem(
        apex, hashed, EFFECTS_PROOF, TIMESTAMP, GROUP, signatures, encode(quantum), GROUP_HASHES
    )


def _payment() -> QuantumInfoItem:
    request = PaymentRequest(1, ALICE.public_key, 5, "USD", 10_000_000, BOB.public_key)
    return _item(RequestQuantum(_envelope(request)))


def test_a_payment_names_the_payee_to_the_payer_and_the_payer_to_the_payee() -> None:
    item = _payment()
    assert verify_history_item(item, TRUSTED) == Finality(True, 2)
    bob, alice = encode_public_key(BOB.public_key), encode_public_key(ALICE.public_key)
    sent = Counterparty("payment sent", f"paid to {bob}", bob)
    assert proven_counterparty(item, TRUSTED, ALICE.public_key) == sent
    received = Counterparty("payment received", f"paid by {alice}", alice)
    assert proven_counterparty(item, TRUSTED, BOB.public_key) == received


def test_a_deposit_names_its_provider_and_the_account_s_own_transactions() -> None:
    mine = DepositItem(PaymentResult.SUCCESS, bytes.fromhex("ab" * 32), "XLM", 5, BOB.public_key)
    theirs = DepositItem(
        PaymentResult.SUCCESS, bytes.fromhex("cd" * 32), "XLM", 7, CAROL.public_key
    )
    item = _item(DepositQuantum("stellar-main", "cursor-9", (mine, theirs), ()))
    other = proven_counterparty(item, TRUSTED, BOB.public_key)
    assert other is not None
    assert (other.kind, other.provider, other.external) == ("deposit", "stellar-main", "ab" * 32)
    assert other.text == f"deposit via provider stellar-main (transaction {'ab' * 8}…)"


def test_a_withdrawal_names_its_provider_and_external_destination() -> None:
    request = WithdrawalRequest(1, ALICE.public_key, 6, "stellar-main", "XLM", 9, "GEXTERNAL", 0)
    item = _item(WithdrawalQuantum(_envelope(request), b"the transaction"))
    other = proven_counterparty(item, TRUSTED, ALICE.public_key)
    assert other == Counterparty(
        "withdrawal",
        "withdrawal via provider stellar-main to GEXTERNAL",
        None,
        "stellar-main",
        "GEXTERNAL",
    )


def test_an_order_has_no_counterparty_to_read() -> None:
    request = OrderRequest(
        1, ALICE.public_key, 7, "XLM", Side.BUY, 10_000_000, 0.2, TimeInForce.GOOD_TILL_EXPIRE
    )
    item = _item(RequestQuantum(_envelope(request)))
    assert verify_history_item(item, TRUSTED).is_final
    assert proven_counterparty(item, TRUSTED, ALICE.public_key) is None


def test_an_item_without_its_quantum_still_verifies_but_names_nobody() -> None:
    item = dataclasses.replace(_payment(), quantum=None)
    assert verify_history_item(item, TRUSTED) == Finality(True, 2)
    assert proven_counterparty(item, TRUSTED, ALICE.public_key) is None


def test_a_tampered_quantum_makes_the_item_unverified() -> None:
    """Another payee in the same item (or one flipped byte) no longer hashes to the signed
    quantum hash: the item is refused and nobody is named."""
    item = _payment()
    forged_request = PaymentRequest(1, ALICE.public_key, 5, "USD", 10_000_000, CAROL.public_key)
    forged_body = _item(RequestQuantum(_envelope(forged_request))).quantum
    flipped = bytearray(item.quantum or b"")
    flipped[-1] ^= 1
    for quantum in (forged_body, bytes(flipped), b"", b"\x00" * 8):
        tampered = dataclasses.replace(item, quantum=quantum)
        assert verify_history_item(tampered, TRUSTED) == Finality(False, 0)
        assert proven_counterparty(tampered, TRUSTED, ALICE.public_key) is None
        assert item_counterparty(tampered, ALICE.public_key) is None


def test_a_quantum_of_another_apex_or_time_is_refused_even_with_a_matching_hash() -> None:
    """A node could hand out a real quantum (its true hash) signed for another apex: the
    quantum must name the item's apex, effects proof and timestamp."""
    item = _payment()
    elsewhere = _item(item_body(item), apex=APEX + 1)
    moved = dataclasses.replace(
        item, quantum=elsewhere.quantum, quantum_hash=elsewhere.quantum_hash
    )
    assert verify_history_item(moved, TRUSTED) == Finality(False, 0)
    assert verify_history_item(dataclasses.replace(item, timestamp=TIMESTAMP + 1), TRUSTED) == (
        Finality(False, 0)
    )


def item_body(item: QuantumInfoItem) -> QuantumBody:
    body: QuantumBody = decode(Quantum, item.quantum or b"").body
    return body
