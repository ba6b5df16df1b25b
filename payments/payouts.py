"""Alpha's payout desk: builds withdrawal transactions, gathers the auditors' signatures,
submits with a majority, retries, and cancels what expired (the I/O around
`payments.core.payouts.PayoutBook`).

Alpha's node holds it as its transaction builder (`quanta.core.processors.withdrawal.
TransactionBuilder`): it calls `build` for the apex and timestamp the withdrawal's quantum gets
(`Engine.next_stamp`, so the transaction is in the quantum) and `accepted` once it executed.
The engine worker calls `offer` for each auditor result with a transaction signature, and
`tick` periodically. Provider I/O runs in threads; the book is only touched on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from channels.db import database_sync_to_async

from payments.core.payouts import Payout, PayoutBook
from payments.core.provider import PaymentProvider, PaymentSubmitError
from payments.core.rotation import VaultRotation
from quanta.core.config import Config
from quanta.core.keys import KeyPair
from quanta.core.processors.settings import ROTATION_TTL_MS, rotations_called_for
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.status import BadRequest, ConstellationError, InvalidState, StatusCode
from quanta.core.xdr.schema import NodeState, TxSignature, VaultRotationTx, WithdrawalRequest

logger = logging.getLogger(__name__)

Providers = Callable[[], dict[str, PaymentProvider]]

ROTATIONS_MAX = 16
"""Vault rotations waiting for signatures or submission (one per provider and update)."""

EARLY_APEXES_MAX = 4_096
"""Withdrawals whose auditor signatures may wait for their payout to be restored."""

TEST_HOLD_PAYOUTS_ENV = "CONSTELLATION_TEST_HOLD_PAYOUTS"
"""TEST-ONLY FAULT HOOK, inert unless this variable is set (never in production): the path of
a file; while that file exists, alpha's payout desk submits and cancels nothing (it still
collects signatures), so a test can kill -9 alpha between the signatures' collection and the
submission (tests/cluster/test_payout_durability.py). Removing the file resumes payouts."""

_test_hold_payouts = os.environ.get(TEST_HOLD_PAYOUTS_ENV)


class RotationStore(Protocol):
    """Where alpha keeps its pending rotations across restarts (`payments.rotations`): a
    removed auditor signs a rotation once, with its last result, and never again."""

    def save(self, rotation: VaultRotation, signatures: list[TxSignature]) -> None:
        """Writes the rotation with the signatures collected so far."""

    def delete(self, apex: int, provider: str) -> None:
        """Forgets the rotation of `provider` of quantum `apex`."""


def _test_payouts_held() -> bool:
    """Tells whether the test-only hook above holds payouts now (False unless set)."""
    return _test_hold_payouts is not None and os.path.exists(_test_hold_payouts)


class PayoutDesk:
    """What alpha's engine worker does for withdrawals beyond executing them."""

    def __init__(
        self,
        providers: Providers,
        now_ms: Callable[[], int],
        rotation_store: RotationStore | None = None,
    ) -> None:
        """Uses the worker's current providers and clock, and keeps its pending rotations
        in `rotation_store` (None: in memory only)."""
        self.providers = providers
        self.now_ms = now_ms
        self.book = PayoutBook()
        # Auditor signatures of withdrawals the book does not hold yet: after a restart the
        # auditors sign the recovered quanta again before the first tick restores their
        # payouts from the state, and dropping those signatures left such a payout unpaid
        # until it expired. Checked when the payout is restored; bounded (oldest dropped).
        self._early: dict[int, dict[bytes, TxSignature]] = {}
        # Vault rotations of settings updates, a book per provider (by the update's apex),
        # their signatures by the old signers: submitted once the update is final and
        # persisted. `_rotation_of` by (provider, apex).
        self.rotations: dict[str, PayoutBook] = {}
        self._rotation_of: dict[tuple[str, int], VaultRotation] = {}
        # Rotations whose row is behind memory, and those to delete; written by
        # `rotations_persist` before anything is submitted (each tick, and at once after an
        # update), so a majority that could be submitted is one that survives a restart.
        self._rotation_store = rotation_store
        self._rotations_dirty: set[tuple[str, int]] = set()
        self._rotations_gone: set[tuple[str, int]] = set()
        self._rotations_lock: asyncio.Lock | None = None  # the tick and an update both write

    def _provider(self, provider_id: str) -> PaymentProvider:
        provider = self.providers().get(provider_id)
        if provider is None:
            raise BadRequest(f"provider {provider_id!r} is not available")
        return provider

    def build(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        """Returns the transaction paying `request` in quantum `apex` at `timestamp_ms`;
        raises a ConstellationError if the provider cannot build it."""
        provider = self._provider(request.provider)
        try:
            return provider.build_withdrawal(apex, timestamp_ms, request)
        except ConstellationError:
            raise
        except Exception:  # A provider's bug must not stop the engine.
            logger.exception("building withdrawal transaction failed")
            text = "the provider could not build the payout"
            raise ConstellationError(StatusCode.INTERNAL_ERROR, text) from None

    def accepted(self, apex: int, request: WithdrawalRequest, transaction: bytes) -> None:
        """Registers the payout of withdrawal `apex`, which executed (alpha signs it at once)."""
        provider = self._provider(request.provider)
        provider.withdrawal_accepted(transaction)
        expiry = provider.transaction_expiry_ms(transaction)
        self.book.add(apex, request.provider, transaction, expiry)
        self.book.add_signature(apex, provider.sign_withdrawal(transaction))

    def offer(self, apex: int, signature: TxSignature) -> None:
        """Keeps an auditor's transaction signature if it is valid."""
        payout = self.book.payouts.get(apex)
        if payout is None:
            self._keep_early(apex, signature)
            return
        provider = self.providers().get(payout.provider)
        if provider is not None and provider.signature_valid(payout.transaction, signature):
            self.book.add_signature(apex, signature)

    # --- vault rotations ---------------------------------------------------------------------

    def build_rotations(
        self, prev: Config, new: Config, timestamp_ms: int
    ) -> tuple[VaultRotationTx, ...]:
        """Returns the rotation of each vault the settings update from `prev` to `new` calls
        for, built by its provider for the update's quantum at `timestamp_ms` (alpha's
        `RotationBuilder`): refused (InvalidState) while an earlier one has not applied, as
        its old signers would then sign for a vault that does not know them yet."""
        called = rotations_called_for(prev, new)
        if called:
            self.require_no_rotation_pending()
        valid_until_ms = timestamp_ms + ROTATION_TTL_MS
        version = int(new.settings.version)
        old, signers = prev.auditor_keys, new.auditor_keys
        return tuple(
            VaultRotationTx(
                provider_id,
                self._provider(provider_id).build_rotation(old, signers, version, valid_until_ms),
            )
            for provider_id in called
        )

    async def rotations_recover(
        self, prev: Config, apex: int, rotations: tuple[VaultRotationTx, ...], keypair: KeyPair
    ) -> list[VaultRotation]:
        """Registers again the rotations of the settings update at `apex` (the latest) whose
        vault still answers to other signers and that alpha holds no row of: a kill of alpha
        between its execution of the update and the row's write lost them. Alpha signs again;
        the old signers still in the constellation sign again when it sends them the update's
        quantum again (`signatures_wanted`)."""
        missing = []
        for carried in rotations:
            provider = self.providers().get(carried.provider)
            if provider is None or (carried.provider, apex) in self._rotation_of:
                continue
            await database_sync_to_async(provider.check_vault)()
            if provider.vault_mismatch is not None:  # a vault not opened yet is none
                missing.append(carried)
        if missing:
            logger.warning("vault rotations of quantum %d recovered from the chain", apex)
        return self.rotation_begin(prev, apex, tuple(missing), keypair)

    async def prepare_rotating(self, prev: Config, new: Config) -> None:
        """Prepares the providers whose vault the update from `prev` to `new` rotates and that
        need it (network I/O, in threads): a Stellar rotation is built on the vault's sequence,
        which `prepare` loads, and an alpha designate executes its update before its first
        payout tick."""
        for provider_id in rotations_called_for(prev, new):
            provider = self.providers().get(provider_id)
            if provider is not None and provider.needs_preparation():
                await self._prepare(provider_id, provider)

    def rotations_check(self, prev: Config, new: Config) -> None:
        """Raises InvalidState if the update from `prev` to `new` calls for vault rotations
        while an earlier one has not applied (see `build_rotations`)."""
        if rotations_called_for(prev, new):
            self.require_no_rotation_pending()

    def require_no_rotation_pending(self) -> None:
        """Raises InvalidState, naming it, while a vault rotation has not applied yet."""
        for provider_id, apex in sorted(self._rotation_of):
            raise InvalidState(
                f"the vault rotation of {provider_id} (settings update at quantum {apex}) has"
                " not applied yet: change the auditors again once it has"
            )

    def rotation_begin(
        self, prev: Config, apex: int, rotations: tuple[VaultRotationTx, ...], keypair: KeyPair
    ) -> list[VaultRotation]:
        """Registers the vault rotations the settings update at `apex` carries, signed by
        alpha if it was an old signer; the old auditors' signatures come with their results
        for that quantum (`rotation_offer`)."""
        begun = []
        for carried in rotations:
            provider = self._provider(carried.provider)
            transaction = carried.transaction
            expiry_ms = provider.rotation_expiry_ms(transaction)
            rotation = VaultRotation(
                apex, carried.provider, transaction, prev.auditor_keys, prev.majority, expiry_ms
            )
            self._rotation_add(rotation)
            if keypair.public_key in prev.auditor_keys:
                self._rotation_sign(rotation, provider.sign_rotation(transaction))
            logger.info("vault rotation of %s at quantum %d: built", rotation.provider, apex)
            begun.append(rotation)
        return begun

    def _rotation_add(self, rotation: VaultRotation) -> Payout:
        key = (rotation.provider, rotation.apex)
        if key not in self._rotation_of and len(self._rotation_of) >= ROTATIONS_MAX:
            oldest = min(self._rotation_of, key=lambda k: k[1])
            self._rotation_drop(oldest)
            logger.error("vault rotation of %s at quantum %d dropped (too many)", *oldest)
        book = self.rotations.setdefault(rotation.provider, PayoutBook())
        payout = book.add(
            rotation.apex, rotation.provider, rotation.transaction, rotation.expiry_ms
        )
        payout.threshold = rotation.old_threshold
        self._rotation_of[key] = rotation
        self._rotations_dirty.add(key)
        return payout

    def _rotation_sign(self, rotation: VaultRotation, signature: TxSignature) -> None:
        self.rotations[rotation.provider].add_signature(rotation.apex, signature)
        self._rotations_dirty.add((rotation.provider, rotation.apex))

    def _rotation_signature_valid(self, rotation: VaultRotation, signature: TxSignature) -> bool:
        provider = self.providers().get(rotation.provider)
        return provider is not None and provider.rotation_signature_valid(
            rotation.transaction, signature, rotation.old_signers
        )

    def rotations_restore(self, pending: list[tuple[VaultRotation, list[TxSignature]]]) -> None:
        """Puts back the rotations a predecessor persisted, with their signatures (each
        checked again): submitted like any other once due (a vault rotated meanwhile, by
        that predecessor or by hand, is no refusal: `submit_rotation`)."""
        for rotation, signatures in pending[-ROTATIONS_MAX:]:
            payout = self._rotation_add(rotation)
            for signature in signatures:
                if self._rotation_signature_valid(rotation, signature):
                    self._rotation_sign(rotation, signature)
            self._rotations_dirty.discard((rotation.provider, rotation.apex))
            logger.info(
                "vault rotation of %s at quantum %d: restored with %d of %d old signatures",
                rotation.provider,
                rotation.apex,
                len(payout.signatures),
                rotation.old_threshold,
            )

    async def rotations_persist(self) -> None:
        """Writes the rotations changed since the last call and deletes those gone."""
        if self._rotations_lock is None:
            self._rotations_lock = asyncio.Lock()
        async with self._rotations_lock:
            await self._rotations_write()

    async def _rotations_write(self) -> None:
        store = self._rotation_store
        if store is None:
            self._rotations_dirty.clear()
            self._rotations_gone.clear()
            return
        for provider_id, apex in sorted(self._rotations_gone):
            await database_sync_to_async(store.delete)(apex, provider_id)
            self._rotations_gone.discard((provider_id, apex))
        for key in sorted(self._rotations_dirty):
            rotation = self._rotation_of.get(key)
            if rotation is not None:
                payout = self.rotations[rotation.provider].payouts[rotation.apex]
                signatures = list(payout.signatures.values())
                await database_sync_to_async(store.save)(rotation, signatures)
            self._rotations_dirty.discard(key)

    def _rotation_drop(self, key: tuple[str, int]) -> None:
        provider_id, apex = key
        self._rotation_of.pop(key, None)
        book = self.rotations.get(provider_id)
        if book is not None:
            book.payouts.pop(apex, None)
        self._rotations_dirty.discard(key)
        self._rotations_gone.add(key)

    def rotation_offer(self, apex: int, signature: TxSignature) -> bool:
        """Keeps an old signer's valid signature of a rotation of quantum `apex` (it proves
        itself: whoever relays it); returns whether it is one."""
        for (provider_id, rotation_apex), rotation in self._rotation_of.items():
            if rotation_apex != apex:
                continue
            payout = self.rotations[provider_id].payouts[apex]
            if signature.signer in payout.signatures:
                if payout.signatures[signature.signer] == signature:
                    return True
                continue
            if self._rotation_signature_valid(rotation, signature):
                self._rotation_sign(rotation, signature)
                return True
        return False

    async def _rotate(self, now: int, persisted_apex: int) -> None:
        """Submits each rotation signed by a majority of the old signers once its update is
        final and persisted at alpha, after the payouts built before it (old signers) were
        submitted or expired; forgets those applied, refused for good or expired. Only what
        is persisted is submitted: a restart then finds every rotation it might have sent."""
        await self.rotations_persist()
        for provider_id, book in self.rotations.items():
            for rotation in book.due(0, now, persisted_apex=persisted_apex):
                if self.book.waiting_before(rotation.withdrawal_id, provider_id, now):
                    continue
                await self._isolated(self._submit_rotation, rotation)
        for provider_id, book in self.rotations.items():
            for apex, rotation in list(book.payouts.items()):
                if rotation.submitted or rotation.gave_up or now >= rotation.expiry_ms:
                    if not rotation.submitted:
                        logger.error(
                            "vault rotation of %s at quantum %d not applied (%d of %d old"
                            " signatures): the vault keeps its signers; rotate it with"
                            " `manage.py vault_rotate`",
                            provider_id,
                            apex,
                            len(rotation.signatures),
                            rotation.threshold,
                        )
                    self._rotation_drop((provider_id, apex))
        await self.rotations_persist()

    async def _submit_rotation(self, rotation: Payout) -> None:
        provider = self._provider(rotation.provider)
        signatures = list(rotation.signatures.values())
        book = self.rotations[rotation.provider]
        try:
            await database_sync_to_async(provider.submit_rotation)(rotation.transaction, signatures)
        except PaymentSubmitError as error:
            logger.warning(
                "vault rotation of %s at quantum %d refused: %s",
                rotation.provider,
                rotation.withdrawal_id,
                error,
            )
            book.refused(rotation, self.now_ms(), permanent=error.permanent)
            return
        book.submitted(rotation)
        logger.info("vault rotation of %s applied", rotation.provider)

    async def tick(
        self, state: ConstellationState, node_state: NodeState, persisted_apex: int
    ) -> None:
        """Prepares providers, restores, submits what is due and cancels what expired (only
        while alpha, in `node_state`, is Ready). Only withdrawals at or below
        `persisted_apex` (every quantum up to it final and on alpha's disk) are paid out."""
        # Before anything else: the signatures of a rotation are kept even while alpha is not
        # Ready (a removed auditor's last result may come while it is Rising).
        await self.rotations_persist()
        if node_state != NodeState.READY:
            return
        for provider_id, provider in list(self.providers().items()):
            if provider.needs_preparation():  # New after a settings update, too.
                await self._prepare(provider_id, provider)
        pending = dict(state.withdrawals)
        self.book.forget_settled(pending)
        self._restore(pending)
        if _test_payouts_held():
            return
        now = self.now_ms()
        threshold = state.require_config().majority
        # One payout's failure must not stop the others: each is tried on its own, and an
        # unexpected error (a provider bug, a database error) is retried later like a refusal.
        for payout in self.book.due(threshold, now, persisted_apex=persisted_apex):
            await self._isolated(self._submit, payout)
        for payout in self.book.expired(now):
            await self._isolated(self._cancel, payout)
        await self._rotate(now, persisted_apex)

    def signatures_wanted(self, state: ConstellationState, persisted_apex: int) -> list[int]:
        """Returns the withdrawals (ids = apexes) and settings updates whose quanta alpha
        sends the auditors again so that they sign their transactions again: final and
        persisted, but short of a majority of transaction signatures (lost with a restart of
        alpha; a rotation's old signers still in the constellation sign it again)."""
        if state.config is None:
            return []
        threshold = state.config.majority
        now = self.now_ms()
        wanted = self.book.short_of(threshold, now, persisted_apex=persisted_apex)
        for book in self.rotations.values():  # each with its old majority (`threshold` 0)
            wanted += book.short_of(0, now, persisted_apex=persisted_apex)
        return sorted(set(wanted))

    async def _prepare(self, provider_id: str, provider: PaymentProvider) -> None:
        """Prepares one provider (it checks its vault's signers, `vault_mismatch`); one that
        raises is logged and tried again next tick, the others' payouts go on: a vault of
        other signers used to raise here and stop every payout and cancellation for good."""
        try:
            await database_sync_to_async(provider.prepare)()
        except Exception:
            logger.exception("preparing provider %s failed; will retry", provider_id)
            return
        if provider.vault_mismatch is not None:
            logger.error("provider %s: %s", provider_id, provider.vault_mismatch)

    async def _isolated(self, step: Callable[[Payout], Awaitable[None]], payout: Payout) -> None:
        try:
            await step(payout)
        except Exception:
            logger.exception(
                "withdrawal %d: %s failed; will retry", payout.withdrawal_id, step.__name__
            )
            self.book.refused(payout, self.now_ms(), permanent=False)

    def _keep_early(self, apex: int, signature: TxSignature) -> None:
        if apex not in self._early and len(self._early) >= EARLY_APEXES_MAX:
            del self._early[next(iter(self._early))]
        self._early.setdefault(apex, {})[signature.signer] = signature

    def _restore(self, pending: dict[int, Withdrawal]) -> None:
        """Puts back the payouts of pending withdrawals the book lost with a restart, signed
        by alpha again and by the auditor signatures that came before them: the auditors sign
        the quanta they re-send, so a recovered withdrawal is paid, not left to expire."""
        for withdrawal_id, withdrawal in pending.items():
            provider = self.providers().get(withdrawal.provider)
            if withdrawal_id in self.book.payouts or provider is None or not withdrawal.transaction:
                continue
            transaction = withdrawal.transaction
            try:
                own = provider.sign_withdrawal(transaction)
            except ConstellationError as error:  # Its vault answers to other signers.
                logger.warning("withdrawal %d not restored: %s", withdrawal_id, error)
                continue
            expiry = provider.transaction_expiry_ms(transaction)
            self.book.add(withdrawal_id, withdrawal.provider, transaction, expiry)
            self.book.add_signature(withdrawal_id, own)
            for signature in self._early.pop(withdrawal_id, {}).values():
                if provider.signature_valid(transaction, signature):
                    self.book.add_signature(withdrawal_id, signature)
        for apex in [a for a in self._early if a not in pending]:
            del self._early[apex]  # settled or unknown: nothing will take them

    async def _submit(self, payout: Payout) -> None:
        provider = self._provider(payout.provider)
        signatures = list(payout.signatures.values())
        try:
            await database_sync_to_async(provider.submit_withdrawal)(payout.transaction, signatures)
        except PaymentSubmitError as error:
            logger.warning("withdrawal %d refused: %s", payout.withdrawal_id, error)
            self.book.refused(payout, self.now_ms(), permanent=error.permanent)
            return
        self.book.submitted(payout)
        logger.info("withdrawal %d submitted", payout.withdrawal_id)

    async def _cancel(self, payout: Payout) -> None:
        provider = self._provider(payout.provider)
        done = await database_sync_to_async(provider.cancel_expired)(
            payout.transaction, self.now_ms()
        )
        if done:
            self.book.submitted(payout)  # Nothing more to send: the notification settles it.
            logger.info("withdrawal %d expired unpaid", payout.withdrawal_id)
