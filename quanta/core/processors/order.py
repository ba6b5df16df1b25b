"""OrderRequest, OrderCancellationRequest and OrderBatchRequest: place, cancel, and both in bulk.

An order is matched against a read-only plan of the opposite book (`plan_match`), then every
fill becomes a pair of Trade effects (maker side, taker side) and a resting remainder an
OrderPlaced effect; the effects do the book changes, so a quantum can always be reverted
exactly. Order types (`TimeInForce`): good-till-expire and post-only rest their remainder,
immediate-or-cancel drops it, fill-or-kill executes only if it fills entirely (a killed one
applies nothing but its nonce), post-only is refused if it would cross at all.

Self-trade prevention: a resting order of the requesting account that the incoming order
reaches is cancelled (an OrderRemoved effect, before the fills), never traded with.

Client order ids: an order may carry the client's own label (`client_order_id`, 0: none).
The resting order keeps it and every effect of the order (OrderPlaced, Trade, OrderRemoved)
repeats it. An order whose label is held by a resting order of the same account is refused,
so a label names at most one resting order, and a cancellation (or a batch cancel) may name
the order by it instead of its id (`order_id` 0); a label no resting order of the account
holds is refused. A label is free again once its order leaves the book.

A batch (`OrderBatchRequest`, at most `Limits.ORDER_BATCH_ITEMS_MAX` items, one signature,
one nonce, one quantum) places, cancels and cancels-all in item order, each item seeing the
effects of the ones before; it is all or nothing: a refused item refuses the whole batch,
with the item's index in the message. The order of item i gets id apex·1000 + i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from exchange.core.accounts import MAX_OPEN_ORDERS, Account
from exchange.core.amounts import (
    U64_MAX,
    AmountOverflow,
    InvalidPrice,
    price_to_units,
    quote_amount,
)
from exchange.core.market import Market
from exchange.core.matching import (
    ORDER_IDS_PER_QUANTUM,
    RESTING_TIMES_IN_FORCE,
    Fill,
    OrderIntent,
    TimeInForce,
    order_id_of,
    plan_match,
    would_cross,
)
from exchange.core.orderbook import SIDES, Order, Side
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
from quanta.core.status import BadRequest, ConstellationError, Forbidden
from quanta.core.xdr.schema import (
    BatchCancel,
    BatchCancelAll,
    BatchOrder,
    OrderBatchRequest,
    OrderCancellationRequest,
    OrderPlacedEffect,
    OrderRemovedEffect,
    OrderRequest,
    TradeEffect,
)

# Wire enum value -> exchange enum member; a dict lookup costs less than the enum's call.
_TIMES_IN_FORCE: dict[int, TimeInForce] = {int(tif): tif for tif in TimeInForce}


class OrderTerms(Protocol):
    """The fields an order has alike in an `OrderRequest` and in a batch's `BatchOrder`."""

    @property
    def asset(self) -> str: ...
    @property
    def side(self) -> int: ...
    @property
    def amount(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def time_in_force(self) -> int: ...
    @property
    def client_order_id(self) -> int: ...


@dataclass(slots=True)
class _OrderPlan:
    """What a validated order will do: its fills, rest, and own resting orders to cancel."""

    market: Market
    intent: OrderIntent
    fills: list[Fill]
    remaining: int
    own_crossed: list[Order]


# The last apex whose order ids (apex·1000 + position) all fit in u64.
_ORDER_APEX_MAX = (U64_MAX - (ORDER_IDS_PER_QUANTUM - 1)) // ORDER_IDS_PER_QUANTUM


def _require_order_ids(ctx: QuantumContext) -> None:
    """Refuses orders at an apex whose order ids would pass u64: a deterministic refusal
    instead of an encoding failure (far beyond any real chain)."""
    if ctx.apex > _ORDER_APEX_MAX:
        raise BadRequest(f"no order ids left at apex {ctx.apex}")


def _market(ctx: QuantumContext, config: Config, code: str) -> Market:
    asset = config.tradable_asset(code)
    market = ctx.state.require_exchange().market(code)
    if asset is None or market is None:
        raise BadRequest(f"no market {code}/{config.quote_asset}")
    if asset.is_suspended:
        raise Forbidden(f"asset {code} is suspended")
    return market


def _price(terms: OrderTerms, market: Market) -> int:
    try:
        return price_to_units(terms.price, market.tick)
    except InvalidPrice as error:
        raise BadRequest(f"invalid price: {error}") from None


def _time_in_force(terms: OrderTerms) -> TimeInForce:
    time_in_force = _TIMES_IN_FORCE.get(terms.time_in_force)
    if time_in_force is None:
        raise BadRequest(f"unknown time in force {terms.time_in_force}")
    return time_in_force


def _validate_order(
    ctx: QuantumContext, account: Account, terms: OrderTerms, order_id: int
) -> tuple[Market, OrderIntent]:
    config = ctx.state.require_config()
    market = _market(ctx, config, terms.asset)
    positive_amount(terms.amount)
    price = _price(terms, market)
    side = SIDES.get(terms.side) or Side(terms.side)
    try:
        quote = quote_amount(terms.amount, price, round_up=side is Side.BUY)
    except AmountOverflow:
        raise BadRequest("order amount × price is too large") from None
    if quote == 0 or quote < config.settings.min_allowed_lot_size:
        minimum = config.settings.min_allowed_lot_size
        raise BadRequest(f"order quote amount {quote} is below the minimum lot size {minimum}")
    time_in_force = _time_in_force(terms)
    if time_in_force in RESTING_TIMES_IN_FORCE and account.open_orders >= MAX_OPEN_ORDERS:
        raise BadRequest(f"too many open orders (at most {MAX_OPEN_ORDERS})")
    client_order_id = terms.client_order_id
    if client_order_id:
        _require_free_label(ctx, account, client_order_id)
    if side is Side.SELL:
        require_free(account, market.asset, terms.amount)
    else:
        require_free(account, market.quote_asset, quote)
    intent = OrderIntent(
        order_id, account.id, side, price, terms.amount, time_in_force, client_order_id
    )
    return market, intent


def _require_free_label(ctx: QuantumContext, account: Account, client_order_id: int) -> None:
    """Refuses an order whose client order id a resting order of the account already holds
    (whatever its type: the label must name one order while the order lives)."""
    held = ctx.state.require_exchange().order_by_client_id(account.id, client_order_id)
    if held is not None:
        raise BadRequest(
            f"client order id {client_order_id} is already used by resting order {held.order_id}"
        )


def _plan_order(
    ctx: QuantumContext, account: Account, terms: OrderTerms, order_id: int
) -> _OrderPlan:
    """Validates an order and plans it, applying the rules of its order type."""
    market, intent = _validate_order(ctx, account, terms, order_id)
    time_in_force = intent.time_in_force
    if time_in_force is TimeInForce.POST_ONLY and would_cross(market, intent.side, intent.price):
        raise BadRequest("post-only order would trade at once: refused, nothing placed")
    own_crossed: list[Order] = []
    fills, remaining = plan_match(market, intent, own_crossed)
    if time_in_force is TimeInForce.FILL_OR_KILL and remaining:
        # Killed: it would not fill entirely, so nothing happens (no fill, no cancellation).
        return _OrderPlan(market, intent, [], intent.amount, [])
    _check_credits_fit(ctx, market, intent, fills)
    return _OrderPlan(market, intent, fills, remaining, own_crossed)


def _execute_order(ctx: QuantumContext, account: Account, plan: _OrderPlan) -> None:
    """Emits the effects of a planned order: self-trade cancellations, fills, the rest."""
    market, intent = plan.market, plan.intent
    for order in plan.own_crossed:
        _remove_order(ctx, account, order)
    # A buyer receives the asset: make sure the balance exists before the first fill.
    if intent.side is Side.BUY and plan.fills and account.balance(market.asset) is None:
        ensure_balance(ctx, account, market.asset)
    for fill in plan.fills:
        _emit_fill(ctx, market, intent, fill)
    if plan.remaining and intent.time_in_force in RESTING_TIMES_IN_FORCE:
        quote = quote_amount(plan.remaining, intent.price, round_up=intent.side is Side.BUY)
        placed = OrderPlacedEffect(
            intent.order_id,
            intent.price,
            market.asset,
            intent.side,
            plan.remaining,
            quote,
            intent.client_order_id,
        )
        ctx.emit(account.id, placed)


def process_order(ctx: QuantumContext, request: OrderRequest) -> None:
    """Validates the order, then trades it against the book and rests a GTC remainder."""
    account = requesting_account(ctx, request)
    _require_order_ids(ctx)
    plan = _plan_order(ctx, account, request, order_id_of(ctx.apex))
    update_nonce(ctx, account, request.nonce)
    _execute_order(ctx, account, plan)


def _check_credits_fit(
    ctx: QuantumContext, market: Market, intent: OrderIntent, fills: list[Fill]
) -> None:
    """Refuses the order if a fill would carry the taker's or a maker's balance past u64: a
    deterministic refusal before any effect, where the credit's `assert` stopped the engine."""
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
            maker.order_id,
            market.asset,
            maker_side,
            maker.price,
            fill.amount,
            fill.quote,
            False,
            maker.client_order_id,
        ),
    )
    ctx.emit(
        intent.account_id,
        TradeEffect(
            intent.order_id,
            market.asset,
            intent.side,
            maker.price,
            fill.amount,
            fill.quote,
            True,
            intent.client_order_id,
        ),
    )


