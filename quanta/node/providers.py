"""This node's payment providers, and the checks an auditor hands its engine through them.

The providers follow the settings in force: none before initialization, rebuilt when a
settings quantum executes. Each gets this node's key and its own options
(settings.PAYMENT_PROVIDERS, never part of the constellation settings). An auditor's engine
judges alpha's deposit notifications, withdrawal transactions and vault rotations through its
own providers (`deposit_validator`, `transaction_validator`, `rotation_validator`) and signs
each withdrawal's transaction and each rotation (`transaction_signer`, `rotation_signer`);
alpha builds them itself (`payments.payouts.PayoutDesk`). A provider
that fails for any other reason than a verdict (its network, its database) cannot confirm
yet: the check raises NotYetConfirmed, and the auditor tries again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from payments.core.provider import PaymentProvider
from payments.manager import providers_build
from quanta.core.auditor import RotationSigner, TransactionSigner
from quanta.core.config import Config
from quanta.core.keys import KeyPair
from quanta.core.processors.deposit import DepositValidator
from quanta.core.processors.settings import RotationValidator
from quanta.core.processors.withdrawal import TransactionValidator
from quanta.core.state import ConstellationState
from quanta.core.status import BadRequest, ConstellationError, InvalidState, NotYetConfirmed
from quanta.core.xdr.schema import (
    ConstellationQuantum,
    DepositQuantum,
    TxSignature,
    VaultRotationTx,
    WithdrawalQuantum,
    WithdrawalRequest,
)

logger = logging.getLogger(__name__)


def provider_verdict(provider_id: str, check: Callable[[], None]) -> None:
    """Runs a provider's check: its verdict (a ConstellationError: contradicts) or its wait
    (NotYetConfirmed) passes through; any other failure (network, database) means it could
    not look, so it cannot confirm yet."""
    try:
        check()
    except (ConstellationError, NotYetConfirmed):
        raise
    except Exception as error:
        logger.warning("provider %s could not check: %r", provider_id, error)
        raise NotYetConfirmed(f"provider {provider_id} could not check: {error!r}") from error


class NodeProviders:
    """The payment providers of the settings in force on `state`, for the node `keypair`."""

    def __init__(self, keypair: KeyPair, state: ConstellationState) -> None:
        """Builds the providers of the settings `state` holds now (none if uninitialized)."""
        self.keypair = keypair
        self.state = state
        self._providers = self._build()

    def rebuild(self) -> None:
        """Builds the providers anew (the settings changed)."""
        self._providers = self._build()

    def current(self) -> dict[str, PaymentProvider]:
        """Returns the providers by provider id."""
        # An auditor catching up from scratch meets the settings quantum and the payments
        # that need its providers in one batch: build them as soon as settings exist.
        if not self._providers and self.state.config is not None:
            self._providers = self._build()
        return self._providers

    def require(self, provider_id: str) -> PaymentProvider:
        """Returns one provider; raises BadRequest if this node does not run it."""
        provider = self.current().get(provider_id)
        if provider is None:
            raise BadRequest(f"provider {provider_id} is not available on this node")
        return provider

    def check_vaults(self) -> None:
        """Checks each provider's vault signers and thresholds against the settings in force
        (network I/O; at start and after every settings change). A provider that cannot
        look now is checked again at its first signature."""
        for provider_id, provider in self.current().items():
            try:
                provider.check_vault()
            except Exception as error:
                logger.warning("provider %s: the vault's signers unknown: %r", provider_id, error)

    def mismatches(self) -> dict[str, str]:
        """Returns why each provider's vault does not answer to the settings in force (only
        those checked and found so: this node signs nothing for them)."""
        return {
            provider_id: provider.vault_mismatch
            for provider_id, provider in sorted(self._providers.items())
            if provider.vault_mismatch is not None
        }

    def _build(self) -> dict[str, PaymentProvider]:
        config = self.state.config
        options = getattr(settings, "PAYMENT_PROVIDERS", {})
        return {} if config is None else providers_build(config, self.keypair, options)


def pending_transactions(state: ConstellationState, provider_id: str) -> dict[int, bytes]:
    """Returns id -> transaction of the withdrawals pending at a provider."""
    withdrawals = state.withdrawals
    return {w: item.transaction for w, item in withdrawals.items() if item.provider == provider_id}


def deposit_validator(providers: NodeProviders) -> DepositValidator:
    """Returns the auditor's check of every deposit notification against its own provider's
    view of the vault."""
    state = providers.state

    def validate(body: DepositQuantum) -> None:
        provider = providers.require(body.provider)
        config = state.require_config()
        initial = config.providers[body.provider].init_cursor
        pending = pending_transactions(state, body.provider)
        prev_cursor = state.cursors.get(body.provider, initial)
        provider_verdict(
            body.provider, lambda: provider.validate_notification(body, prev_cursor, pending)
        )

    return validate


def transaction_validator(providers: NodeProviders) -> TransactionValidator:
    """Returns the auditor's check that a withdrawal's transaction pays out its request."""

    def validate(apex: int, timestamp_ms: int, request: WithdrawalRequest, tx: bytes) -> None:
        provider = providers.require(request.provider)
        provider_verdict(
            request.provider,
            lambda: provider.validate_withdrawal(apex, timestamp_ms, request, tx),
        )

    return validate


def transaction_signer(providers: NodeProviders) -> TransactionSigner:
    """Returns the auditor's signer of withdrawal transactions (the signature goes back to
    alpha in its AuditorResult). A provider whose vault does not answer to the settings in
    force (checked at its first signature: at start and after every settings change) gets
    no signature: the node still signs the quantum, and says why in its log."""

    def sign(body: WithdrawalQuantum) -> TxSignature | None:
        provider = str(getattr(body.request.message, "provider", ""))
        try:
            return providers.require(provider).sign_withdrawal(body.transaction)
        except InvalidState as refused:
            logger.error("a withdrawal's transaction is not signed: %s", refused)
            return None

    return sign


def rotation_validator(providers: NodeProviders) -> RotationValidator:
    """Returns the auditor's check that each vault rotation of a settings quantum is the one
    its provider would build for the update (`payments.core.rotation`)."""

    def validate(prev: Config, new: Config, timestamp_ms: int, rotation: VaultRotationTx) -> None:
        provider = providers.require(rotation.provider)
        version = int(new.settings.version)
        provider_verdict(
            rotation.provider,
            lambda: provider.validate_rotation(
                prev.auditor_keys, new.auditor_keys, version, timestamp_ms, rotation.transaction
            ),
        )

    return validate


def rotation_signer(providers: NodeProviders) -> RotationSigner:
    """Returns the auditor's signer of the vault rotations its engine validated: each is
    signed if this node was one of the old signers (`prev`; None: a quantum signed again, it
    signs and alpha checks). No vault check: the vault counts only the signers in force, and
    a removed auditor signs nothing after this (its signatures go back with its result for
    the update's quantum)."""

    def sign(prev: Config | None, body: ConstellationQuantum) -> tuple[TxSignature, ...]:
        if prev is not None and providers.keypair.public_key not in prev.auditor_keys:
            return ()
        signatures = []
        for rotation in body.rotations:
            try:
                provider = providers.require(rotation.provider)
                signatures.append(provider.sign_rotation(rotation.transaction))
            except ConstellationError as refused:
                logger.error(
                    "the vault rotation of %s is not signed: %s", rotation.provider, refused
                )
                continue
            logger.info("signed the vault rotation of %s", rotation.provider)
        return tuple(signatures)

    return sign
