"""Vault rotations: how a settings update that changes the auditors brings each vault in line.

Such an update leaves every vault it keeps answering to the old auditors. Alpha's provider of
each one (the instance of the settings before the update) builds the rotation for the
timestamp the update's quantum gets, and the transactions travel inside the quantum
(`ConstellationQuantum.rotations`, one per provider in id order:
`quanta.core.processors.settings.rotations_called_for`). Every node's engine has its providers
validate each one (as they validate a withdrawal's transaction), and each old signer signs
them with its result for that quantum (`AuditorResult.rotation_signatures`; an auditor the
update removed still sends that last result). Alpha keeps them in `VaultRotation`s and submits
each once an old majority signed, the update is final and persisted, and the withdrawals built
before it settled (`payments.payouts`).

Local ledger: a rotation entry (`local_ledger.rotation_transaction`), every field derived from
the update: its validation rebuilds it. Stellar: a setOptions transaction
(`StellarProvider.rotation_envelope`) on the vault's next sequence number, which alpha tracks
and the auditors need not know: a wrong one only makes the rotation fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.core.local_ledger import (
    LedgerRuleError,
    rotation_decode,
    rotation_encode,
    rotation_transaction,
)
from quanta.core.keys import encode_public_key
from quanta.core.processors.settings import ROTATION_TTL_MS
from quanta.core.signatures import majority
from quanta.core.status import BadRequest


@dataclass(frozen=True, slots=True)
class VaultRotation:
    """One vault's rotation a settings update called for, as alpha keeps it."""

    apex: int
    """The update's quantum."""
    provider: str
    transaction: bytes
    old_signers: tuple[bytes, ...]
    """The vault's signers before the update: only theirs count."""
    old_threshold: int
    expiry_ms: int


def validity_check(provider_id: str, timestamp_ms: int, valid_until_ms: int) -> None:
    """Raises BadRequest unless a rotation valid until `valid_until_ms` is valid after the
    update's quantum at `timestamp_ms`, for at most ROTATION_TTL_MS."""
    if not timestamp_ms < valid_until_ms <= timestamp_ms + ROTATION_TTL_MS:
        raise BadRequest(f"{provider_id}: the rotation's validity is out of bounds")


def local_rotation(vault: str, new: tuple[bytes, ...], version: int, valid_until_ms: int) -> bytes:
    """Returns the local ledger's rotation of `vault` to the signers `new` and their majority,
    referenced by the settings `version`."""
    signers = [encode_public_key(key) for key in new]
    threshold = majority(len(new))
    rotation = rotation_transaction(vault, signers, threshold, str(version), valid_until_ms)
    return rotation_encode(rotation)


def local_rotation_check(
    provider_id: str,
    vault: str,
    new: tuple[bytes, ...],
    version: int,
    timestamp_ms: int,
    transaction: bytes,
) -> None:
    """Raises BadRequest unless `transaction` is `local_rotation`'s for these arguments, valid
    after `timestamp_ms` for at most ROTATION_TTL_MS."""
    try:
        valid_until_ms = rotation_decode(transaction).valid_until_ms
    except LedgerRuleError as error:
        raise BadRequest(f"{provider_id}: {error}") from None
    validity_check(provider_id, timestamp_ms, valid_until_ms)
    if transaction != local_rotation(vault, new, version, valid_until_ms):
        raise BadRequest(f"{provider_id}: the transaction is not the update's rotation")
