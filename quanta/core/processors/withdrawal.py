"""WithdrawalQuantum: a client's withdrawal request with the transaction alpha's provider built.

The amount and fee are locked (WithdrawalCreate) and the pending withdrawal keeps the
transaction until the provider reports the payout or its failure in a later DepositQuantum
(`deposit.py`). Whether the transaction matches the request is for the payment provider to
say; the engine asks it through `TransactionValidator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from quanta.core.context import QuantumContext
from quanta.core.processors.common import (
    positive_amount,
    requesting_account,
    require_free,
    update_nonce,
)
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import WithdrawalCreateEffect, WithdrawalQuantum, WithdrawalRequest

TransactionValidator = Callable[[int, int, WithdrawalRequest, bytes], None]
"""Raises a ConstellationError unless the transaction pays out the request (apex, quantum
timestamp in ms, request, transaction); the transaction's expiry derives from the timestamp,
never from a node's clock, so every node judges it the same way."""


class TransactionBuilder(Protocol):
    """Alpha's side of a withdrawal's transaction, the mirror of `TransactionValidator`: alpha
    builds the transaction for the very apex and timestamp its quantum gets, so every auditor
    can rebuild and judge it from the quantum alone."""

    def build(self, apex: int, timestamp_ms: int, request: WithdrawalRequest) -> bytes:
        """Returns the transaction paying `request` in quantum `apex` at `timestamp_ms`;
        raises a ConstellationError if it cannot be built."""
        ...

    def accepted(self, apex: int, request: WithdrawalRequest, transaction: bytes) -> None:
        """Takes note that quantum `apex` executed the withdrawal with `transaction`."""
        ...


def process_withdrawal(
    ctx: QuantumContext,
    body: WithdrawalQuantum,
    request: WithdrawalRequest,
    validate_transaction: TransactionValidator | None,
) -> None:
    """Validates the withdrawal and its transaction, then locks amount + fee."""
    config = ctx.state.require_config()
    account = requesting_account(ctx, request)
    # A suspended asset can still leave: suspension stops trading, not the way out.
    if request.asset not in config.assets:
        raise BadRequest(f"unknown asset {request.asset!r}")
    positive_amount(request.amount)
    if not config.provider_asset(request.provider, request.asset):
        raise BadRequest(f"provider {request.provider!r} does not carry {request.asset}")
    if not request.destination:
        raise BadRequest("destination is empty")
    if not body.transaction:
        raise BadRequest("the withdrawal carries no transaction")
    if account.pending_withdrawal is not None:
        raise BadRequest(f"withdrawal {account.pending_withdrawal} is still pending")
    require_free(account, request.asset, request.amount + request.fee)
    if validate_transaction is not None:
        validate_transaction(ctx.apex, ctx.timestamp_ms, request, body.transaction)
    update_nonce(ctx, account, request.nonce)
    ctx.emit(
        account.id,
        WithdrawalCreateEffect(
            ctx.apex,
            request.provider,
            request.asset,
            request.amount,
            request.fee,
            request.destination,
        ),
    )
    # The effect's wire form has no room for the transaction; the pending withdrawal keeps it
    # (snapshots persist it) so every node can match the provider's outcome to the exact
    # transaction and alpha can cancel it after a restart. Reverting the effect drops it.
    created = ctx.state.withdrawals[ctx.apex]
    ctx.state.withdrawals[ctx.apex] = replace(created, transaction=body.transaction)
