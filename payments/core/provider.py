"""The payment-provider interface: how funds enter and leave the constellation.

A provider watches its vault on an external network from a cursor and reports what it saw
(payments in, withdrawals paid out) as the items of a DepositQuantum; every node validates such
a notification against its own view before executing it. Withdrawals are built by alpha's
provider, validated and signed by every node's provider, and submitted once a majority signed.
Provider id: `{type}-{name}` (SPEC.md). Secrets stay in node configuration, never in settings.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from quanta.core.xdr.schema import (
    DepositItem,
    DepositQuantum,
    ProviderSettings,
    TxSignature,
    WithdrawalOutcome,
    WithdrawalRequest,
)


@dataclass(frozen=True, slots=True)
class Notification:
    """What a provider saw after a cursor, up to `cursor`."""

    cursor: str
    items: tuple[DepositItem, ...]
    withdrawals: tuple[WithdrawalOutcome, ...]

    @property
    def is_empty(self) -> bool:
        """Tells whether there is nothing to report."""
        return not self.items and not self.withdrawals


class PaymentProvider(abc.ABC):
    """One configured provider of one node."""

    def __init__(self, settings: ProviderSettings) -> None:
        """Binds the provider to its settings (from the constellation settings)."""
        self.settings = settings
        self.provider_id = f"{settings.provider_type}-{settings.name}"

    @abc.abstractmethod
    def notification_after(self, cursor: str, now_ms: int) -> Notification:
        """Returns what the vault saw after `cursor` that is older than the submit delay."""

    @abc.abstractmethod
    def validate_notification(self, body: DepositQuantum, prev_cursor: str) -> None:
        """Raises a ConstellationError unless `body` is exactly what this node sees."""

    @abc.abstractmethod
    def build_withdrawal(self, apex: int, request: WithdrawalRequest) -> bytes:
        """Returns the transaction that pays the withdrawal out of the vault."""

    @abc.abstractmethod
    def validate_withdrawal(
        self, apex: int, request: WithdrawalRequest, transaction: bytes
    ) -> None:
        """Raises a ConstellationError unless `transaction` pays exactly `request`."""

    @abc.abstractmethod
    def sign_withdrawal(self, transaction: bytes) -> TxSignature:
        """Returns this node's signature of the transaction."""

    @abc.abstractmethod
    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        """Submits a transaction signed by a majority to the external network."""

    @staticmethod
    def compare_cursors(left: str, right: str) -> int:
        """Returns -1, 0 or 1 as `left` is before, at or after `right` (numeric cursors)."""
        a, b = int(left or 0), int(right or 0)
        return (a > b) - (a < b)
