"""AccountDataRequest: the account's balances and open orders, with a hash of them."""

from __future__ import annotations

from exchange.core.accounts import Account
from quanta.core.context import QuantumContext
from quanta.core.hashing import ZERO_HASH, sha256
from quanta.core.processors.common import requesting_account, update_nonce
from quanta.core.state import ConstellationState
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import AccountDataInfo, AccountDataRequest, BalanceInfo, OrderInfo


def account_data(state: ConstellationState, account: Account) -> AccountDataInfo:
    """Returns the account's state; `state_hash` is SHA-256 of it encoded with a zero hash."""
    balances = tuple(
        BalanceInfo(asset, balance.amount, balance.liabilities)
        for asset, balance in sorted(account.balances.items())
    )
    own = state.require_exchange().orders_by_account.get(account.id, {})
    orders = tuple(
        OrderInfo(
            order.order_id,
            order.asset,
            order.side,
            order.amount,
            order.price,
            order.client_order_id,
        )
        for order_id, order in sorted(own.items())
    )
    info = AccountDataInfo(account.id, account.nonce, balances, orders, ZERO_HASH)
    return AccountDataInfo(account.id, account.nonce, balances, orders, sha256(encode(info)))


def process_account_data(ctx: QuantumContext, request: AccountDataRequest) -> AccountDataInfo:
    """Consumes the nonce and returns the account's data after it."""
    account = requesting_account(ctx, request)
    update_nonce(ctx, account, request.nonce)
    return account_data(ctx.state, account)
