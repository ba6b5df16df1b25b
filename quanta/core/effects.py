"""The single applier of effects: every change of consensus state goes through here.

Processors emit `(account id, effect)` pairs; `apply_effect` performs each one on the state
and `revert_effect` undoes it exactly, so a quantum that fails half-way (which only a bug can
cause: processors validate first) leaves the state as it found it. Account 0 stands for the
constellation itself (cursors, settings).

Rules that are not obvious from the effect's fields:
- `OrderPlaced` rests an order and locks its liability (asset for an ask, ceil(amount·price)
  of the quote asset for a bid); `OrderRemoved` (a cancellation) does the reverse.
- `Trade` moves the asset and the quote amount of one side of a fill. For the resting side
  (`is_new_order` false) it also shrinks the resting order and releases the part of its lock
  the fill used; a fill that exhausts the order removes it from the book.
- `WithdrawalCreate` locks amount + fee; `WithdrawalRemove` unlocks them (a successful one is
  followed by a `BalanceUpdate` that pays them out).
- A `BalanceUpdate` of account 0 changes the constellation's fee account
  (`ConstellationState.fee_balances`): it needs no `BalanceCreate`, and an asset whose fee
  balance returns to 0 leaves it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchange.core.amounts import U64_MAX
from exchange.core.market import Exchange
from exchange.core.orderbook import SIDES, Order, Side
from quanta.core.config import Config
from quanta.core.state import ConstellationState, Withdrawal
from quanta.core.xdr.schema import (
    AccountCreateEffect,
    BalanceCreateEffect,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    ConstellationUpdateEffect,
    CursorUpdateEffect,
    Effect,
    NonceUpdateEffect,
    OrderPlacedEffect,
    OrderRemovedEffect,
    TradeEffect,
    WithdrawalCreateEffect,
    WithdrawalRemoveEffect,
)

Handler = Callable[[ConstellationState, int, Any], None]


def _account(state: ConstellationState, account_id: int) -> Any:
    account = state.accounts.get_by_id(account_id)
    assert account is not None, f"effect for unknown account {account_id}"
    return account


def _apply_account_create(state: ConstellationState, account_id: int, e: Any) -> None:
    assert e.account == account_id == state.next_account_id, (e.account, state.next_account_id)
    state.accounts.create(e.account, e.public_key)
    state.next_account_id = e.account + 1


def _revert_account_create(state: ConstellationState, account_id: int, e: Any) -> None:
    state.accounts.remove(e.account)
    state.next_account_id = e.account


def _apply_nonce(state: ConstellationState, account_id: int, e: Any) -> None:
    account = _account(state, account_id)
    assert account.nonce == e.prev_nonce, (account.nonce, e)
    account.nonce = e.nonce


def _revert_nonce(state: ConstellationState, account_id: int, e: Any) -> None:
    _account(state, account_id).nonce = e.prev_nonce


def _apply_balance_create(state: ConstellationState, account_id: int, e: Any) -> None:
    _account(state, account_id).create_balance(e.asset)


def _revert_balance_create(state: ConstellationState, account_id: int, e: Any) -> None:
    _account(state, account_id).remove_balance(e.asset)


def _balance_delta(e: Any) -> int:
    amount: int = e.amount
    return amount if e.sign == BalanceUpdateSign.PLUS else -amount


def _change_fee_balance(state: ConstellationState, asset: str, delta: int) -> None:
    amount = state.fee_balances.get(asset, 0) + delta
    assert 0 <= amount <= U64_MAX, (asset, state.fee_balances, delta)
    if amount:
        state.fee_balances[asset] = amount
    else:
        del state.fee_balances[asset]


def _apply_balance_update(state: ConstellationState, account_id: int, e: Any) -> None:
    if account_id == 0:
        _change_fee_balance(state, e.asset, _balance_delta(e))
        return
    _account(state, account_id).balances[e.asset].change_amount(_balance_delta(e))


def _revert_balance_update(state: ConstellationState, account_id: int, e: Any) -> None:
    if account_id == 0:
        _change_fee_balance(state, e.asset, -_balance_delta(e))
        return
    _account(state, account_id).balances[e.asset].change_amount(-_balance_delta(e))


def _locked_asset(exchange: Exchange, side: Side, asset: str) -> str:
    """Returns the asset an order of `side` locks: the asset for asks, the quote for bids."""
    return asset if side is Side.SELL else exchange.quote_asset


def _rest_order(state: ConstellationState, account_id: int, e: Any, amount: int) -> None:
    exchange = state.require_exchange()
    market = exchange.market(e.asset)
    assert market is not None, e.asset
    side = SIDES[e.side]
    order = Order(e.order_id, account_id, side, e.asset, e.price, amount, e.client_order_id)
    market.book(side).add(order)
    account = _account(state, account_id)
    account.balances[_locked_asset(exchange, side, e.asset)].change_liabilities(order.liability)
    account.change_open_orders(1)


def _unrest_order(state: ConstellationState, account_id: int, e: Any) -> None:
    exchange = state.require_exchange()
    market = exchange.market(e.asset)
    assert market is not None, e.asset
    side = SIDES[e.side]
    order = market.book(side).remove(e.order_id)
    account = _account(state, account_id)
    account.balances[_locked_asset(exchange, side, e.asset)].change_liabilities(-order.liability)
    account.change_open_orders(-1)


def _apply_order_placed(state: ConstellationState, account_id: int, e: Any) -> None:
    _rest_order(state, account_id, e, e.amount)


def _revert_order_placed(state: ConstellationState, account_id: int, e: Any) -> None:
    _unrest_order(state, account_id, e)


def _apply_order_removed(state: ConstellationState, account_id: int, e: Any) -> None:
    _unrest_order(state, account_id, e)


def _revert_order_removed(state: ConstellationState, account_id: int, e: Any) -> None:
    _rest_order(state, account_id, e, e.amount)


def _move_trade_balances(state: ConstellationState, account_id: int, e: Any, sign: int) -> None:
    account = _account(state, account_id)
    quote = state.require_exchange().quote_asset
    direction = sign if e.side == Side.BUY else -sign
    account.balances[e.asset].change_amount(direction * e.asset_amount)
    account.balances[quote].change_amount(-direction * e.quote_amount)


def _apply_trade(state: ConstellationState, account_id: int, e: Any) -> None:
    if not e.is_new_order:
        _shrink_resting_order(state, account_id, e)
    _move_trade_balances(state, account_id, e, 1)


def _revert_trade(state: ConstellationState, account_id: int, e: Any) -> None:
    _move_trade_balances(state, account_id, e, -1)
    if not e.is_new_order:
        _grow_resting_order(state, account_id, e)


def _shrink_resting_order(state: ConstellationState, account_id: int, e: Any) -> None:
    exchange = state.require_exchange()
    order = exchange.get_order(e.order_id)
    assert order is not None, e.order_id
    assert order.account_id == account_id, (order, account_id)
    if order.amount == e.asset_amount:
        _unrest_order(state, account_id, e)
        return
    market = exchange.market(e.asset)
    assert market is not None
    released = -market.book(order.side).change_amount(e.order_id, -e.asset_amount)
    balance = _account(state, account_id).balances[_locked_asset(exchange, order.side, e.asset)]
    balance.change_liabilities(-released)


def _grow_resting_order(state: ConstellationState, account_id: int, e: Any) -> None:
    exchange = state.require_exchange()
    order = exchange.get_order(e.order_id)
    if order is None:
        # The fill had exhausted the order: put it back whole, at its place in the queue.
        _rest_order(state, account_id, e, e.asset_amount)
        return
    market = exchange.market(e.asset)
    assert market is not None
    locked = market.book(order.side).change_amount(e.order_id, e.asset_amount)
    balance = _account(state, account_id).balances[_locked_asset(exchange, order.side, e.asset)]
    balance.change_liabilities(locked)


def _apply_cursor(state: ConstellationState, account_id: int, e: Any) -> None:
    assert account_id == 0
    assert state.cursors.get(e.provider, "") == e.prev_cursor, (state.cursors, e)
    state.cursors[e.provider] = e.cursor


def _revert_cursor(state: ConstellationState, account_id: int, e: Any) -> None:
    if e.prev_cursor:
        state.cursors[e.provider] = e.prev_cursor
    else:
        del state.cursors[e.provider]


def install_settings(
    state: ConstellationState, settings: Any, constellation_id: bytes | None = None
) -> None:
    """Puts settings in force, creating the exchange and a market for each new asset.

    The constellation id stays that of the settings in force (genesis settings give their
    own); a node loading later settings from its database gives it (`constellation_id`)."""
    if settings is None:
        state.config, state.exchange = None, None
        return
    if constellation_id is None and settings.version != 1:
        assert state.config is not None, "settings after genesis follow settings in force"
        constellation_id = state.config.constellation_id
    config = Config.from_settings(settings, constellation_id)
    if state.exchange is None:
        state.exchange = Exchange(config.quote_asset)
    assert state.exchange.quote_asset == config.quote_asset, "the quote asset cannot change"
    for code in sorted(config.assets):
        if code != config.quote_asset and state.exchange.market(code) is None:
            state.exchange.add_market(code)
    for market in list(state.exchange.markets()):
        if market.asset not in config.assets:
            state.exchange.remove_market(market.asset)
    state.config = config


def _apply_settings(state: ConstellationState, account_id: int, e: Any) -> None:
    assert account_id == 0
    install_settings(state, e.settings)


def _revert_settings(state: ConstellationState, account_id: int, e: Any) -> None:
    install_settings(state, e.prev_settings)


def _withdrawal_lock(state: ConstellationState, account_id: int, e: Any, sign: int) -> None:
    account = _account(state, account_id)
    account.balances[e.asset].change_liabilities(sign * (e.amount + e.fee))


def _apply_withdrawal_create(state: ConstellationState, account_id: int, e: Any) -> None:
    account = _account(state, account_id)
    assert account.pending_withdrawal is None, account
    _withdrawal_lock(state, account_id, e, 1)
    account.pending_withdrawal = e.withdrawal_id
    state.withdrawals[e.withdrawal_id] = Withdrawal(
        e.withdrawal_id, account_id, e.provider, e.asset, e.amount, e.fee, e.destination, b""
    )


def _revert_withdrawal_create(state: ConstellationState, account_id: int, e: Any) -> None:
    _withdrawal_lock(state, account_id, e, -1)
    _account(state, account_id).pending_withdrawal = None
    del state.withdrawals[e.withdrawal_id]


def _apply_withdrawal_remove(state: ConstellationState, account_id: int, e: Any) -> None:
    _revert_withdrawal_create(state, account_id, e)


def _revert_withdrawal_remove(state: ConstellationState, account_id: int, e: Any) -> None:
    _apply_withdrawal_create(state, account_id, e)


_HANDLERS: dict[type, tuple[Handler, Handler]] = {
    AccountCreateEffect: (_apply_account_create, _revert_account_create),
    NonceUpdateEffect: (_apply_nonce, _revert_nonce),
    BalanceCreateEffect: (_apply_balance_create, _revert_balance_create),
    BalanceUpdateEffect: (_apply_balance_update, _revert_balance_update),
    OrderPlacedEffect: (_apply_order_placed, _revert_order_placed),
    OrderRemovedEffect: (_apply_order_removed, _revert_order_removed),
    TradeEffect: (_apply_trade, _revert_trade),
    CursorUpdateEffect: (_apply_cursor, _revert_cursor),
    ConstellationUpdateEffect: (_apply_settings, _revert_settings),
    WithdrawalCreateEffect: (_apply_withdrawal_create, _revert_withdrawal_create),
    WithdrawalRemoveEffect: (_apply_withdrawal_remove, _revert_withdrawal_remove),
}


APPLIERS: dict[type, Handler] = {effect: handlers[0] for effect, handlers in _HANDLERS.items()}
"""The applier of each effect type (what `apply_effect` calls; looked up directly on the hot
path by `QuantumContext.emit`)."""


def apply_effect(state: ConstellationState, account_id: int, effect: Effect) -> None:
    """Performs one effect on the state."""
    APPLIERS[effect.__class__](state, account_id, effect)


def revert_effect(state: ConstellationState, account_id: int, effect: Effect) -> None:
    """Undoes one effect that was the last one applied."""
    _HANDLERS[type(effect)][1](state, account_id, effect)
