"""The payment-provider interface: how funds enter and leave the constellation.

A provider watches its vault on an external network from a cursor and reports what it saw
(payments in, withdrawals paid out or failed) as the items of a DepositQuantum; every node
validates such a notification against its own view before executing it. Withdrawals are
built by alpha's provider (the transaction travels inside the WithdrawalQuantum, so the
engine stays deterministic), validated and signed by every node's provider, and submitted by
alpha once a majority signed. A transaction carries its own expiry, derived from its
quantum's timestamp; after it, the provider makes the failure visible on the external network
so every auditor can check it.

Provider id: `{type}-{name}` (SPEC.md). Secrets and endpoints stay in the node's own
configuration (`options`), never in the constellation settings.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass

from quanta.core.keys import KeyPair, encode_public_key
from quanta.core.signatures import majority
from quanta.core.status import BadRequest, InvalidState, NotYetConfirmed
from quanta.core.xdr.schema import (
    DepositItem,
    DepositQuantum,
    PaymentResult,
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

    def keeping(self, pending: Mapping[int, bytes]) -> Notification:
        """Returns the notification with only the outcomes of pending withdrawals whose
        transaction hash (`pending`: id -> hash) matches: anyone can put entries on an
        external network, and the engine refuses outcomes of withdrawals it does not know."""
        kept = tuple(o for o in self.withdrawals if pending.get(o.withdrawal_id) == o.tx_hash)
        return Notification(self.cursor, self.items, kept)


def notification_prefix(seen: Notification, body: DepositQuantum) -> bool:
    """Tells whether what a node saw is the beginning of alpha's notification (a view that
    has not caught up yet, as opposed to one that contradicts it)."""
    items, outcomes = len(seen.items), len(seen.withdrawals)
    return body.items[:items] == seen.items and body.withdrawals[:outcomes] == seen.withdrawals


def signers_mismatch(
    found: tuple[tuple[bytes, ...], int] | None, signers: tuple[bytes, ...], threshold: int
) -> str | None:
    """Returns why a vault's signers and threshold on the network (`found`, None: no such
    vault) are not the ones the settings in force want, None if they are."""
    if found is None:
        return "the vault does not exist on the network"
    keys, vault_threshold = found
    if set(keys) != set(signers) or vault_threshold != threshold:
        names = sorted(encode_public_key(k)[:8] for k in keys)
        wanted = sorted(encode_public_key(k)[:8] for k in signers)
        return (
            f"the vault's signers {names} (threshold {vault_threshold}) are not the settings'"
            f" {wanted} (threshold {threshold})"
        )
    return None


TRANSACTION_TTL_MS = 60_000
"""How long a built withdrawal transaction stays valid after its quantum's timestamp."""

TRANSACTION_TTL_MAX_MS = 3_600_000
"""The longest validity an auditor accepts (a node may configure a shorter TTL)."""