def _remove_order(ctx: QuantumContext, account: Account, order: Order) -> None:
    """Emits the OrderRemoved effect that takes one resting order off and unlocks it."""
    quote = quote_amount(order.amount, order.price, round_up=order.side is Side.BUY)
    removed = OrderRemovedEffect(
        order.order_id,
        order.price,
        order.asset,
        order.side,
        order.amount,
        quote,
        order.client_order_id,
    )
    ctx.emit(account.id, removed)


def _own_order(ctx: QuantumContext, account: Account, order_id: int, client_order_id: int) -> Order:
    """Returns the account's resting order named by id, or (order id 0) by client order id."""
    if client_order_id:
        if order_id:
            raise BadRequest("name the order by order id or by client order id, not both")
        found = ctx.state.require_exchange().order_by_client_id(account.id, client_order_id)
        if found is None:
            raise BadRequest(f"no resting order has client order id {client_order_id}")
        return found
    order = ctx.state.require_exchange().get_order(order_id)
    if order is None:
        raise BadRequest(f"unknown order {order_id}")
    if order.account_id != account.id:
        raise Forbidden(f"order {order_id} belongs to another account")
    return order


def process_cancellation(ctx: QuantumContext, request: OrderCancellationRequest) -> None:
    """Validates ownership of the order, then removes it and unlocks its liability."""
    account = requesting_account(ctx, request)
    order = _own_order(ctx, account, request.order_id, request.client_order_id)
    update_nonce(ctx, account, request.nonce)
    _remove_order(ctx, account, order)


