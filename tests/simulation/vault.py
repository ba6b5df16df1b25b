"""A simulated payment provider and its vault: a ledger of entries (deposits in, payouts out)
and the transactions it paid, each only once and only with a majority of valid vault-signer
signatures (the local ledger's M-of-N rule).

Alpha builds a withdrawal's transaction for the quantum's apex and timestamp; every auditor
rebuilds it from the quantum and signs it; the vault pays it once. A notification
(DepositQuantum) covers one ledger entry; payouts of withdrawals a node does not hold pending
are left out, as the real providers do, so every node computes the same notification.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from quanta.core.hashing import sha256
from quanta.core.keys import KeyPair, verify_signature
from quanta.core.status import BadRequest
from quanta.core.testing import deposit_quantum
from quanta.core.xdr.schema import DepositQuantum, TxSignature, WithdrawalRequest

TRANSACTION_TTL_MS = 60_000


def transaction_of(apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
    """Returns the transaction paying `request` in quantum `apex` (expiry from its time)."""
    fields = (apex, request.destination, request.asset, request.amount, request.fee)
    expiry = timestamp_ms + TRANSACTION_TTL_MS
    return ("tx:" + ":".join(map(str, (*fields, expiry)))).encode()


def transaction_apex(transaction: bytes) -> int:
    """Returns the apex (withdrawal id) a transaction pays out."""
    return int(transaction.split(b":")[1])


def transaction_expiry_ms(transaction: bytes) -> int:
    """Returns when a transaction expires."""
    return int(transaction.rsplit(b":", 1)[1])


def transaction_sign(transaction: bytes, keypair: KeyPair) -> TxSignature:
    """Returns a vault signer's signature of a transaction."""
    return TxSignature(keypair.public_key, keypair.sign(sha256(transaction)))


def signature_valid(transaction: bytes, signature: TxSignature, signers: Sequence[bytes]) -> bool:
    """Tells whether a signature is a vault signer's valid signature of the transaction."""
    return signature.signer in signers and verify_signature(
        signature.signer, sha256(transaction), signature.signature
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry: a deposit (`withdrawal_id` 0) or a payout's outcome."""

    client: KeyPair | None
    asset: str
    amount: int
    withdrawal_id: int = 0
    paid: bool = False


class Vault:
    """The provider's ledger, seen alike by every node."""

    def __init__(self, signers: Sequence[bytes], threshold: int) -> None:
        """Pays only transactions signed by `threshold` of `signers`."""
        self.signers = tuple(signers)
        self.threshold = threshold
        self.entries: list[Entry] = []
        self.paid: dict[bytes, int] = {}
        self.cancelled: set[bytes] = set()

    def deposit(self, client: KeyPair, asset: str, amount: int) -> None:
        """Records a payment into the vault (a faucet)."""
        self.entries.append(Entry(client, asset, amount))

    def submit(self, transaction: bytes, signatures: Sequence[TxSignature]) -> bool:
        """Pays a transaction once, if enough vault signers signed it; tells whether it did."""
        if transaction in self.paid or transaction in self.cancelled:
            return False
        valid = {s.signer for s in signatures if signature_valid(transaction, s, self.signers)}
        if len(valid) < self.threshold:
            return False
        apex = transaction_apex(transaction)
        self.paid[transaction] = apex
        self.entries.append(Entry(None, "", 0, apex, paid=True))
        return True

    def cancel(self, transaction: bytes) -> bool:
        """Cancels an expired, unpaid transaction; its failure becomes an entry."""
        if transaction in self.paid or transaction in self.cancelled:
            return False
        self.cancelled.add(transaction)
        self.entries.append(Entry(None, "", 0, transaction_apex(transaction)))
        return True

    def notification(self, cursor: int, pending: Container[int]) -> DepositQuantum | None:
        """Returns the notification of the entry after `cursor`, None if there is none."""
        if cursor >= len(self.entries):
            return None
        entry = self.entries[cursor]
        if entry.client is not None:
            return deposit_quantum(cursor + 1, [(entry.client, entry.asset, entry.amount)])
        outcomes = [(entry.withdrawal_id, entry.paid)] if entry.withdrawal_id in pending else []
        return deposit_quantum(cursor + 1, withdrawals=outcomes)

    def validate(self, body: DepositQuantum, cursor: int, pending: Container[int]) -> None:
        """Raises BadRequest unless `body` is the notification this node expects."""
        if body != self.notification(cursor, pending):
            raise BadRequest(f"the notification at cursor {cursor} does not match the vault")
