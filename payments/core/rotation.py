"""Which vault rotation a settings update calls for (pure: every node derives the same).

A settings update that changes the auditors leaves the vaults answering to the old ones. The
rotation that brings a vault in line is derived from the update's quantum alone: the vault of
a provider present before and after with the same address, the new auditors' keys (sorted)
and their majority, the new settings version as reference, and a validity of ROTATION_TTL_MS
after the quantum's timestamp. Alpha and every old auditor therefore build the same bytes
without any being carried in the quantum: an old auditor signs only the rotation it derived
itself (its rebuild is the validation), and its signature travels back to alpha with its
result for the update's quantum (`AuditorResult.tx_signature`), the way a withdrawal's does.

Only providers whose transactions follow from the settings and the quantum can rotate this
way: the local ledger. A Stellar rotation needs the vault's sequence number, which a node
reads from its Horizon and which withdrawals move, so it is not derivable from the quantum
(docs/payments.md, "Known limits"). One provider per update: the result carries one
transaction signature (more would change the wire format).
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.core.local_ledger import (
    rotation_encode,
    rotation_transaction,
    signature_valid,
    transaction_sign,
)
from quanta.core.config import Config
from quanta.core.keys import KeyPair, encode_public_key
from quanta.core.xdr.schema import TxSignature

ROTATION_TTL_MS = 600_000
"""How long a rotation stays valid after its update's quantum: longer than a withdrawal's
TTL, so the withdrawals built before the update (old signers) are paid or expired first."""

ROTATING_TYPES = ("local",)
"""Provider types whose rotation every node derives from the update's quantum."""


@dataclass(frozen=True, slots=True)
class VaultRotation:
    """The rotation one settings update calls for."""

    apex: int
    """The update's quantum."""
    provider: str
    transaction: bytes
    old_signers: tuple[bytes, ...]
    """The vault's signers before the update: only theirs count."""
    old_threshold: int
    expiry_ms: int


def update_rotation(
    prev: Config, new: Config, apex: int, timestamp_ms: int
) -> VaultRotation | None:
    """Returns the rotation the update from `prev` to `new` (quantum `apex` at
    `timestamp_ms`) calls for, None if its auditors did not change or no provider rotates
    this way. The first rotating provider in id order (one per update)."""
    if set(prev.auditor_keys) == set(new.auditor_keys):
        return None
    for provider_id, provider in sorted(new.providers.items()):
        before = prev.providers.get(provider_id)
        if provider.provider_type not in ROTATING_TYPES or before is None:
            continue
        if before.vault != provider.vault:
            continue  # A new vault is opened with the new signers: nothing to rotate.
        signers = [encode_public_key(key) for key in new.auditor_keys]
        until = timestamp_ms + ROTATION_TTL_MS
        rotation = rotation_transaction(
            provider.vault, signers, new.majority, str(new.settings.version), until
        )
        return VaultRotation(
            apex, provider_id, rotation_encode(rotation), prev.auditor_keys, prev.majority, until
        )
    return None


def rotation_sign(rotation: VaultRotation, keypair: KeyPair) -> TxSignature | None:
    """Returns `keypair`'s signature of the rotation if it is one of the old signers."""
    if keypair.public_key not in rotation.old_signers:
        return None
    return transaction_sign(rotation.transaction, keypair)


def rotation_signature_valid(rotation: VaultRotation, signature: TxSignature) -> bool:
    """Tells whether `signature` is an old signer's valid signature of the rotation (it
    proves itself: whoever relays it)."""
    return signature.signer in rotation.old_signers and signature_valid(
        rotation.transaction, signature
    )
