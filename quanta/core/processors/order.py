"""OrderRequest and OrderCancellationRequest: place a limit order, cancel one's own order.

The order is matched against a read-only plan of the opposite book (`plan_match`), then every
fill becomes a pair of Trade effects (maker side, taker side) and a GTC remainder an OrderPlaced
effect; the effects do the book changes, so a quantum can always be reverted exactly.
"""

from __future__ import annotations

from exchange.core.accounts import MAX_OPEN_ORDERS, Account
from exchange.core.amounts import AmountOverflow, InvalidPrice, price_to_units, quote_amount
from exchange.core.market import Market
from exchange.core.matching import Fill, OrderIntent, TimeInForce, plan_match
from exchange.core.orderbook import SIDES, Side
from quanta.core.config import Config
from quanta.core.context import QuantumContext
from quanta.core.processors.common import (
    credit_fits,
    ensure_balance,
    positive_amount,
    requesting_account,
    require_free,
    update_nonce,
)
from quanta.core.status import BadRequest, Forbidden
from quanta.core.xdr.schema import (
    OrderCancellationRequest,
    OrderPlacedEffect,
    OrderRemovedEffect,
    OrderRequest,
    TradeEffect,
)

# Wire enum value -> exchange enum member; a dict lookup costs less than the enum's call.
_TIMES_IN_FORCE: dict[int, TimeInForce] = {int(tif): tif for tif in TimeInForce}


def _market(ctx: QuantumContext, config: Config, code: str) -> Market:
    asset = config.tradable_asset(code)
    market = ctx.state.require_exchange().market(code)
    if asset is None or market is None:
        raise BadRequest(f"no market {code}/{config.quote_asset}")
    if asset.is_suspended:
        raise Forbidden(f"asset {code} is suspended")
    return market


def _price(request: OrderRequest, market: Market) -> int:
    try:
        return price_to_units(request.price, market.tick)
    except InvalidPrice as error:
        raise BadRequest(f"invalid price: {error}") from None


def _validate_order(
    ctx: QuantumContext, request: OrderRequest
) -> tuple[Account, Market, OrderIntent, int]:
    config = ctx.state.require_config()
    account = requesting_account(ctx, request)
    market = _market(ctx, config, request.asset)
    positive_amount(request.amount)
    price = _price(request, market)
    side = SIDES.get(request.side) or Side(request.side)
    try:
        quote = quote_amount(request.amount, price, round_up=side is Side.BUY)
    except AmountOverflow:
        raise BadRequest("order amount × price is too large") from None
    if quote == 0 or quote < config.settings.min_allowed_lot_size:
        minimum = config.settings.min_allowed_lot_size
        raise BadRequest(f"order quote amount {quote} is below the minimum lot size {minimum}")
    time_in_force = _TIMES_IN_FORCE.get(request.time_in_force)
    if time_in_force is None:
        time_in_force = TimeInForce(request.time_in_force)
    if time_in_force is TimeInForce.GOOD_TILL_EXPIRE and account.open_orders >= MAX_OPEN_ORDERS:
        raise BadRequest(f"too many open orders (at most {MAX_OPEN_ORDERS})")
    if side is Side.SELL:
        require_free(account, market.asset, request.amount)
    else:
        require_free(account, market.quote_asset, quote)
    intent = OrderIntent(ctx.apex, account.id, side, price, request.amount, time_in_force)
    return account, market, intent, quote


def process_order(ctx: QuantumContext, request: OrderRequest) -> None:
    """Validates the order, then trades it against the book and rests a GTC remainder."""
    account, market, intent, _ = _validate_order(ctx, request)
    fills, remaining = plan_match(market, intent)
    _check_credits_fit(ctx, market, intent, fills)
    update_nonce(ctx, account, request.nonce)
    # A buyer receives the asset: make sure the balance exists before the first fill.
    if intent.side is Side.BUY and fills and account.balance(market.asset) is None:
        ensure_balance(ctx, account, market.asset)
    for fill in fills:
        _emit_fill(ctx, market, intent, fill)
    if remaining and intent.time_in_force is TimeInForce.GOOD_TILL_EXPIRE:
        quote = quote_amount(remaining, intent.price, round_up=intent.side is Side.BUY)
        placed = OrderPlacedEffect(
            intent.order_id, intent.price, market.asset, intent.side, remaining, quote
        )
        ctx.emit(account.id, placed)


def _check_credits_fit(
    ctx: QuantumContext, market: Market, intent: OrderIntent, fills: list[Fill]
) -> None:
    """Refuses the order if a fill would carry the taker's or a maker's balance past u64: a
    deterministic refusal before any effect, where the credit's `assert` stopped the engine.
    Conservative for an account trading with itself (its debit of the same asset is not
    netted), which matters only within one fill of 2^64."""
    buying = intent.side is Side.BUY
    taker_gets = market.asset if buying else market.quote_asset
    maker_gets = market.quote_asset if buying else market.asset
    credits: dict[tuple[int, str], int] = {}
    for fill in fills:
        to_taker, to_maker = (fill.amount, fill.quote) if buying else (fill.quote, fill.amount)
        for key, amount in (
            ((intent.account_id, taker_gets), to_taker),
            ((fill.maker.account_id, maker_gets), to_maker),
        ):
            credits[key] = credits.get(key, 0) + amount
    for (account_id, asset), amount in credits.items():
        account = ctx.state.accounts.get_by_id(account_id)
        assert account is not None
        if not credit_fits(account, asset, amount):
            raise BadRequest(f"a fill would overflow the {asset} balance of account {account_id}")


def _emit_fill(ctx: QuantumContext, market: Market, intent: OrderIntent, fill: Fill) -> None:
    maker = fill.maker
    maker_side = intent.side.opposite
    if maker_side is Side.BUY:
        maker_account = ctx.state.accounts.get_by_id(maker.account_id)
        assert maker_account is not None
        if maker_account.balance(market.asset) is None:
            ensure_balance(ctx, maker_account, market.asset)
    ctx.emit(
        maker.account_id,
        TradeEffect(
            maker.order_id, market.asset, maker_side, maker.price, fill.amount, fill.quote, False
        ),
    )
    ctx.emit(
        intent.account_id,
        TradeEffect(
            intent.order_id, market.asset, intent.side, maker.price, fill.amount, fill.quote, True
        ),
    )


def process_cancellation(ctx: QuantumContext, request: OrderCancellationRequest) -> None:
    """Validates ownership of the order, then removes it and unlocks its liability."""
    account = requesting_account(ctx, request)
    order = ctx.state.require_exchange().get_order(request.order_id)
    if order is None:
        raise BadRequest(f"unknown order {request.order_id}")
    if order.account_id != account.id:
        raise Forbidden(f"order {request.order_id} belongs to another account")
    update_nonce(ctx, account, request.nonce)
    quote = quote_amount(order.amount, order.price, round_up=order.side is Side.BUY)
    removed = OrderRemovedEffect(
        order.order_id, order.price, order.asset, order.side, order.amount, quote
    )
    ctx.emit(account.id, removed)
