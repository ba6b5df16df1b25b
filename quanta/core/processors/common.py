"""Checks and effects shared by the client-request processors."""

from __future__ import annotations

from exchange.core.accounts import Account
from exchange.core.amounts import U64_MAX
from quanta.core.config import Config
from quanta.core.context import QuantumContext
from quanta.core.status import BadRequest, Forbidden, Unauthorized
from quanta.core.xdr.schema import (
    BalanceCreateEffect,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    ClientRequest,
    NonceUpdateEffect,
)


def requesting_account(ctx: QuantumContext, request: ClientRequest) -> Account:
    """Returns the registered account making `request` after checking its nonce."""
    account = ctx.state.accounts.get_by_key(request.account)
    if account is None:
        raise Unauthorized("account is not registered: deposit the quote asset first")
    if request.nonce <= account.nonce:
        raise BadRequest(f"nonce {request.nonce} must be greater than {account.nonce}")
    return account


def update_nonce(ctx: QuantumContext, account: Account, nonce: int) -> None:
    """Emits the NonceUpdate every applied client request carries."""
    ctx.emit(account.id, NonceUpdateEffect(nonce, account.nonce))


def known_asset(config: Config, code: str) -> None:
    """Raises BadRequest for an unknown asset and Forbidden for a suspended one."""
    asset = config.assets.get(code)
    if asset is None:
        raise BadRequest(f"unknown asset {code!r}")
    if asset.is_suspended:
        raise Forbidden(f"asset {code} is suspended")


def positive_amount(amount: int) -> None:
    """Raises BadRequest unless `amount` is positive."""
    if amount <= 0:
        raise BadRequest("amount must be positive")


def free_balance(account: Account, asset: str) -> int:
    """Returns what the account can spend or lock in `asset` (0 without a balance)."""
    balance = account.balance(asset)
    return 0 if balance is None else balance.free


def require_free(account: Account, asset: str, amount: int) -> None:
    """Raises BadRequest if the account's free balance in `asset` is below `amount`."""
    free = free_balance(account, asset)
    if free < amount:
        raise BadRequest(f"insufficient free balance in {asset}: {free} available, {amount} needed")


def ensure_balance(ctx: QuantumContext, account: Account, asset: str) -> None:
    """Emits a BalanceCreate unless the account already holds a balance of `asset`."""
    if account.balance(asset) is None:
        ctx.emit(account.id, BalanceCreateEffect(asset))


def credit_fits(account: Account, asset: str, amount: int) -> bool:
    """Tells whether `amount` of `asset` can be added to the account's balance within u64."""
    balance = account.balance(asset)
    return (0 if balance is None else balance.amount) + amount <= U64_MAX


def credit(ctx: QuantumContext, account: Account, asset: str, amount: int) -> None:
    """Emits the effects that add `amount` of `asset`, creating the balance if needed."""
    ensure_balance(ctx, account, asset)
    ctx.emit(account.id, BalanceUpdateEffect(asset, BalanceUpdateSign.PLUS, amount))


def debit(ctx: QuantumContext, account: Account, asset: str, amount: int) -> None:
    """Emits the effect that takes `amount` of `asset` (the caller checked it is free)."""
    ctx.emit(account.id, BalanceUpdateEffect(asset, BalanceUpdateSign.MINUS, amount))
