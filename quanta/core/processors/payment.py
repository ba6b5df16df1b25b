"""PaymentRequest: moves an amount of an asset between two registered accounts."""

from __future__ import annotations

from exchange.core.amounts import U64_MAX
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
from quanta.core.xdr.schema import PaymentRequest


def process_payment(ctx: QuantumContext, request: PaymentRequest) -> None:
    """Validates the payment, then debits the sender and credits the destination."""
    config = ctx.state.require_config()
    account = requesting_account(ctx, request)
    known_asset(config, request.asset)
    positive_amount(request.amount)
    destination = ctx.state.accounts.get_by_key(request.destination)
    if destination is None:
        raise BadRequest("destination account is not registered")
    if destination is account:
        raise BadRequest("cannot pay to the same account")
    require_free(account, request.asset, request.amount)
    balance = destination.balance(request.asset)
    if balance is not None and balance.amount + request.amount > U64_MAX:
        raise BadRequest("destination balance would overflow")
    update_nonce(ctx, account, request.nonce)
    debit(ctx, account, request.asset, request.amount)
    credit(ctx, destination, request.asset, request.amount)