class PaymentProvider(abc.ABC):
    """One configured provider of one node."""

    def __init__(
        self,
        settings: ProviderSettings,
        keypair: KeyPair,
        signers: tuple[bytes, ...],
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Binds the provider to its settings, this node's key (its vault signer key), the
        vault's signers (the constellation's auditors) and this node's own options."""
        self.settings = settings
        self.provider_id = f"{settings.provider_type}-{settings.name}"
        self.keypair = keypair
        self.signers = signers
        self.threshold = majority(len(signers))
        self.options = dict(options or {})
        # How long built withdrawal transactions stay valid: this node's option `ttl_ms`,
        # bounded by what every auditor accepts.
        self.ttl_ms = min(
            int(self.options.get("ttl_ms", TRANSACTION_TTL_MS)), TRANSACTION_TTL_MAX_MS
        )
        # Why the vault on the network does not answer to the settings in force (None: it
        # does); known once `check_vault` ran (at alpha's `prepare`, at an auditor's first
        # signature). Providers are built anew with every settings change, so it is checked
        # at start and after every change of the auditors; a mismatch is checked again every
        # VAULT_RECHECK_MS (the vault may be rotated meanwhile).
        self.vault_mismatch: str | None = None
        self._vault_checked = False
        self._vault_checked_ms = 0

    # --- the vault's signers -----------------------------------------------------------------

    def vault_signers(self) -> tuple[tuple[bytes, ...], int] | None:
        """Returns the vault's signers and threshold as the network has them (None: no such
        vault). Network I/O."""
        raise NotImplementedError(f"{self.provider_id} cannot read its vault's signers")

    VAULT_RECHECK_MS = 5_000
    """How often a vault found mismatched is checked again."""

    def vault_recheck_due(self) -> bool:
        """Tells whether the vault was found mismatched long enough ago to look again."""
        elapsed_ms = time.monotonic_ns() // 1_000_000 - self._vault_checked_ms
        return self.vault_mismatch is not None and elapsed_ms >= self.VAULT_RECHECK_MS

    def check_vault(self) -> str | None:
        """Compares the vault's signers and threshold on the network with the settings in
        force (once per provider instance, again while mismatched every VAULT_RECHECK_MS);
        returns and keeps the mismatch, if any."""
        if not self._vault_checked or self.vault_recheck_due():
            found = self.vault_signers()
            if found is None:
                # Not opened yet (the local ledger's opens on alpha's first use): nothing
                # to compare, nothing signed for it either way; checked again next time.
                return "the vault does not exist on the network yet"
            self.vault_mismatch = signers_mismatch(found, self.signers, self.threshold)
            self._vault_checked = True
            self._vault_checked_ms = time.monotonic_ns() // 1_000_000
        return self.vault_mismatch

    def require_vault_checked(self) -> None:
        """Raises InvalidState unless the vault was checked and answers to the settings in
        force (no I/O: alpha builds on its engine's path; its `prepare` checks)."""
        if not self._vault_checked:
            raise InvalidState(f"{self.provider_id}: the vault's signers are not checked yet")
        if self.vault_mismatch is not None:
            raise InvalidState(f"{self.provider_id} pays nothing out: {self.vault_mismatch}")

    def vault_recheck_now(self) -> None:
        """Makes the next `check_vault` of a mismatched vault look at the network again,
        without waiting VAULT_RECHECK_MS (a rotation was applied)."""
        self._vault_checked_ms = -self.VAULT_RECHECK_MS

    def require_vault_in_force(self) -> None:
        """Raises InvalidState if the vault does not answer to the settings in force: this
        node then signs nothing for this provider (its signature would serve another set).
        A vault found mismatched is looked at again first: the constellation's rotation may
        have been applied since (alpha builds a withdrawal as soon as it sees it applied)."""
        if self.vault_mismatch is not None:
            self.vault_recheck_now()
        mismatch = self.check_vault()
        if mismatch is not None:
            raise InvalidState(f"{self.provider_id} refuses to sign: {mismatch}")

    # --- deposits --------------------------------------------------------------------------

    @abc.abstractmethod
    def notification_after(self, cursor: str, now_ms: int) -> Notification:
        """Returns what the vault saw after `cursor` that is older than the submit delay."""

    def pending_hashes(self, pending: Mapping[int, bytes]) -> dict[int, bytes]:
        """Returns id -> transaction hash of pending withdrawals (id -> transaction)."""
        return {w: self.transaction_hash(tx) for w, tx in pending.items() if tx}

    def validate_notification(
        self, body: DepositQuantum, prev_cursor: str, pending: Mapping[int, bytes]
    ) -> None:
        """Raises a ConstellationError unless `body` is exactly what this node sees after
        `prev_cursor` up to the body's cursor, given its pending withdrawals (id ->
        transaction), followed only by failures of expired ones the network proves.

        Raises NotYetConfirmed instead while this node's view has not reached the body's
        cursor but agrees with the body as far as it goes (its network lags alpha's)."""
        seen = self.notification_between(prev_cursor, body.cursor)
        seen = seen.keeping(self.pending_hashes(pending))
        count = len(seen.withdrawals)
        if self.compare_cursors(seen.cursor, body.cursor) < 0 and notification_prefix(seen, body):
            raise NotYetConfirmed(
                f"{self.provider_id} has seen the vault up to {seen.cursor!r}, not yet to"
                f" {body.cursor!r}"
            )
        if (seen.cursor, seen.items, seen.withdrawals) != (
            body.cursor,
            body.items,
            body.withdrawals[:count],
        ):
            raise BadRequest(f"{self.provider_id}: the notification does not match the vault")
        for outcome in body.withdrawals[count:]:
            transaction = pending.get(outcome.withdrawal_id, b"")
            if (
                not transaction
                or outcome.result != PaymentResult.FAILED
                or outcome.tx_hash != self.transaction_hash(transaction)
            ):
                raise BadRequest(f"{self.provider_id}: unexpected withdrawal outcome")
            self.validate_expired(transaction)

    def expired_outcomes(
        self, pending: Mapping[int, bytes], now_ms: int
    ) -> tuple[WithdrawalOutcome, ...]:
        """Returns FAILED outcomes of pending withdrawals (id -> transaction) the network
        proves can never apply, for networks whose vault stream does not show such failures
        (the local ledger shows them as cancellations: none here)."""
        return ()

    def validate_expired(self, transaction: bytes) -> None:
        """Raises a ConstellationError unless the network proves the transaction can never
        apply (see `expired_outcomes`)."""
        raise BadRequest(f"{self.provider_id}: failures come through the vault's stream")

    @abc.abstractmethod
    def notification_between(self, prev_cursor: str, cursor: str) -> Notification:
        """Returns what the vault saw after `prev_cursor` up to `cursor` (no delay)."""

    # --- withdrawals -----------------------------------------------------------------------

    def require_fee(self, request: WithdrawalRequest) -> None:
        """Raises BadRequest unless the request's fee reaches the minimum the settings state
        for its asset (`ProviderAsset.withdrawal_fee_min`): alpha checks it when it builds the
        transaction and every auditor when it validates it, so all judge alike."""
        for item in self.settings.assets:
            if item.asset == request.asset and request.fee < item.withdrawal_fee_min:
                raise BadRequest(
                    f"{self.provider_id}: a withdrawal of {request.asset} needs a fee of at"
                    f" least {item.withdrawal_fee_min}, got {request.fee}"
                )

    @abc.abstractmethod
    def build_withdrawal(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        """Returns the transaction that pays withdrawal `apex` out of the vault."""

    @abc.abstractmethod
    def validate_withdrawal(
        self, apex: int, timestamp_ms: int, request: WithdrawalRequest, transaction: bytes
    ) -> None:
        """Raises a ConstellationError unless `transaction` pays exactly `request`."""

    @abc.abstractmethod
    def sign_withdrawal(self, transaction: bytes) -> TxSignature:
        """Returns this node's signature of the transaction."""

    @abc.abstractmethod
    def signature_valid(self, transaction: bytes, signature: TxSignature) -> bool:
        """Tells whether `signature` is a vault signer's valid signature of the transaction."""

    @abc.abstractmethod
    def submit_withdrawal(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        """Submits a transaction signed by a majority; raises PaymentSubmitError if refused."""

    @abc.abstractmethod
    def transaction_hash(self, transaction: bytes) -> bytes:
        """Returns the hash the network reports for the transaction once applied."""

    @abc.abstractmethod
    def transaction_expiry_ms(self, transaction: bytes) -> int:
        """Returns the time (ms) after which the transaction can no longer be applied."""

    @abc.abstractmethod
    def cancel_expired(self, transaction: bytes, now_ms: int) -> bool:
        """Makes an expired, never-applied transaction's failure visible on the network;
        returns True once nothing more is to be done for it."""

    # --- vault rotations (`payments.core.rotation`) --------------------------------------------

    def build_rotation(
        self, old: tuple[bytes, ...], new: tuple[bytes, ...], version: int, valid_until_ms: int
    ) -> bytes:
        """Returns the transaction that gives the vault the signers `new` (threshold: their
        majority) in place of `old`, for settings `version`, valid until `valid_until_ms`
        (alpha builds it, with the provider instance of the settings before the update)."""
        raise InvalidState(f"{self.provider_id} cannot rotate its vault")

    def validate_rotation(
        self,
        old: tuple[bytes, ...],
        new: tuple[bytes, ...],
        version: int,
        timestamp_ms: int,
        transaction: bytes,
    ) -> None:
        """Raises a ConstellationError unless `transaction` is the rotation `build_rotation`
        makes for these signers and version, unsigned, valid after `timestamp_ms` for at most
        ROTATION_TTL_MS (every auditor checks alpha's this way; no network I/O)."""
        raise BadRequest(f"{self.provider_id} cannot rotate its vault")

    def sign_rotation(self, transaction: bytes) -> TxSignature:
        """Returns this node's signature of a rotation its engine validated (no vault check:
        the vault itself counts only the signers in force)."""
        raise InvalidState(f"{self.provider_id} cannot rotate its vault")

    def rotation_signature_valid(
        self, transaction: bytes, signature: TxSignature, old: tuple[bytes, ...]
    ) -> bool:
        """Tells whether `signature` is a valid signature of the rotation by one of `old`."""
        return False

    def rotation_expiry_ms(self, transaction: bytes) -> int:
        """Returns the time (ms) after which the rotation can no longer be applied."""
        raise BadRequest(f"{self.provider_id} cannot rotate its vault")

    def submit_rotation(self, transaction: bytes, signatures: list[TxSignature]) -> None:
        """Submits a vault rotation signed by a majority of the old signers; raises
        PaymentSubmitError if refused. A vault already answering to the rotation's signers
        (rotated by hand, or by a predecessor) is no refusal."""
        raise PaymentSubmitError(f"{self.provider_id} cannot rotate its vault", permanent=True)

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Does this provider's slow one-off setup (network I/O); alpha calls it in a thread."""

    def needs_preparation(self) -> bool:
        """Tells whether `prepare` has (again) something to do."""
        return False

    def withdrawal_accepted(self, transaction: bytes) -> None:  # noqa: B027 - optional hook
        """Takes note that the constellation accepted a transaction this node built."""

    @staticmethod
    def compare_cursors(left: str, right: str) -> int:
        """Returns -1, 0 or 1 as `left` is before, at or after `right` (numeric cursors)."""
        a, b = int(left or 0), int(right or 0)
        return (a > b) - (a < b)


class PaymentSubmitError(Exception):
    """The external network refused a transaction (`permanent`: retrying cannot help)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        """Keeps whether a retry could succeed."""
        super().__init__(message)
        self.permanent = permanent
