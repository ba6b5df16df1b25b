"""What an account's effects mean, in a trader's words and units (CLI history and watch).

An `EffectsGroup` holds one quantum's effects on one account. The sentences name amounts as
decimals with their asset, prices with the tick's decimals, and say what happened (bought,
sold, rests on the book, received, sent, withdrawal paid out) instead of effect class names.
Balance updates that only mirror a trade or a withdrawal are left out (the trade says it).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal

from constellation_client.amounts import UNITS_PER_WHOLE, format_amount
from constellation_client.market import PRICE_DECIMALS
from exchange.core.orderbook import Side
from quanta.core.xdr.schema import (
    AccountCreateEffect,
    BalanceUpdateEffect,
    BalanceUpdateSign,
    Effect,
    OrderPlacedEffect,
    OrderRemovedEffect,
    TradeEffect,
    WithdrawalCreateEffect,
    WithdrawalRemoveEffect,
)


def price_text(units: int) -> str:
    """Returns a price in 10^-7 quote units with the tick's decimals ("0.125")."""
    return f"{Decimal(units) / UNITS_PER_WHOLE:.{PRICE_DECIMALS}f}"


def time_text(ms: int) -> str:
    """Returns a quantum timestamp (ms since the epoch) as a UTC date and time."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _side(side: int) -> str:
    return Side(side).name.lower()


def _order(order_id: int, client_order_id: int) -> str:
    """Names an order by its id, with its client order id when it has one."""
    return f"{order_id} (client id {client_order_id})" if client_order_id else str(order_id)


def _trade(effect: TradeEffect, quote: str) -> str:
    verb = "bought" if effect.side == Side.BUY else "sold"
    role = "taker" if effect.is_new_order else "maker"
    return (
        f"{verb} {format_amount(effect.asset_amount)} {effect.asset} at "
        f"{price_text(effect.price)} ({format_amount(effect.quote_amount)} {quote}; order "
        f"{_order(effect.order_id, effect.client_order_id)}, {role})"
    )


def _placed(effect: OrderPlacedEffect) -> str:
    return (
        f"order {_order(effect.order_id, effect.client_order_id)} rests on the book: "
        f"{_side(effect.side)} "
        f"{format_amount(effect.amount)} {effect.asset} at {price_text(effect.price)}"
    )


def _removed(effect: OrderRemovedEffect) -> str:
    order = _order(effect.order_id, effect.client_order_id)
    return f"order {order} left the book ({_side(effect.side)} {effect.asset})"


def _withdrawal_created(effect: WithdrawalCreateEffect) -> str:
    return (
        f"withdrawal {effect.withdrawal_id} requested: {format_amount(effect.amount)} "
        f"{effect.asset} (fee {format_amount(effect.fee)}) to {effect.destination}"
    )


def _withdrawal_removed(effect: WithdrawalRemoveEffect) -> str:
    outcome = "paid out" if effect.is_successful else "failed, funds unlocked"
    return (
        f"withdrawal {effect.withdrawal_id} {outcome}: {format_amount(effect.amount)} "
        f"{effect.asset} to {effect.destination}"
    )


def _balance(effect: BalanceUpdateEffect) -> str:
    amount = f"{format_amount(effect.amount)} {effect.asset}"
    if effect.sign == BalanceUpdateSign.PLUS:
        return f"received {amount}"
    return f"sent {amount}"


def effects_sentences(effects: Sequence[Effect], quote: str) -> list[str]:
    """Returns what the effects of one quantum on one account mean, one sentence each."""
    sentences: list[str] = []
    mirrored = any(isinstance(e, TradeEffect | WithdrawalRemoveEffect) for e in effects)
    for effect in effects:
        if isinstance(effect, TradeEffect):
            sentences.append(_trade(effect, quote))
        elif isinstance(effect, OrderPlacedEffect):
            sentences.append(_placed(effect))
        elif isinstance(effect, OrderRemovedEffect):
            sentences.append(_removed(effect))
        elif isinstance(effect, WithdrawalCreateEffect):
            sentences.append(_withdrawal_created(effect))
        elif isinstance(effect, WithdrawalRemoveEffect):
            sentences.append(_withdrawal_removed(effect))
        elif isinstance(effect, AccountCreateEffect):
            sentences.append(f"account {effect.account} created")
        elif isinstance(effect, BalanceUpdateEffect) and not mirrored:
            sentences.append(_balance(effect))
    return sentences or ["account data read (no balance changed)"]
