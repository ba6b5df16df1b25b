"""Builders of signed settings, requests and deposits, shared by tests, benchmarks and the
local constellation tooling (pure Python, deterministic when given fixed seeds)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from quanta.core.hashing import sha256
from quanta.core.keys import KeyPair
from quanta.core.settings_update import update_constellation_id
from quanta.core.signatures import message_digest, update_digest
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    MESSAGE,
    AssetSettings,
    AuditorSettings,
    ClientRequest,
    ConstellationMessageEnvelope,
    ConstellationQuantum,
    ConstellationSettings,
    ConstellationUpdate,
    DepositItem,
    DepositQuantum,
    Message,
    MessageEnvelope,
    PaymentResult,
    ProviderAsset,
    ProviderSettings,
    RequestQuantum,
    RequestRateLimits,
    Signature,
    WithdrawalOutcome,
    WithdrawalQuantum,
    WithdrawalRequest,
)

QUOTE = "USD"
PROVIDER_ID = "local-vault"


def keypair(index: int) -> KeyPair:
    """Returns a deterministic key pair for tests (seed = index repeated)."""
    return KeyPair.from_seed(bytes([index % 256]) * 31 + bytes([index // 256]))


def sign_message(message: Message, keypair: KeyPair, constellation_id: bytes) -> MessageEnvelope:
    """Wraps `message` in an envelope signed by `keypair` for the constellation."""
    digest = message_digest(constellation_id, encode(message, MESSAGE))
    return MessageEnvelope(message, Signature(keypair.public_key, keypair.sign(digest)))


def default_settings(
    auditors: Sequence[KeyPair],
    *,
    version: int = 1,
    assets: Sequence[str] = ("XLM", "BTC"),
    min_account_balance: int = 10_000_000,
    min_allowed_lot_size: int = 1_000,
    addresses: Sequence[str] | None = None,
) -> ConstellationSettings:
    """Returns valid settings: alpha is the first auditor, quote asset USD, one local provider."""
    codes = (QUOTE, *assets)
    return ConstellationSettings(
        version=version,
        alpha=auditors[0].public_key,
        auditors=tuple(
            AuditorSettings(
                a.public_key, addresses[i] if addresses else f"http://127.0.0.1:{8000 + i}"
            )
            for i, a in enumerate(auditors)
        ),
        min_account_balance=min_account_balance,
        min_allowed_lot_size=min_allowed_lot_size,
        assets=tuple(AssetSettings(code, False, code == QUOTE) for code in codes),
        providers=(
            ProviderSettings(
                "local", "vault", "VAULT", "0", tuple(ProviderAsset(c, c, False) for c in codes), 0
            ),
        ),
        request_rate_limits=RequestRateLimits(0, 0),
    )


def settings_quantum(
    settings: ConstellationSettings,
    signers: Sequence[KeyPair],
    message_id: int = 1,
    constellation_id: bytes | None = None,
) -> ConstellationQuantum:
    """Returns a ConstellationQuantum carrying `settings` signed by `signers` for the
    constellation `constellation_id` (None: `settings` are its genesis)."""
    update = ConstellationUpdate(message_id, settings)
    digest = update_digest(update_constellation_id(update, constellation_id), update)
    signatures = tuple(Signature(k.public_key, k.sign(digest)) for k in signers)
    return ConstellationQuantum(ConstellationMessageEnvelope(update, signatures))


def deposit_quantum(
    cursor: int,
    items: Sequence[tuple[KeyPair, str, int]] = (),
    withdrawals: Sequence[tuple[int, bool]] = (),
) -> DepositQuantum:
    """Returns a notification of `items` (who, asset, amount) and withdrawal outcomes."""
    return DepositQuantum(
        PROVIDER_ID,
        str(cursor),
        tuple(
            DepositItem(
                PaymentResult.SUCCESS,
                sha256(bytes(who.public_key) + str(cursor).encode()),
                asset,
                amount,
                who.public_key,
            )
            for who, asset, amount in items
        ),
        tuple(
            WithdrawalOutcome(wid, PaymentResult.SUCCESS if ok else PaymentResult.FAILED, b"")
            for wid, ok in withdrawals
        ),
    )


_message_ids = itertools.count(1)


def request_quantum(
    request: ClientRequest, keypair: KeyPair, constellation_id: bytes
) -> RequestQuantum:
    """Returns a RequestQuantum with `request` signed by `keypair` for the constellation."""
    return RequestQuantum(sign_message(request, keypair, constellation_id))


def withdrawal_quantum(
    request: WithdrawalRequest,
    keypair: KeyPair,
    constellation_id: bytes,
    transaction: bytes = b"tx",
) -> WithdrawalQuantum:
    """Returns a WithdrawalQuantum with `request` signed by `keypair` for the constellation."""
    return WithdrawalQuantum(sign_message(request, keypair, constellation_id), transaction)


def next_message_id() -> int:
    """Returns a fresh message id for test requests."""
    return next(_message_ids)
