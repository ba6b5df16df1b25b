"""Alpha's book of withdrawal payouts: transactions waiting for signatures, submission or
expiry. Pure bookkeeping; the engine worker does the I/O.

A payout enters when its WithdrawalQuantum executed at alpha (with alpha's own signature of the
transaction), gathers the auditors' valid signatures from their results, becomes due once a
majority of distinct signers signed **and** its withdrawal's quantum is final and persisted at
alpha (its apex, the withdrawal id, is at or below alpha's persisted prefix), and is
submitted; a refused submission is retried with a growing delay until the transaction expires.
Past its expiry a payout still pending is due for cancellation (the provider makes the failure
visible to every auditor). The withdrawal itself ends only through the provider's notification
(a DepositQuantum); the book forgets a payout once its withdrawal is no longer pending.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from quanta.core.xdr.schema import TxSignature

RETRY_FIRST_MS = 500
RETRY_MAX_MS = 10_000
SIGNATURES_ASKED_MAX = 100
"""How many withdrawals' transaction signatures alpha asks the auditors for at once."""


@dataclass(slots=True)
class Payout:
    """One withdrawal's transaction and what alpha knows about its signatures."""

    withdrawal_id: int
    provider: str
    transaction: bytes
    expiry_ms: int
    signatures: dict[bytes, TxSignature] = field(default_factory=dict)
    submitted: bool = False
    gave_up: bool = False
    attempts: int = 0
    next_attempt_ms: int = 0
    threshold: int = 0
    """Signatures it needs; 0: the settings' majority (a vault rotation: the old one's)."""


class PayoutBook:
    """The payouts of the pending withdrawals alpha knows the transactions of."""

    def __init__(self) -> None:
        """Starts empty (after a restart the worker re-adds pending withdrawals unsigned)."""
        self.payouts: dict[int, Payout] = {}

    def add(self, withdrawal_id: int, provider: str, transaction: bytes, expiry_ms: int) -> Payout:
        """Adds a payout (idempotent) and returns it."""
        payout = self.payouts.get(withdrawal_id)
        if payout is None:
            payout = Payout(withdrawal_id, provider, transaction, expiry_ms)
            self.payouts[withdrawal_id] = payout
        return payout

    def add_signature(self, withdrawal_id: int, signature: TxSignature) -> bool:
        """Keeps a signature alpha verified; returns False if the payout is unknown."""
        payout = self.payouts.get(withdrawal_id)
        if payout is None:
            return False
        payout.signatures.setdefault(signature.signer, signature)
        return True

    def due(self, threshold: int, now_ms: int, *, persisted_apex: int) -> list[Payout]:
        """Returns the payouts signed by `threshold` signers that should be submitted now.

        Signatures alone are not enough: a quantum alpha has not persisted can still be lost
        by a crash and replaced at its apex, and the vault would then have paid a withdrawal
        the constellation never debits. So a payout is due only once every quantum up to its
        withdrawal's apex is final and persisted at alpha (`persisted_apex`)."""
        return [
            p
            for p in self.payouts.values()
            if not p.submitted
            and not p.gave_up
            and p.withdrawal_id <= persisted_apex
            and len(p.signatures) >= (p.threshold or threshold)
            and p.next_attempt_ms <= now_ms < p.expiry_ms
        ]

    def short_of(self, threshold: int, now_ms: int, *, persisted_apex: int) -> list[int]:
        """Returns the ids of payouts final and persisted (at or below `persisted_apex`), not
        expired, that `threshold` signers have not signed: a restart of alpha lost the
        signatures its auditors sent, and they send nothing again for a quantum already
        final, so alpha asks them (at most SIGNATURES_ASKED_MAX at once, oldest first)."""
        short = [
            p.withdrawal_id
            for p in self.payouts.values()
            if not p.submitted
            and not p.gave_up
            and p.withdrawal_id <= persisted_apex
            and len(p.signatures) < (p.threshold or threshold)
            and now_ms < p.expiry_ms
        ]
        return sorted(short)[:SIGNATURES_ASKED_MAX]

    def submitted(self, payout: Payout) -> None:
        """Records a submission the network accepted."""
        payout.submitted = True

    def refused(self, payout: Payout, now_ms: int, *, permanent: bool) -> None:
        """Records a refused submission: retry later, unless retrying cannot help."""
        payout.attempts += 1
        payout.gave_up = permanent
        delay = min(RETRY_FIRST_MS * 2 ** (payout.attempts - 1), RETRY_MAX_MS)
        payout.next_attempt_ms = now_ms + delay

    def waiting_before(self, apex: int, provider: str, now_ms: int) -> bool:
        """Tells whether a payout of `provider` older than `apex` may still be submitted (not
        submitted, not given up, not expired): a vault rotation at `apex` waits for it, as
        its signatures are the old signers'."""
        return any(
            p.withdrawal_id < apex
            and p.provider == provider
            and not p.submitted
            and not p.gave_up
            and now_ms < p.expiry_ms
            for p in self.payouts.values()
        )

    def expired(self, now_ms: int) -> list[Payout]:
        """Returns the payouts whose transaction expired unsubmitted (due for cancellation)."""
        return [p for p in self.payouts.values() if not p.submitted and now_ms > p.expiry_ms]

    def forget_settled(self, pending: Container[int]) -> None:
        """Forgets payouts whose withdrawal is no longer pending (the provider reported it)."""
        for withdrawal_id in [w for w in self.payouts if w not in pending]:
            del self.payouts[withdrawal_id]
