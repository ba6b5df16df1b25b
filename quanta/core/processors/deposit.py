"""DepositQuantum: what a payment provider saw at the vault, issued by alpha.

- The provider's cursor advances with the quantum (CursorUpdate), never apart from it, so a
  restart neither credits a payment twice nor skips one.
- A successful payment to a registered account credits it. A payment of the quote asset of at
  least `min_account_balance` to an unknown key registers the account (AccountCreate) and
  credits it. Any other payment to an unknown key is not credited (it stays in the vault; the
  Centaurus rule) and failed payments are ignored. So is a payment that would carry its
  balance past 2^64 - 1: the same deterministic rule on every node, where an `assert` on the
  credit used to stop the engine (and the cursor) for good.
- Each withdrawal outcome ends a pending withdrawal: a successful one takes amount + fee from
  the account, the amount leaves the vault and the fee goes to the constellation's fee account
  (account 0), so what the vault holds stays owed to someone; a failed one only unlocks them
  (no fee is charged for a payout that did not happen). An outcome for a withdrawal that is
  not pending at this provider is refused, so providers leave out payouts the constellation
  does not know (anyone can make entries appear on an external network; they must not stop
  the cursor).
Whether the notification matches what the provider really saw is for the provider to say; the
engine asks it through `DepositValidator` (auditors check alpha this way).
"""

from __future__ import annotations

from collections.abc import Callable

from exchange.core.amounts import U64_MAX
from quanta.core.context import QuantumContext
from quanta.core.processors.common import credit, credit_fits, debit
from quanta.core.status import BadRequest
from quanta.core.xdr.schema import (
    AccountCreateEffect,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    CursorUpdateEffect,
    DepositItem,
    DepositQuantum,
    PaymentResult,
    WithdrawalOutcome,
    WithdrawalRemoveEffect,
)

DepositValidator = Callable[[DepositQuantum], None]
"""Raises a ConstellationError unless the notification is what the provider saw."""


def process_deposit(
    ctx: QuantumContext, body: DepositQuantum, validate_deposit: DepositValidator | None
) -> None:
    """Validates the notification, then advances the cursor and credits / settles."""
    config = ctx.state.require_config()
    provider = config.providers.get(body.provider)
    if provider is None:
        raise BadRequest(f"unknown provider {body.provider!r}")
    for item in body.items:
        if not config.provider_asset(body.provider, item.asset):
            raise BadRequest(f"provider {body.provider} does not carry {item.asset}")
    ids = [outcome.withdrawal_id for outcome in body.withdrawals]
    if len(set(ids)) != len(ids):
        raise BadRequest("a withdrawal outcome appears twice")
    for outcome in body.withdrawals:
        withdrawal = ctx.state.withdrawals.get(outcome.withdrawal_id)
        if withdrawal is None or withdrawal.provider != body.provider:
            raise BadRequest(f"no pending withdrawal {outcome.withdrawal_id} at {body.provider}")
    if validate_deposit is not None:
        validate_deposit(body)
    prev_cursor = ctx.state.cursors.get(body.provider, "")
    ctx.emit(0, CursorUpdateEffect(body.provider, body.cursor, prev_cursor))
    for item in body.items:
        _credit_item(ctx, item)
    for outcome in body.withdrawals:
        _settle_withdrawal(ctx, outcome)


def _credit_item(ctx: QuantumContext, item: DepositItem) -> None:
    if item.result != PaymentResult.SUCCESS or item.amount == 0:
        return
    state = ctx.state
    account = state.accounts.get_by_key(item.destination)
    if account is None:
        config = state.require_config()
        registers = item.asset == config.quote_asset
        if not registers or item.amount < config.settings.min_account_balance:
            return
        account_id = state.next_account_id
        ctx.emit(account_id, AccountCreateEffect(account_id, item.destination))
        account = state.accounts.get_by_id(account_id)
        assert account is not None
    elif not credit_fits(account, item.asset, item.amount):
        return
    credit(ctx, account, item.asset, item.amount)


def _settle_withdrawal(ctx: QuantumContext, outcome: WithdrawalOutcome) -> None:
    withdrawal = ctx.state.withdrawals[outcome.withdrawal_id]
    account = ctx.state.accounts.get_by_id(withdrawal.account_id)
    assert account is not None
    success = outcome.result == PaymentResult.SUCCESS
    ctx.emit(
        account.id,
        WithdrawalRemoveEffect(
            withdrawal.withdrawal_id,
            withdrawal.provider,
            withdrawal.asset,
            withdrawal.amount,
            withdrawal.fee,
            withdrawal.destination,
            success,
        ),
    )
    if not success:
        return
    # The fee account cannot pass 2^64 - 1 (the u64 of every balance); a fee that would carry
    # it past stays with the account: the same rule on every node, and nothing vanishes.
    fee = withdrawal.fee if fee_credit_fits(ctx, withdrawal.asset, withdrawal.fee) else 0
    debit(ctx, account, withdrawal.asset, withdrawal.amount + fee)
    if fee:
        ctx.emit(0, BalanceUpdateEffect(withdrawal.asset, BalanceUpdateSign.PLUS, fee))


def fee_credit_fits(ctx: QuantumContext, asset: str, fee: int) -> bool:
    """Tells whether the constellation's fee account can take `fee` more of `asset`."""
    return ctx.state.fee_balances.get(asset, 0) + fee <= U64_MAX
