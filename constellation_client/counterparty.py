"""Who the other side of a history item is, read from the quantum the item carries.

A history item holds the account's own effects group, which says what moved but not with
whom (a `BalanceUpdateEffect` names no account). Its quantum does: a payment request names its
payer (the signing account) and its destination, a deposit quantum its provider and the
provider's transaction hashes, a withdrawal its provider and external destination. The
quantum is read only once it matches the item's quantum hash (`verify.item_quantum`) and the
item's signatures made it final (`verify.verify_history_item`): nothing here is the node's
word alone. Orders and trades have "the book" as their counterparty: nothing to read.
"""

from __future__ import annotations

from constellation_client.verify import item_quantum, verify_history_item
from constellation_client.wire import Constellation
from quanta.core.keys import encode_public_key
from quanta.core.records import record
from quanta.core.xdr.codec import XdrError
from quanta.core.xdr.schema import (
    DepositQuantum,
    PaymentRequest,
    Quantum,
    QuantumInfoItem,
    RequestQuantum,
    WithdrawalQuantum,
    WithdrawalRequest,
)

HASH_SHOWN = 16
"""Hex digits of a provider transaction hash shown in words (the JSON has them whole)."""


@record
class Counterparty:
    """The other side of one quantum for one account, from its proven quantum.

    `kind`: "payment sent", "payment received", "deposit", "withdrawal" or "withdrawal outcome";
    `account`: the other account's key (G...) of a payment; `provider`: the provider's name;
    `external`: the withdrawal's external destination or the deposit's transaction hashes
    (hex, comma-separated); `text`: all of it in words."""

    kind: str
    text: str
    account: str | None = None
    provider: str | None = None
    external: str | None = None


def counterparty(quantum: Quantum, own_key: bytes) -> Counterparty | None:
    """Returns the other side of `quantum` for the account `own_key`, or None when the
    quantum has none to name (an order, a cancel, a balance read, a settings update)."""
    body = quantum.body
    if isinstance(body, RequestQuantum) and isinstance(body.request.message, PaymentRequest):
        return _payment(body.request.message, own_key)
    if isinstance(body, WithdrawalQuantum) and isinstance(body.request.message, WithdrawalRequest):
        request = body.request.message
        text = f"withdrawal via provider {request.provider} to {request.destination}"
        return Counterparty("withdrawal", text, None, request.provider, request.destination)
    if isinstance(body, DepositQuantum):
        return _deposit(body, own_key)
    return None


def _payment(request: PaymentRequest, own_key: bytes) -> Counterparty:
    payer = encode_public_key(request.account)
    payee = encode_public_key(request.destination)
    if request.account == own_key:
        return Counterparty("payment sent", f"paid to {payee}", payee)
    if request.destination == own_key:
        return Counterparty("payment received", f"paid by {payer}", payer)
    return Counterparty("payment", f"payment from {payer} to {payee}", None)


def _deposit(body: DepositQuantum, own_key: bytes) -> Counterparty:
    hashes = [item.tx_hash.hex() for item in body.items if item.destination == own_key]
    if not hashes:
        text = f"withdrawal outcome from provider {body.provider}"
        return Counterparty("withdrawal outcome", text, None, body.provider)
    shown = ", ".join(h[:HASH_SHOWN] + ("…" if len(h) > HASH_SHOWN else "") for h in hashes)
    text = f"deposit via provider {body.provider} (transaction {shown})"
    return Counterparty("deposit", text, None, body.provider, ",".join(hashes))


def item_counterparty(item: QuantumInfoItem, own_key: bytes) -> Counterparty | None:
    """Returns the counterparty an already verified history item proves, or None (no
    quantum in the item, or one that does not match it, or nothing to name)."""
    try:
        quantum = item_quantum(item)
    except XdrError:
        return None
    return None if quantum is None else counterparty(quantum, own_key)


def proven_counterparty(
    item: QuantumInfoItem, constellation: Constellation, own_key: bytes
) -> Counterparty | None:
    """Returns the counterparty of a history item only if the item is final under the
    trusted keys (its quantum matching its signed quantum hash), else None."""
    if not verify_history_item(item, constellation).is_final:
        return None
    return item_counterparty(item, own_key)