def _cancel_all(ctx: QuantumContext, account: Account, code: str) -> None:
    """Cancels every resting order of the account in the market of `code`, by id."""
    config = ctx.state.require_config()
    if config.tradable_asset(code) is None or ctx.state.require_exchange().market(code) is None:
        raise BadRequest(f"no market {code}/{config.quote_asset}")
    own = ctx.state.require_exchange().orders_by_account.get(account.id, {})
    for order_id in sorted(own):
        order = own[order_id]
        if order.asset == code:
            _remove_order(ctx, account, order)


def _execute_item(ctx: QuantumContext, account: Account, index: int, item: object) -> None:
    if isinstance(item, BatchOrder):
        plan = _plan_order(ctx, account, item, order_id_of(ctx.apex, index))
        _execute_order(ctx, account, plan)
    elif isinstance(item, BatchCancel):
        order = _own_order(ctx, account, item.order_id, item.client_order_id)
        _remove_order(ctx, account, order)
    elif isinstance(item, BatchCancelAll):
        _cancel_all(ctx, account, item.asset)
    else:
        raise BadRequest(f"{type(item).__name__} is not a batch item")


def process_batch(ctx: QuantumContext, request: OrderBatchRequest) -> None:
    """Executes a batch's items in order, all or nothing (the engine rolls a refusal back)."""
    account = requesting_account(ctx, request)
    if not request.items:
        raise BadRequest("an order batch needs at least one item")
    _require_order_ids(ctx)
    update_nonce(ctx, account, request.nonce)
    for index, item in enumerate(request.items):
        try:
            _execute_item(ctx, account, index, item)
        except ConstellationError as error:
            raise ConstellationError(error.status, f"batch item {index}: {error}") from None
