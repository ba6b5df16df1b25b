"""PaymentRequest: moves an amount of an asset from a registered account to another key.

A payment to a key without an account creates it (AccountCreate, then the credit) when it
carries at least `min_account_balance` of the quote asset: the Centaurus rule, the same one a
deposit follows (processors/deposit.py). Any other payment to a fresh key is refused with
what would register it, so nothing is lost on the way.
"""

from __future__ import annotations

from exchange.core.accounts import Account
from exchange.core.amounts import AMOUNT_SCALE, U64_MAX
from quanta.core.config import Config
from quanta.core.context import QuantumContext
from quanta.core.processors.common import (
    credit,
    debit,
    known_asset,
    positive_amount,
    requesting_account,
    require_free,
    update_nonce,
)
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import AccountCreateEffect, PaymentRequest


def process_payment(ctx: QuantumContext, request: PaymentRequest) -> None:
    """Validates the payment, then debits the sender and credits the destination."""
    config = ctx.state.require_config()
    account = requesting_account(ctx, request)
    known_asset(config, request.asset)
    positive_amount(request.amount)
    destination = ctx.state.accounts.get_by_key(request.destination)
    if destination is None:
        _check_registers(config, request)
    elif destination is account:
        raise BadRequest("cannot pay to the same account")
    require_free(account, request.asset, request.amount)
    balance = None if destination is None else destination.balance(request.asset)
    if balance is not None and balance.amount + request.amount > U64_MAX:
        raise BadRequest("destination balance would overflow")
    update_nonce(ctx, account, request.nonce)
    debit(ctx, account, request.asset, request.amount)
    if destination is None:
        destination = _account_create(ctx, request)
    credit(ctx, destination, request.asset, request.amount)


def _check_registers(config: Config, request: PaymentRequest) -> None:
    """Raises BadRequest unless the payment registers its fresh destination key."""
    minimum = config.settings.min_account_balance
    if request.asset != config.quote_asset or request.amount < minimum:
        whole = _whole_units(minimum)
        raise BadRequest(
            "destination account is not registered: a payment of at least "
            f"{whole} {config.quote_asset} (the minimum balance) registers it"
        )


def _account_create(ctx: QuantumContext, request: PaymentRequest) -> Account:
    """Emits the AccountCreate of the destination key and returns the new account."""
    account_id = ctx.state.next_account_id
    ctx.emit(account_id, AccountCreateEffect(account_id, request.destination))
    created = ctx.state.accounts.get_by_id(account_id)
    assert created is not None
    return created


def _whole_units(units: int) -> str:
    """Returns 10^-7 units as a decimal text without trailing zeros ("1", "0.5")."""
    whole, fraction = divmod(units, AMOUNT_SCALE)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:07d}".rstrip("0")
