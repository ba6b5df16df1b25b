"""The Stellar provider: a vault account on Stellar whose signers are the auditors' keys.

- Withdrawals are real Stellar transactions (stellar-sdk): one payment operation from the
  vault, the withdrawal id as an id memo, the vault's next sequence number (tracked here:
  loaded from Horizon once, advanced with each withdrawal the constellation accepted) and
  time bounds ending at the quantum's timestamp plus the TTL. The transaction bytes in the
  quantum are the XDR of the unsigned TransactionEnvelope; each node signs the transaction
  hash with its node key (node keys are Stellar keys), and alpha adds a majority of those
  signatures as decorated signatures before submitting to Horizon.
- Deposits are the vault's payments from Horizon (`/accounts/{vault}/payments`, joined with
  their transactions, failed ones included), in order, with the paging token as cursor. A
  payment out of the vault with an id memo is the outcome of that withdrawal: SUCCESS if its
  transaction succeeded, FAILED if it entered the ledger failed (`op_no_destination`,
  `op_no_trust`, ...: its sequence number and fee are spent, it can never apply). Incoming
  payments of failed transactions credit nothing.
- The vault pays the network fee (`BASE_FEE`) of each withdrawal; the settings state a
  minimum withdrawal fee per asset that covers it (`quanta.core.config`).
Node options: `horizon_url`, `network_passphrase` (default: the test network), `ttl_ms`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from stellar_sdk import (
    Account,
    Asset,
    DecoratedSignature,
    Keypair,
    Network,
    Server,
    Signer,
    TransactionBuilder,
    TransactionEnvelope,
)
from stellar_sdk import exceptions as stellar_errors
from stellar_sdk.client.requests_client import RequestsClient

from payments.core.provider import (
    TRANSACTION_TTL_MAX_MS,
    Notification,
    PaymentProvider,
    PaymentSubmitError,
    signers_mismatch,
)
from quanta.core.config import STELLAR_NETWORK_FEE_UNITS
from quanta.core.keys import InvalidKey, KeyPair, decode_public_key
from quanta.core.processors.settings import ROTATION_TTL_MS
from quanta.core.signatures import majority
from quanta.core.status import BadRequest, InvalidState, NotYetConfirmed
from quanta.core.xdr.schema import (
    DepositItem,
    PaymentResult,
    ProviderSettings,
    TxSignature,
    WithdrawalOutcome,
    WithdrawalRequest,
)

UNITS = Decimal(10_000_000)
BASE_FEE = STELLAR_NETWORK_FEE_UNITS
PAGE_LIMIT = 200
HORIZON_TIMEOUT_S = 10


def stellar_asset(token: str) -> Asset:
    """Returns the Stellar asset of a provider token: `XLM` (native) or `CODE:ISSUER`."""
    if token == "XLM":  # noqa: S105 - an asset code, not a secret
        return Asset.native()
    code, _, issuer = token.partition(":")
    return Asset(code, issuer)


def amount_string(units: int) -> str:
    """Returns a Stellar amount string for an integer number of 10^-7 units."""
    return format(Decimal(units) / UNITS, "f")


def amount_units(text: str) -> int:
    """Returns the integer number of 10^-7 units of a Stellar amount string."""
    return int(Decimal(text) * UNITS)


class StellarProvider(PaymentProvider):
    """A Stellar vault: payments in through Horizon, multisig payments out."""

    def __init__(
        self,
        settings: ProviderSettings,
        keypair: KeyPair,
        signers: tuple[bytes, ...],
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Binds the provider to Horizon (node options) and this node's Stellar key."""
        super().__init__(settings, keypair, signers, options)
        self.passphrase = self.options.get("network_passphrase", Network.TESTNET_NETWORK_PASSPHRASE)
        self.horizon_url = self.options.get("horizon_url", "https://horizon-testnet.stellar.org")
        self.stellar_key = Keypair.from_secret(keypair.secret) if keypair.can_sign else None
        self.sequence: int | None = None
        self._server: Server | None = None
        self._account_seen: dict[str, Any] | None = None

    def server(self) -> Server:
        """Returns the Horizon client for the configured endpoint (bounded timeouts; the
        caller retries on its own schedule, so the client retries once)."""
        if self._server is None:
            client = RequestsClient(
                num_retries=1,
                request_timeout=HORIZON_TIMEOUT_S,
                post_timeout=HORIZON_TIMEOUT_S,
                backoff_factor=0.1,
            )
            self._server = Server(self.horizon_url, client=client)
        return self._server

    def needs_preparation(self) -> bool:
        return self.sequence is None or self.vault_recheck_due()

    def prepare(self) -> None:
        """Loads the vault's current sequence number from Horizon and checks its signers and
        thresholds against the settings in force (once per provider instance, and again
        while they mismatch: a rotation outside the constellation also moved the sequence)."""
        if self.sequence is None or self.vault_recheck_due():
            account = self._account()
            self.sequence = int(account["sequence"])
            self._vault_checked = False
            self._account_seen = account
            self.check_vault()

    def _account(self) -> dict[str, Any]:
        seen, self._account_seen = self._account_seen, None
        if seen is not None:
            return seen
        return dict(self.server().accounts().account_id(self.settings.vault).call())

    def vault_signers(self) -> tuple[tuple[bytes, ...], int] | None:
        """Returns the vault's ed25519 signers of weight 1 and its medium threshold (what a
        payment needs) from Horizon; a signer of another weight, or a low or high threshold
        unlike the medium one, is reported as a vault of no signers (a mismatch)."""
        try:
            account = self._account()
        except stellar_errors.NotFoundError:
            return None
        thresholds = account["thresholds"]
        weights = {
            s["key"]: int(s["weight"])
            for s in account["signers"]
            if s.get("type") == "ed25519_public_key" and int(s["weight"]) > 0
        }
        threshold = int(thresholds["med_threshold"])
        uniform = {int(thresholds["low_threshold"]), int(thresholds["high_threshold"])}
        if set(weights.values()) - {1} or uniform != {threshold}:
            return (), threshold
        return tuple(decode_public_key(key) for key in sorted(weights)), threshold

    # --- deposits --------------------------------------------------------------------------

    def _records(self, cursor: str, limit: int) -> list[dict[str, Any]]:
        call = (
            self.server()
            .payments()
            .for_account(self.settings.vault)
            .cursor(cursor or "0")
            .order(desc=False)
            .limit(limit)
            .join("transactions")
            .include_failed(True)  # A payout that failed on the ledger must settle too.
        )
        response = call.call()
        return list(response["_embedded"]["records"])

    def _notification(self, records: list[dict[str, Any]], cursor: str) -> Notification:
        items: list[DepositItem] = []
        withdrawals: list[WithdrawalOutcome] = []
        for record in records:
            if record.get("type") != "payment":
                continue
            successful = bool(record.get("transaction_successful", True))
            if record["to"] == self.settings.vault and record["from"] != self.settings.vault:
                if not successful:
                    continue  # Nothing arrived.
                item = self._deposit_item(record)
                if item is not None:
                    items.append(item)
            elif record["from"] == self.settings.vault:
                outcome = self._withdrawal_outcome(record)
                if outcome is not None:
                    withdrawals.append(outcome)
        last = str(records[-1]["paging_token"]) if records else cursor
        return Notification(last, tuple(items), tuple(withdrawals))

    def _token_of(self, record: dict[str, Any]) -> str:
        if record["asset_type"] == "native":
            return "XLM"
        return f"{record['asset_code']}:{record['asset_issuer']}"

    def _deposit_item(self, record: dict[str, Any]) -> DepositItem | None:
        tokens = {item.token: item.asset for item in self.settings.assets}
        asset = tokens.get(self._token_of(record))
        try:
            payer = decode_public_key(record["from"])
        except InvalidKey:
            return None
        if asset is None:
            return None
        tx_hash = bytes.fromhex(record["transaction_hash"])
        return DepositItem(
            PaymentResult.SUCCESS, tx_hash, asset, amount_units(record["amount"]), payer
        )

    def _withdrawal_outcome(self, record: dict[str, Any]) -> WithdrawalOutcome | None:
        transaction = record.get("transaction") or {}
        if transaction.get("memo_type") != "id":
            return None
        tx_hash = bytes.fromhex(record["transaction_hash"])
        successful = bool(record.get("transaction_successful", True))
        result = PaymentResult.SUCCESS if successful else PaymentResult.FAILED
        return WithdrawalOutcome(int(transaction["memo"]), result, tx_hash)

    def notification_after(self, cursor: str, now_ms: int) -> Notification:
        delay = timedelta(seconds=self.settings.payment_submit_delay_s)
        older_than = datetime.fromtimestamp(now_ms / 1000, tz=UTC) - delay
        records = []
        for record in self._records(cursor, PAGE_LIMIT):
            created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
            if created > older_than:
                break  # Later payments wait until every auditor has surely seen them.
            records.append(record)
        return self._notification(records, cursor)

    def notification_between(self, prev_cursor: str, cursor: str) -> Notification:
        records = []
        for record in self._records(prev_cursor, PAGE_LIMIT):
            if self.compare_cursors(record["paging_token"], cursor) > 0:
                break
            records.append(record)
        return self._notification(records, prev_cursor)

    # --- withdrawals -----------------------------------------------------------------------

    def _token(self, asset: str) -> str:
        for item in self.settings.assets:
            if item.asset == asset:
                return item.token
        raise BadRequest(f"{self.provider_id} does not carry {asset}")

    def _envelope(
        self, sequence: int, apex: int, max_time_s: int, request: WithdrawalRequest
    ) -> TransactionEnvelope:
        builder = TransactionBuilder(
            Account(self.settings.vault, sequence - 1), self.passphrase, base_fee=BASE_FEE
        )
        builder.add_time_bounds(0, max_time_s)
        builder.add_id_memo(apex)
        builder.append_payment_op(
            request.destination,
            stellar_asset(self._token(request.asset)),
            amount_string(request.amount),
        )
        return builder.build()

    def build_withdrawal(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        if self.sequence is None:
            raise InvalidState(f"{self.provider_id}: the vault's sequence is not loaded yet")
        self.require_vault_checked()
        try:
            decode_public_key(request.destination)
        except InvalidKey:
            raise BadRequest("the destination is not a Stellar account") from None
        self.require_fee(request)
        max_time_s = (timestamp_ms + self.ttl_ms) // 1000
        envelope = self._envelope(self.sequence + 1, apex, max_time_s, request)
        return base64.b64decode(envelope.to_xdr())

    def _decode(self, transaction: bytes) -> TransactionEnvelope:
        try:
            xdr = base64.b64encode(transaction).decode()
            return TransactionEnvelope.from_xdr(xdr, self.passphrase)
        except Exception as error:  # stellar-sdk raises several XDR errors
            raise BadRequest(f"{self.provider_id}: not a Stellar transaction: {error}") from None

    def validate_withdrawal(
        self, apex: int, timestamp_ms: int, request: WithdrawalRequest, transaction: bytes
    ) -> None:
        self.require_fee(request)
        envelope = self._decode(transaction)
        tx = envelope.transaction
        bounds = tx.preconditions.time_bounds if tx.preconditions else None
        if bounds is None or envelope.signatures:
            raise BadRequest(
                f"{self.provider_id}: the transaction needs time bounds, no signatures"
            )
        max_time_ms = bounds.max_time * 1000
        if (
            not timestamp_ms < max_time_ms + 1000
            or max_time_ms > timestamp_ms + TRANSACTION_TTL_MAX_MS
        ):
            raise BadRequest(f"{self.provider_id}: the transaction's validity is out of bounds")
        expected = self._envelope(tx.sequence, apex, bounds.max_time, request)
        if expected.to_xdr() != envelope.to_xdr():
            raise BadRequest(f"{self.provider_id}: the transaction does not pay the request")

    def sign_withdrawal(self, transaction: bytes) -> TxSignature:
        self.require_vault_in_force()
        return self._sign(transaction)

    def _sign(self, transaction: bytes) -> TxSignature:
        """Returns this node's signature of the transaction's hash (network-bound)."""
        if self.stellar_key is None:
            raise InvalidState("this node has no signing key")
        digest = self._decode(transaction).hash()
        return TxSignature(self.stellar_key.raw_public_key(), self.stellar_key.sign(digest))

    def signature_valid(self, transaction: bytes, signature: TxSignature) -> bool:
        return self._signed_by(transaction, signature, self.signers)

    def _signed_by(
        self, transaction: bytes, signature: TxSignature, signers: tuple[bytes, ...]
    ) -> bool:
        """Tells whether `signature` is one of `signers`' valid signature of the transaction."""
        if signature.signer not in signers:
            return False
        try:
            key = Keypair.from_raw_ed25519_public_key(signature.signer)
            key.verify(self._decode(transaction).hash(), signature.signature)
        except (stellar_errors.BadSignatureError, BadRequest):
            return False
        return True

    def signed_envelope(
        self, transaction: bytes, signatures: list[TxSignature]
    ) -> TransactionEnvelope:
        """Returns the envelope with the given signers' decorated signatures."""
        envelope = self._decode(transaction)
        for signature in signatures:
            hint = Keypair.from_raw_ed25519_public_key(signature.signer).signature_hint()
            envelope.signatures.append(DecoratedSignature(hint, signature.signature))
        return envelope

    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        envelope = self.signed_envelope(transaction, signatures)
        try:
            self.server().submit_transaction(envelope, skip_memo_required_check=True)
        except stellar_errors.BadRequestError as error:
            codes = str(error.extras or "")
            # tx_failed: it entered the ledger failed (its sequence is spent); the payments
            # stream reports it as a FAILED outcome.
            permanent = any(c in codes for c in ("tx_too_late", "tx_bad_seq", "tx_failed"))
            if "tx_bad_seq" in codes:
                # Our tracked sequence left the network's (a withdrawal expired unapplied):
                # reload it; the withdrawals built on the old one fail and unlock.
                self.sequence = None
            raise PaymentSubmitError(
                f"Horizon refused the transaction: {codes}", permanent=permanent
            ) from None
        except stellar_errors.BaseRequestError as error:
            raise PaymentSubmitError(f"Horizon unreachable: {error}") from None

    def transaction_hash(self, transaction: bytes) -> bytes:
        return self._decode(transaction).hash()

    def transaction_expiry_ms(self, transaction: bytes) -> int:
        bounds = self._decode(transaction).transaction.preconditions
        assert bounds is not None and bounds.time_bounds is not None
        return bounds.time_bounds.max_time * 1000

    def cancel_expired(self, transaction: bytes, now_ms: int) -> bool:
        # Stellar itself refuses the transaction after its time bounds; nothing to record.
        return now_ms > self.transaction_expiry_ms(transaction)

    def _ledger_time_s(self) -> int:
        records = self.server().ledgers().order(desc=True).limit(1).call()["_embedded"]["records"]
        closed = datetime.fromisoformat(records[0]["closed_at"].replace("Z", "+00:00"))
        return int(closed.timestamp())

    def _in_ledger(self, digest: bytes) -> bool:
        """Tells whether the ledger holds the transaction, applied or failed: either way its
        outcome comes through the payments stream (SUCCESS or FAILED), not as an expiry."""
        try:
            self.server().transactions().transaction(digest.hex()).call()
        except stellar_errors.NotFoundError:
            return False
        return True

    def _past_bounds(self, transaction: bytes) -> bool:
        """Tells whether this node's Horizon closed a ledger after the transaction's bounds."""
        return self._ledger_time_s() > self.transaction_expiry_ms(transaction) // 1000

    def _proven_expired(self, transaction: bytes) -> bool:
        # Stellar never applies a transaction after its time bounds: once a ledger closed
        # after them without it, it failed for good (every node asks its own Horizon).
        if not self._past_bounds(transaction):
            return False
        return not self._in_ledger(self.transaction_hash(transaction))

    def expired_outcomes(
        self, pending: Mapping[int, bytes], now_ms: int
    ) -> tuple[WithdrawalOutcome, ...]:
        expired = [
            (withdrawal_id, tx)
            for withdrawal_id, tx in sorted(pending.items())
            if tx and self.transaction_expiry_ms(tx) < now_ms and self._proven_expired(tx)
        ]
        return tuple(
            WithdrawalOutcome(w, PaymentResult.FAILED, self.transaction_hash(tx))
            for w, tx in expired
        )

    def validate_expired(self, transaction: bytes) -> None:
        """Raises NotYetConfirmed while this node's Horizon has not closed a ledger after the
        bounds (it lags alpha's: it will), BadRequest if the ledger holds the transaction
        (applied or failed: the expiry contradicts it)."""
        if not self._past_bounds(transaction):
            raise NotYetConfirmed(
                f"{self.provider_id}: Horizon has not closed a ledger after the withdrawal"
                " expired yet"
            )
        if self._in_ledger(self.transaction_hash(transaction)):
            raise BadRequest(f"{self.provider_id}: the ledger holds the transaction, not expired")

    def withdrawal_accepted(self, transaction: bytes) -> None:
        self.sequence = self._decode(transaction).transaction.sequence

    # --- signer rotation -------------------------------------------------------------------

    def rotation_envelope(
        self,
        sequence: int,
        old: tuple[bytes, ...],
        new: tuple[bytes, ...],
        max_time_s: int,
    ) -> TransactionEnvelope:
        """Returns the setOptions transaction that gives the vault the signers `new` (weight
        1 each, in key order), removes those of `old` not in `new` (weight 0), and sets every
        threshold to the majority of `new` with the master key at weight 0: what the old
        signers' majority signs (the vault's thresholds in force decide)."""
        builder = TransactionBuilder(
            Account(self.settings.vault, sequence - 1), self.passphrase, base_fee=BASE_FEE
        )
        builder.add_time_bounds(0, max_time_s)
        # Valid on any vault sequence below its own: a withdrawal built before the update
        # that expired unapplied leaves a gap, which must not make the rotation fail too (it
        # is submitted only once those withdrawals were submitted or expired).
        builder.set_min_sequence_number(0)
        for key in sorted(set(new) - set(old)):
            builder.append_set_options_op(signer=Signer.ed25519_public_key(key, 1))
        for key in sorted(set(old) - set(new)):
            builder.append_set_options_op(signer=Signer.ed25519_public_key(key, 0))
        threshold = majority(len(new))
        builder.append_set_options_op(
            master_weight=0,
            low_threshold=threshold,
            med_threshold=threshold,
            high_threshold=threshold,
        )
        return builder.build()

    def build_rotation(
        self, old: tuple[bytes, ...], new: tuple[bytes, ...], version: int, valid_until_ms: int
    ) -> bytes:
        """Returns the rotation from the vault signers `old` to `new` on the vault's next
        sequence (after the withdrawals alpha built before it), valid until `valid_until_ms`
        (Stellar's time bounds are whole seconds: rounded down)."""
        if self.sequence is None:
            raise InvalidState(f"{self.provider_id}: the vault's sequence is not loaded yet")
        envelope = self.rotation_envelope(self.sequence + 1, old, new, valid_until_ms // 1000)
        return base64.b64decode(envelope.to_xdr())

    def validate_rotation(
        self,
        old: tuple[bytes, ...],
        new: tuple[bytes, ...],
        version: int,
        timestamp_ms: int,
        transaction: bytes,
    ) -> None:
        """Raises BadRequest unless `transaction` rotates the vault from `old` to exactly
        `new`, unsigned, valid after `timestamp_ms` for at most ROTATION_TTL_MS; its sequence
        is alpha's to choose (a wrong one only makes it fail)."""
        envelope = self._decode(transaction)
        tx = envelope.transaction
        bounds = tx.preconditions.time_bounds if tx.preconditions else None
        if bounds is None or envelope.signatures:
            raise BadRequest(f"{self.provider_id}: the rotation needs time bounds, no signatures")
        # Whole seconds: the bound is the update's validity rounded down.
        max_time_ms = bounds.max_time * 1000
        if not timestamp_ms < max_time_ms + 1000 or max_time_ms > timestamp_ms + ROTATION_TTL_MS:
            raise BadRequest(f"{self.provider_id}: the rotation's validity is out of bounds")
        expected = self.rotation_envelope(tx.sequence, old, new, bounds.max_time)
        if expected.to_xdr() != envelope.to_xdr():
            raise BadRequest(f"{self.provider_id}: the transaction is not this rotation")

    def sign_rotation(self, transaction: bytes) -> TxSignature:
        return self._sign(transaction)

    def rotation_signature_valid(
        self, transaction: bytes, signature: TxSignature, old: tuple[bytes, ...]
    ) -> bool:
        return self._signed_by(transaction, signature, old)

    def rotation_expiry_ms(self, transaction: bytes) -> int:
        return self.transaction_expiry_ms(transaction)

    def submit_rotation(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        """Submits the rotation; a vault that already answers to this instance's signers (the
        settings in force: rotated by a predecessor or by hand) is no refusal. Either way the
        vault's signers, and its sequence, are read again at the next preparation."""
        try:
            self.submit_withdrawal(transaction, signatures)
        except PaymentSubmitError:
            if signers_mismatch(self.vault_signers(), self.signers, self.threshold) is None:
                return
            raise
        finally:
            self.vault_recheck_now()
