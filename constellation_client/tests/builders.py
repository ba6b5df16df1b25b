"""Builders of signed quantum results for the client's tests (plain functions, real keys)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from constellation_client.wire import Constellation
from quanta.core.hashing import group_hash, sha256
from quanta.core.keys import KeyPair
from quanta.core.signatures import payload_hash
from quanta.core.status import StatusCode
from quanta.core.testing import keypair
from quanta.core.xdr.schema import (
    BalanceUpdateEffect,
    BalanceUpdateSign,
    EffectsGroup,
    EffectsGroupHash,
    NodeSignature,
    NonceUpdateEffect,
    PayloadProof,
    QuantumResultMessage,
)

APEX = 42
QUANTUM_HASH = sha256(b"the quantum")
CONSTELLATION_ID = sha256(b"the test constellation")
"""The id results and frames of these tests are bound to (no genesis needed for them)."""


def auditors(count: int = 3) -> list[KeyPair]:
    """Returns `count` deterministic auditor key pairs; alpha is the first."""
    return [keypair(index + 1) for index in range(count)]


def auditor_keys(pairs: Sequence[KeyPair]) -> list[bytes]:
    """Returns the raw public keys of `pairs`, in order."""
    return [pair.public_key for pair in pairs]


def trusted(pairs: Sequence[KeyPair], constellation_id: bytes = CONSTELLATION_ID) -> Constellation:
    """Returns the constellation of `pairs` (alpha first) as the client would trust it."""
    return Constellation.from_keys(auditor_keys(pairs), constellation_id=constellation_id)


def own_group(
    account: int = 7, amount: int = 5_000_000, *, nonce: int = 1001, sequence: int = 3
) -> EffectsGroup:
    """Returns the requesting account's full effects group: its request with `nonce` applied."""
    effects = (
        NonceUpdateEffect(nonce, nonce - 1),
        BalanceUpdateEffect("USD", BalanceUpdateSign.MINUS, amount),
    )
    return EffectsGroup(account, sequence, effects)


def other_group(account: int = 9, amount: int = 5_000_000) -> EffectsGroup:
    """Returns another account's group (the payment's destination)."""
    return EffectsGroup(account, 1, (BalanceUpdateEffect("USD", BalanceUpdateSign.PLUS, amount),))


def effects_infos() -> tuple[EffectsGroup | EffectsGroupHash, ...]:
    """Returns what the requester receives: its own group in full, the other one as a hash."""
    other = other_group()
    return own_group(), EffectsGroupHash(other.account, group_hash(other))


def signed_result(
    signers: Sequence[tuple[int, KeyPair]],
    *,
    apex: int = APEX,
    quantum_hash: bytes = QUANTUM_HASH,
    effects: tuple[EffectsGroup | EffectsGroupHash, ...] | None = None,
    message_id: int = 5,
    constellation_id: bytes = CONSTELLATION_ID,
) -> QuantumResultMessage:
    """Returns a result whose payload proof is signed by `signers` (auditor index, key) for
    the constellation `constellation_id`."""
    effects = effects_infos() if effects is None else effects
    proof_hash = sha256(b"".join(_digest(info) for info in effects))
    digest = payload_hash(constellation_id, apex, quantum_hash, proof_hash)
    signatures = tuple(NodeSignature(index, pair.sign(digest)) for index, pair in signers)
    proof = PayloadProof(digest, signatures)
    return QuantumResultMessage(
        message_id, StatusCode.SUCCESS, "", apex, quantum_hash, proof, effects, None
    )


def with_signatures(
    message: QuantumResultMessage, signatures: Sequence[NodeSignature]
) -> QuantumResultMessage:
    """Returns `message` with its payload proof's signatures replaced."""
    proof = PayloadProof(message.payload_proof.payload_hash, tuple(signatures))
    return dataclasses.replace(message, payload_proof=proof)


def _digest(info: EffectsGroup | EffectsGroupHash) -> bytes:
    return info.hash if isinstance(info, EffectsGroupHash) else group_hash(info)


def group_hashes_of(*groups: EffectsGroup) -> tuple[EffectsGroupHash, ...]:
    """Returns a history item's `group_hashes` for a quantum of `groups` (ascending accounts)."""
    ordered = sorted(groups, key=lambda group: group.account)
    return tuple(EffectsGroupHash(group.account, group_hash(group)) for group in ordered)
