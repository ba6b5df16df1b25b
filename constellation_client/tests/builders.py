"""Builders of signed quantum results for the client's tests (plain functions, real keys)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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


def auditors(count: int = 3) -> list[KeyPair]:
    """Returns `count` deterministic auditor key pairs; alpha is the first."""
    return [keypair(index + 1) for index in range(count)]


def auditor_keys(pairs: Sequence[KeyPair]) -> list[bytes]:
    """Returns the raw public keys of `pairs`, in order."""
    return [pair.public_key for pair in pairs]


def own_group(account: int = 7, amount: int = 5_000_000) -> EffectsGroup:
    """Returns the requesting account's full effects group."""
    effects = (
        NonceUpdateEffect(1001, 1000),
        BalanceUpdateEffect("USD", BalanceUpdateSign.MINUS, amount),
    )
    return EffectsGroup(account, 3, effects)


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
) -> QuantumResultMessage:
    """Returns a result whose payload proof is signed by `signers` (auditor index, key)."""
    effects = effects_infos() if effects is None else effects
    proof_hash = sha256(b"".join(_digest(info) for info in effects))
    digest = payload_hash(apex, quantum_hash, proof_hash)
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
