"""The local-ledger provider: the embedded default payment network (its Django side).

The ledger is a table of transfers in its own database (alias `ledger`) shared by all nodes of
a local constellation. A transfer into the vault is a deposit for the payer's key; a transfer
out of the vault carries `reference = "withdrawal:<id>"` and settles that withdrawal. The
cursor is the id of the last transfer reported.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum

from payments.core.provider import Notification, PaymentProvider
from payments.models import LedgerTransfer
from quanta.core.keys import InvalidKey, decode_public_key
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import (
    DepositItem,
    DepositQuantum,
    PaymentResult,
    TxSignature,
    WithdrawalOutcome,
    WithdrawalRequest,
)

ISSUER = "ISSUER"
"""The ledger account that mints funds (the demo faucet); it has no balance limit."""

WITHDRAWAL_REFERENCE = "withdrawal:"
NOTIFICATION_ITEMS_MAX = 500


def ledger_balance(address: str, asset: str) -> int:
    """Returns an address's balance on the ledger (incoming minus outgoing transfers)."""
    incoming = LedgerTransfer.objects.filter(destination=address, asset=asset).aggregate(
        total=Sum("amount")
    )["total"]
    outgoing = LedgerTransfer.objects.filter(source=address, asset=asset).aggregate(
        total=Sum("amount")
    )["total"]
    return int(incoming or 0) - int(outgoing or 0)


def ledger_transfer(
    source: str, destination: str, asset: str, amount: int, reference: str = ""
) -> int:
    """Moves funds on the ledger (refusing overdrafts except for the issuer); returns its id."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    with transaction.atomic(using="ledger"):
        if source != ISSUER and ledger_balance(source, asset) < amount:
            raise ValueError(f"{source} has less than {amount} {asset} on the ledger")
        digest = hashlib.sha256(f"{source}|{destination}|{asset}|{amount}|{reference}".encode())
        record = LedgerTransfer.objects.create(
            source=source,
            destination=destination,
            asset=asset,
            amount=Decimal(amount),
            reference=reference,
            tx_hash=digest.digest(),
        )
    return int(record.id)


def faucet_deposit(public_key: str, vault: str, asset: str, amount: int) -> int:
    """Mints `amount` to `public_key` on the ledger and pays it into the vault (demo funding)."""
    decode_public_key(public_key)
    ledger_transfer(ISSUER, public_key, asset, amount)
    return ledger_transfer(public_key, vault, asset, amount)


class LocalLedgerProvider(PaymentProvider):
    """Watches the vault on the local ledger and pays withdrawals out of it."""

    def _token_assets(self) -> dict[str, str]:
        return {item.token: item.asset for item in self.settings.assets}

    def _transfers(
        self, after: int, until: int | None, older_than: datetime | None
    ) -> list[LedgerTransfer]:
        vault = self.settings.vault
        query = LedgerTransfer.objects.filter(Q(destination=vault) | Q(source=vault), id__gt=after)
        if until is not None:
            query = query.filter(id__lte=until)
        if older_than is not None:
            query = query.filter(created_at__lte=older_than)
        return list(query.order_by("id")[:NOTIFICATION_ITEMS_MAX])

    def _notification(self, transfers: list[LedgerTransfer], cursor: str) -> Notification:
        tokens = self._token_assets()
        items: list[DepositItem] = []
        withdrawals: list[WithdrawalOutcome] = []
        for record in transfers:
            if record.destination == self.settings.vault:
                item = self._deposit_item(record, tokens)
                if item is not None:
                    items.append(item)
            elif record.reference.startswith(WITHDRAWAL_REFERENCE):
                withdrawal_id = int(record.reference.removeprefix(WITHDRAWAL_REFERENCE))
                withdrawals.append(
                    WithdrawalOutcome(withdrawal_id, PaymentResult.SUCCESS, bytes(record.tx_hash))
                )
        last = str(transfers[-1].id) if transfers else cursor
        return Notification(last, tuple(items), tuple(withdrawals))

    def _deposit_item(self, record: LedgerTransfer, tokens: dict[str, str]) -> DepositItem | None:
        asset = tokens.get(record.asset)
        try:
            payer = decode_public_key(record.source)
        except InvalidKey:
            return None  # Not a constellation key: nobody to credit; the funds stay in the vault.
        if asset is None:
            return None
        return DepositItem(
            PaymentResult.SUCCESS, bytes(record.tx_hash), asset, int(record.amount), payer
        )

    def notification_after(self, cursor: str, now_ms: int) -> Notification:
        delay = timedelta(seconds=self.settings.payment_submit_delay_s)
        older_than = datetime.fromtimestamp(now_ms / 1000, tz=UTC) - delay
        transfers = self._transfers(int(cursor or 0), None, older_than)
        return self._notification(transfers, cursor)

    def validate_notification(self, body: DepositQuantum, prev_cursor: str) -> None:
        transfers = self._transfers(int(prev_cursor or 0), int(body.cursor or 0), None)
        seen = self._notification(transfers, prev_cursor)
        if (
            seen.cursor != body.cursor
            or seen.items != body.items
            or seen.withdrawals != body.withdrawals
        ):
            raise BadRequest(f"{self.provider_id}: notification does not match the ledger")

    def build_withdrawal(self, apex: int, request: WithdrawalRequest) -> bytes:
        raise BadRequest("withdrawals through the local ledger are not available yet")

    def validate_withdrawal(
        self, apex: int, request: WithdrawalRequest, transaction: bytes
    ) -> None:
        raise BadRequest("withdrawals through the local ledger are not available yet")

    def sign_withdrawal(self, transaction: bytes) -> TxSignature:
        raise BadRequest("withdrawals through the local ledger are not available yet")

    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        raise BadRequest("withdrawals through the local ledger are not available yet")
