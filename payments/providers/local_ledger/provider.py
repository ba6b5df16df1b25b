"""The local-ledger provider: the embedded default payment network (its Django side).

The ledger (`ledger`, beside this module) lives in its own database (alias `ledger`) shared by
all nodes of a local constellation. A transfer into the vault is a deposit for the payer's key;
an entry out of the vault with `reference = "withdrawal:<id>"` settles that withdrawal:
applied = paid out, cancelled (expired unapplied) = failed. The cursor is the journal position
of the last ledger entry reported: positions are given in commit order without gaps, so every
node reading between two cursors sees the same entries, and none appears later below a cursor.
Withdrawal transactions are `payments.core.local_ledger` transactions, valid until the
quantum's timestamp plus the node's TTL (option `ttl_ms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import takewhile

from django.db.models import Q

from payments.core.local_ledger import (
    LedgerRuleError,
    VaultTransaction,
    rotation_decode,
    signature_valid,
    transaction_decode,
    transaction_encode,
    transaction_hash,
    transaction_sign,
    withdrawal_transaction,
)
from payments.core.provider import (
    TRANSACTION_TTL_MAX_MS,
    Notification,
    PaymentProvider,
    PaymentSubmitError,
)
from payments.core.rotation import local_rotation, local_rotation_check
from payments.models import LedgerTransfer
from payments.providers.local_ledger.ledger import (
    CANCELLED,
    ledger_now_ms,
    transaction_entry,
    vault_cancel,
    vault_open,
    vault_rotate,
    vault_signers,
    vault_submit,
)
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key, encode_public_key
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import (
    DepositItem,
    PaymentResult,
    ProviderSettings,
    TxSignature,
    WithdrawalOutcome,
    WithdrawalRequest,
)

NOTIFICATION_ITEMS_MAX = 500


class LocalLedgerProvider(PaymentProvider):
    """Watches the vault on the local ledger and pays withdrawals out of it."""

    def __init__(
        self,
        settings: ProviderSettings,
        keypair: KeyPair,
        signers: tuple[bytes, ...],
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Binds the provider; the TTL of built transactions comes from option `ttl_ms`."""
        super().__init__(settings, keypair, signers, options)
        self._vault_ready = False

    def _token_assets(self) -> dict[str, str]:
        return {item.token: item.asset for item in self.settings.assets}

    def _asset_token(self, asset: str) -> str:
        for item in self.settings.assets:
            if item.asset == asset:
                return item.token
        raise BadRequest(f"{self.provider_id} does not carry {asset}")

    def needs_preparation(self) -> bool:
        return not self._vault_ready or self.vault_recheck_due()

    def prepare(self) -> None:
        """Opens the vault on the ledger with the constellation's signers if it does not
        exist, else checks its signers against the settings in force (once)."""
        self.vault_ensure()

    def vault_ensure(self) -> None:
        """Opens the vault on first use with the constellation's signers; a vault of other
        signers (the auditors changed, the vault was not rotated) is a mismatch this
        provider reports (`vault_mismatch`) and pays nothing out of, never an exception:
        one used to abort every payout tick, and with it every other provider's payouts."""
        if not self._vault_ready and vault_signers(self.settings.vault) is None:
            vault_open(self.settings.vault, self.signers, self.threshold)
        self._vault_ready = True
        self.check_vault()  # No I/O unless not checked yet or a mismatch is due again.

    def vault_signers(self) -> tuple[tuple[bytes, ...], int] | None:
        return vault_signers(self.settings.vault)

    # --- deposits --------------------------------------------------------------------------

    def _transfers(
        self, after: int, until: int | None, older_than: datetime | None
    ) -> list[LedgerTransfer]:
        vault = self.settings.vault
        query = LedgerTransfer.objects.filter(
            Q(destination=vault) | Q(source=vault), position__gt=after
        )
        if until is not None:
            query = query.filter(position__lte=until)
        transfers = list(query.order_by("position")[:NOTIFICATION_ITEMS_MAX])
        if older_than is None:
            return transfers
        # Only a prefix in journal order: the cursor must never pass a younger entry.
        return list(takewhile(lambda record: record.created_at <= older_than, transfers))

    def _notification(self, transfers: list[LedgerTransfer], cursor: str) -> Notification:
        tokens = self._token_assets()
        items: list[DepositItem] = []
        withdrawals: list[WithdrawalOutcome] = []
        for record in transfers:
            if record.destination == self.settings.vault and record.source != record.destination:
                item = self._deposit_item(record, tokens)
                if item is not None:
                    items.append(item)
            elif record.source == self.settings.vault:
                outcome = self._withdrawal_outcome(record)
                if outcome is not None:
                    withdrawals.append(outcome)
        last = str(transfers[-1].position) if transfers else cursor
        return Notification(last, tuple(items), tuple(withdrawals))

    def _withdrawal_outcome(self, record: LedgerTransfer) -> WithdrawalOutcome | None:
        prefix = "withdrawal:"
        suffix = record.reference.removeprefix(prefix)
        if not record.reference.startswith(prefix) or not suffix.isdigit():
            return None
        result = PaymentResult.FAILED if record.status == CANCELLED else PaymentResult.SUCCESS
        return WithdrawalOutcome(int(suffix), result, bytes(record.tx_hash))

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

    def notification_between(self, prev_cursor: str, cursor: str) -> Notification:
        transfers = self._transfers(int(prev_cursor or 0), int(cursor or 0), None)
        return self._notification(transfers, prev_cursor)

    # --- withdrawals -----------------------------------------------------------------------

    def _payout(
        self, apex: int, request: WithdrawalRequest, valid_until_ms: int
    ) -> VaultTransaction:
        """Returns the vault transaction that pays `request` out at `apex`: what alpha builds
        and what each auditor expects to find. The destination must be a ledger account (a
        G... key): XDR lets it be 256 characters, the ledger's column 56, and one longer
        destination made every payout tick fail in the database."""
        try:
            decode_public_key(request.destination)
        except InvalidKey as error:
            raise BadRequest(
                f"{self.provider_id}: the destination must be a G... account: {error}"
            ) from None
        self.require_fee(request)
        return withdrawal_transaction(
            self.settings.vault,
            request.destination,
            self._asset_token(request.asset),
            request.amount,
            apex,
            valid_until_ms,
        )

    def build_withdrawal(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        payout = self._payout(apex, request, timestamp_ms + self.ttl_ms)
        self.require_vault_checked()
        return transaction_encode(payout)

    def validate_withdrawal(
        self, apex: int, timestamp_ms: int, request: WithdrawalRequest, transaction: bytes
    ) -> None:
        try:
            tx = transaction_decode(transaction)
        except LedgerRuleError as error:
            raise BadRequest(f"{self.provider_id}: {error}") from None
        if tx != self._payout(apex, request, tx.valid_until_ms):
            raise BadRequest(f"{self.provider_id}: the transaction does not pay the request")
        if not timestamp_ms < tx.valid_until_ms <= timestamp_ms + TRANSACTION_TTL_MAX_MS:
            raise BadRequest(f"{self.provider_id}: the transaction's validity is out of bounds")

    def sign_withdrawal(self, transaction: bytes) -> TxSignature:
        self.require_vault_in_force()
        return transaction_sign(transaction, self.keypair)

    def signature_valid(self, transaction: bytes, signature: TxSignature) -> bool:
        return signature.signer in self.signers and signature_valid(transaction, signature)

    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        self.vault_ensure()
        try:
            vault_submit(transaction, signatures)
        except LedgerRuleError as error:
            tx = transaction_decode(transaction)
            used = transaction_entry(transaction) is not None
            expired = ledger_now_ms() > tx.valid_until_ms
            raise PaymentSubmitError(str(error), permanent=used or expired) from None

    def build_rotation(
        self, old: tuple[bytes, ...], new: tuple[bytes, ...], version: int, valid_until_ms: int
    ) -> bytes:
        return local_rotation(self.settings.vault, new, version, valid_until_ms)

    def validate_rotation(
        self,
        old: tuple[bytes, ...],
        new: tuple[bytes, ...],
        version: int,
        timestamp_ms: int,
        transaction: bytes,
    ) -> None:
        vault = self.settings.vault
        local_rotation_check(self.provider_id, vault, new, version, timestamp_ms, transaction)

    def sign_rotation(self, transaction: bytes) -> TxSignature:
        return transaction_sign(transaction, self.keypair)

    def rotation_signature_valid(
        self, transaction: bytes, signature: TxSignature, old: tuple[bytes, ...]
    ) -> bool:
        return signature.signer in old and signature_valid(transaction, signature)

    def rotation_expiry_ms(self, transaction: bytes) -> int:
        try:
            return rotation_decode(transaction).valid_until_ms
        except LedgerRuleError as error:
            raise BadRequest(f"{self.provider_id}: {error}") from None

    def submit_rotation(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        rotation = rotation_decode(transaction)
        try:
            vault_rotate(transaction, signatures)
        except LedgerRuleError as error:
            found = vault_signers(rotation.source)
            keys = None if found is None else sorted(encode_public_key(k) for k in found[0])
            if found is not None and (tuple(keys or ()), found[1]) == (
                rotation.signers,
                rotation.threshold,
            ):
                return  # Rotated already (by hand, `vault_rotate`): nothing left to do.
            used = transaction_entry_of_rotation(transaction)
            expired = ledger_now_ms() > rotation.valid_until_ms
            raise PaymentSubmitError(str(error), permanent=used or expired) from None
        finally:
            self.vault_recheck_now()

    def transaction_hash(self, transaction: bytes) -> bytes:
        return transaction_hash(transaction)

    def transaction_expiry_ms(self, transaction: bytes) -> int:
        return transaction_decode(transaction).valid_until_ms

    def cancel_expired(self, transaction: bytes, now_ms: int) -> bool:
        self.vault_ensure()
        if transaction_entry(transaction) is not None:
            return True  # Applied or cancelled already: the ledger has the outcome.
        try:
            vault_cancel(transaction)
        except LedgerRuleError:
            return transaction_entry(transaction) is not None
        return True


def transaction_entry_of_rotation(data: bytes) -> bool:
    """Tells whether the ledger holds an entry of this rotation (applied: it applies once)."""
    source = rotation_decode(data).source
    return LedgerTransfer.objects.filter(source=source, tx_hash=transaction_hash(data)).exists()
