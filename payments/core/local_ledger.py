"""The local ledger's rules for vault transactions, as pure functions.

A vault transaction pays one amount of one asset out of a vault account. Its bytes are a
canonical JSON object (sorted keys, no spaces, ASCII) so every node encodes the same
transaction to the same bytes; decoding refuses any other spelling. Its hash is SHA-256 of
those bytes, and a signer signs that hash with its ed25519 key (the key's strkey is the
signer's ledger address).

The ledger accepts an outgoing vault transaction only with valid signatures of at least
`threshold` distinct signers of the vault (the constellation's majority), only while
`valid_until_ms` has not passed on the ledger's clock, and only once: after its
`valid_until_ms`, anyone may cancel a transaction that was never applied (it can then never
be applied and the withdrawal failed for good), which is how an expired withdrawal becomes
provable to every auditor. Outcomes name the transaction's hash, so nodes match them to the
exact transaction of the pending withdrawal; a cancelled look-alike proves nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from quanta.core.keys import KeyPair, verify_signature
from quanta.core.xdr.schema import TxSignature

WITHDRAWAL_REFERENCE = "withdrawal:"


class LedgerRuleError(ValueError):
    """A transaction or signature breaks a rule of the local ledger."""


@dataclass(frozen=True, slots=True)
class VaultTransaction:
    """A payment of `amount` of `asset` from the vault `source` to `destination`."""

    source: str
    destination: str
    asset: str
    amount: int
    reference: str
    valid_until_ms: int

    @property
    def withdrawal_id(self) -> int | None:
        """Returns the withdrawal this transaction pays out, if its reference names one."""
        if not self.reference.startswith(WITHDRAWAL_REFERENCE):
            return None
        suffix = self.reference.removeprefix(WITHDRAWAL_REFERENCE)
        return int(suffix) if suffix.isdigit() else None


def transaction_encode(tx: VaultTransaction) -> bytes:
    """Returns the canonical bytes of a vault transaction."""
    return json.dumps(asdict(tx), sort_keys=True, separators=(",", ":")).encode("ascii")


def transaction_decode(data: bytes) -> VaultTransaction:
    """Returns the transaction `data` encodes; raises LedgerRuleError unless canonical."""
    try:
        fields = json.loads(data.decode("ascii"))
        tx = VaultTransaction(**fields)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
        raise LedgerRuleError(f"not a vault transaction: {error}") from None
    if transaction_encode(tx) != data:
        raise LedgerRuleError("vault transaction is not in canonical form")
    if not isinstance(tx.amount, int) or isinstance(tx.amount, bool) or tx.amount <= 0:
        raise LedgerRuleError("vault transaction amount must be a positive integer")
    if not isinstance(tx.valid_until_ms, int) or isinstance(tx.valid_until_ms, bool):
        raise LedgerRuleError("vault transaction valid_until_ms must be an integer")
    return tx


def transaction_hash(data: bytes) -> bytes:
    """Returns the hash signers sign and the ledger records (SHA-256 of the bytes)."""
    return hashlib.sha256(data).digest()


def transaction_sign(data: bytes, keypair: KeyPair) -> TxSignature:
    """Returns `keypair`'s signature of a transaction (signer = its raw public key)."""
    return TxSignature(keypair.public_key, keypair.sign(transaction_hash(data)))


def signature_valid(data: bytes, signature: TxSignature) -> bool:
    """Tells whether `signature` is its signer's valid signature of the transaction."""
    if len(signature.signer) != 32:
        return False
    return verify_signature(signature.signer, transaction_hash(data), signature.signature)


def valid_signers(
    data: bytes, signatures: Iterable[TxSignature], signers: Sequence[bytes]
) -> set[bytes]:
    """Returns the distinct vault signers with a valid signature among `signatures`."""
    allowed = set(signers)
    return {s.signer for s in signatures if s.signer in allowed and signature_valid(data, s)}


def require_signed(
    data: bytes, signatures: Iterable[TxSignature], signers: Sequence[bytes], threshold: int
) -> None:
    """Raises LedgerRuleError unless `threshold` distinct vault signers signed `data`."""
    if threshold <= 0:
        raise LedgerRuleError("the vault has no signing threshold")
    count = len(valid_signers(data, signatures, signers))
    if count < threshold:
        raise LedgerRuleError(f"{count} valid vault signatures, {threshold} needed")


def withdrawal_transaction(
    vault: str, destination: str, asset: str, amount: int, withdrawal_id: int, valid_until_ms: int
) -> VaultTransaction:
    """Returns the vault transaction that pays out withdrawal `withdrawal_id`."""
    reference = f"{WITHDRAWAL_REFERENCE}{withdrawal_id}"
    return VaultTransaction(vault, destination, asset, amount, reference, valid_until_ms)


# --- signer rotation ---------------------------------------------------------------------------

ROTATION_REFERENCE = "rotation:"


@dataclass(frozen=True, slots=True)
class VaultRotation:
    """Replaces the signers and threshold of the vault `source` (`signers`: sorted strkeys).
    The ledger applies it only with valid signatures of `threshold` of the vault's signers in
    force (the old ones), before `valid_until_ms`, once."""

    source: str
    signers: tuple[str, ...]
    threshold: int
    reference: str
    valid_until_ms: int


def rotation_transaction(
    vault: str, signers: Iterable[str], threshold: int, reference: str, valid_until_ms: int
) -> VaultRotation:
    """Returns the rotation of `vault` to `signers` (any order) and `threshold`."""
    return VaultRotation(
        vault, tuple(sorted(signers)), threshold, f"{ROTATION_REFERENCE}{reference}", valid_until_ms
    )


def rotation_encode(rotation: VaultRotation) -> bytes:
    """Returns the canonical bytes of a rotation (tagged, so it never reads as a payment)."""
    fields = {"rotation": True, **asdict(rotation), "signers": list(rotation.signers)}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("ascii")


def rotation_decode(data: bytes) -> VaultRotation:
    """Returns the rotation `data` encodes; raises LedgerRuleError unless canonical and sound
    (distinct signers, a threshold between 1 and their number)."""
    try:
        fields = json.loads(data.decode("ascii"))
        if not isinstance(fields, dict) or fields.pop("rotation", None) is not True:
            raise TypeError("not tagged as a rotation")
        rotation = VaultRotation(**{**fields, "signers": tuple(fields.get("signers", ()))})
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
        raise LedgerRuleError(f"not a vault rotation: {error}") from None
    if rotation_encode(rotation) != data:
        raise LedgerRuleError("vault rotation is not in canonical form")
    signers = rotation.signers
    if list(signers) != sorted(set(signers)) or not all(isinstance(s, str) for s in signers):
        raise LedgerRuleError("vault rotation signers must be distinct and sorted")
    threshold = rotation.threshold
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        raise LedgerRuleError("vault rotation threshold must be an integer")
    if not 1 <= threshold <= len(signers):
        raise LedgerRuleError("vault rotation threshold must be between 1 and the signers")
    if not rotation.reference.startswith(ROTATION_REFERENCE):
        raise LedgerRuleError("a vault rotation needs a rotation reference")
    return rotation
