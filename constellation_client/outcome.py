"""What an order did, read from the requesting account's own (proven) effects.

The node's answer to an order carries the account's own effects group in full, covered by the
payload proof the client verifies. Nothing else is needed to say what the order did: its
Trade effects (`is_new_order`, its id) are the fills, an OrderPlaced effect with its id is the
resting rest, and whatever of the requested amount is neither was cancelled (an
immediate-or-cancel rest, a killed fill-or-kill). OrderRemoved effects in the same group are
the account's own resting orders the quantum took off: by self-trade prevention for a single
order, by a cancel or cancel-all item in a batch.

Every effect of an order repeats its client order id, so the outcome's `client_order_id` is
the proven one (the requested one when the order left no effect, as a killed fill-or-kill).

An order's id is apex·1000 + position (position 0, or its index in a batch), so the client
knows every id of its request once it knows the apex (`exchange.core.matching.order_id_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constellation_client.amounts import format_amount
from exchange.core.matching import TimeInForce, order_id_of
from exchange.core.orderbook import Side
from quanta.core.xdr.schema import EffectsGroup, OrderPlacedEffect, OrderRemovedEffect, TradeEffect

FILLED = "filled"
PARTLY_FILLED_RESTING = "partly filled, rest resting"
PARTLY_FILLED_CANCELLED = "partly filled, rest cancelled"
RESTING = "nothing filled, resting"
NOTHING_FILLED = "nothing filled, cancelled"


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What the client asked for: one order of a request, at `position` in it."""

    asset: str
    side: Side
    amount: int
    time_in_force: TimeInForce
    client_order_id: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class OrderFill:
    """One fill of the order: `amount` of the asset at `price`, moving `quote`."""

    amount: int
    price: int
    quote: int


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What one order did: its fills, what rests on the book and what was cancelled."""

    order_id: int
    terms: OrderTerms
    fills: tuple[OrderFill, ...]
    resting: int
    client_order_id: int = 0

    @property
    def filled(self) -> int:
        """Returns the amount of the asset the fills moved."""
        return sum(fill.amount for fill in self.fills)

    @property
    def cancelled(self) -> int:
        """Returns the part of the requested amount that neither filled nor rests."""
        return self.terms.amount - self.filled - self.resting

    @property
    def status(self) -> str:
        """Returns the outcome in words: filled, partly filled (rest resting or cancelled),
        nothing filled (resting or cancelled)."""
        if self.filled == self.terms.amount:
            return FILLED
        if self.filled:
            return PARTLY_FILLED_RESTING if self.resting else PARTLY_FILLED_CANCELLED
        return RESTING if self.resting else NOTHING_FILLED


def order_outcome(effects: EffectsGroup, apex: int, terms: OrderTerms) -> OrderOutcome:
    """Returns what the order `terms` of the quantum at `apex` did, from the account's effects."""
    order_id = order_id_of(apex, terms.position)
    fills: list[OrderFill] = []
    resting = 0
    client_order_id = terms.client_order_id
    for effect in effects.effects:
        if isinstance(effect, TradeEffect) and effect.is_new_order and effect.order_id == order_id:
            fills.append(OrderFill(effect.asset_amount, effect.price, effect.quote_amount))
            client_order_id = effect.client_order_id
        elif isinstance(effect, OrderPlacedEffect) and effect.order_id == order_id:
            resting = effect.amount
            client_order_id = effect.client_order_id
    return OrderOutcome(order_id, terms, tuple(fills), resting, client_order_id)


def removed_orders(effects: EffectsGroup) -> list[int]:
    """Returns the ids of the account's resting orders the quantum took off the book."""
    return [e.order_id for e in effects.effects if isinstance(e, OrderRemovedEffect)]


def outcome_line(outcome: OrderOutcome, quote_asset: str = "") -> str:
    """Returns one human line: the order, its outcome, its fills, rest and cancelled part."""
    terms = outcome.terms
    quote = f" {quote_asset}" if quote_asset else ""
    label = f" (client id {outcome.client_order_id})" if outcome.client_order_id else ""
    parts = [
        f"order {outcome.order_id}{label}: {terms.side.name.lower()} "
        f"{format_amount(terms.amount)} {terms.asset}: {outcome.status}"
    ]
    parts += [
        f"filled {format_amount(f.amount)} at {format_amount(f.price)}{quote}"
        for f in outcome.fills
    ]
    if outcome.resting:
        parts.append(f"resting {format_amount(outcome.resting)}")
    if outcome.cancelled:
        parts.append(f"cancelled {format_amount(outcome.cancelled)}")
    return "; ".join(parts)


def outcome_json(outcome: OrderOutcome) -> dict[str, Any]:
    """Returns the JSON view of an outcome, amounts and prices in decimal text (human units)."""
    terms = outcome.terms
    return {
        "order_id": outcome.order_id,
        "client_order_id": outcome.client_order_id,
        "asset": terms.asset,
        "side": terms.side.name.lower(),
        "time_in_force": terms.time_in_force.name.lower(),
        "amount": format_amount(terms.amount),
        "status": outcome.status,
        "filled": format_amount(outcome.filled),
        "resting": format_amount(outcome.resting),
        "cancelled": format_amount(outcome.cancelled),
        "fills": [
            {
                "amount": format_amount(f.amount),
                "price": format_amount(f.price),
                "quote": format_amount(f.quote),
            }
            for f in outcome.fills
        ],
    }
