"""A random session of many operations against a running constellation, for the proof of
reserves (`tests/cluster/test_reserves.py`): deposits through the demo faucet, payments,
orders that trade, and withdrawals with fees, from a few funded accounts; the caller may
step in once in the middle (`run(midway=...)`, the test's settings update replacing an
auditor, so the session spans a vault rotation).

Seeded (`random.Random(seed)`), so a failing session can be replayed. It records what the
audit must then show: the fees of the withdrawals the constellation accepted (the fee account
must end with exactly those once they are paid) and how many operations of each kind alpha
accepted (so a session that traded nothing or paid no fee is seen as one).
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from constellation_client import ConstellationClient
from exchange.core.matching import TimeInForce
from exchange.core.orderbook import Side
from quanta.core.keys import KeyPair
from quanta.core.xdr.schema import TradeEffect

UNIT = 10_000_000
PROVIDER = "local-vault"
ASSETS = ("USD", "XLM")
OPERATIONS = ("deposit", "payment", "order", "order", "order", "withdrawal")


@dataclass
class SessionLog:
    """What a session did: accepted operations by kind, trades, and fees owed to the fee
    account once every accepted withdrawal is paid."""

    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    trades: int = 0
    fees: dict[str, int] = field(default_factory=dict)


def faucet(node_url: str, public_key: str, asset: str, amount: str) -> None:
    """Pays into the vault from `public_key` through alpha's demo faucet (`/api/faucet`)."""
    body = json.dumps({"public_key": public_key, "asset": asset, "amount": amount}).encode()
    request = urllib.request.Request(  # noqa: S310 - the cluster's own loopback URL
        f"{node_url}/api/faucet", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def _amount_text(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high)}.{rng.randint(0, 9_999_999):07d}"


class Session:
    """Drives `operations` random operations through already funded clients."""

    def __init__(self, node_url: str, clients: list[ConstellationClient], seed: int) -> None:
        """Uses `clients` (registered accounts) against alpha at `node_url`."""
        self.node_url = node_url
        self.clients = clients
        self.rng = random.Random(seed)  # noqa: S311 - a replayable session, not a secret
        self.log = SessionLog()

    async def run(
        self, operations: int, midway: Callable[[], Awaitable[None]] | None = None
    ) -> SessionLog:
        """Runs the operations one after another, awaiting `midway` once after half of them;
        returns the log."""
        for done in range(operations):
            if midway is not None and done == operations // 2:
                await midway()
            kind = self.rng.choice(OPERATIONS)
            client = self.rng.choice(self.clients)
            ok = await getattr(self, f"_{kind}")(client)
            (self.log.accepted if ok else self.log.refused)[kind] += 1
        return self.log

    async def _deposit(self, client: ConstellationClient) -> bool:
        asset = self.rng.choice(ASSETS)
        amount = _amount_text(self.rng, 1, 50)
        await asyncio.to_thread(faucet, self.node_url, client.public_key, asset, amount)
        return True

    async def _payment(self, client: ConstellationClient) -> bool:
        other = self.rng.choice([c for c in self.clients if c is not client])
        asset = self.rng.choice(ASSETS)
        result = await client.pay(other.public_key, asset, self.rng.randint(1, 20 * UNIT))
        return result.ok

    async def _order(self, client: ConstellationClient) -> bool:
        side = self.rng.choice((Side.BUY, Side.SELL))
        price = self.rng.randint(90, 110) / 100
        tif = self.rng.choice((TimeInForce.GOOD_TILL_EXPIRE, TimeInForce.IMMEDIATE_OR_CANCEL))
        amount = self.rng.randint(1, 20) * UNIT
        result = await client.place_order("XLM", side, amount, price, tif)
        if result.ok and result.effects is not None:
            self.log.trades += sum(isinstance(e, TradeEffect) for e in result.effects.effects)
        return result.ok

    async def _withdrawal(self, client: ConstellationClient) -> bool:
        asset = self.rng.choice(ASSETS)
        amount = self.rng.randint(1, 10 * UNIT)
        fee = self.rng.randint(1, UNIT // 2)
        payee = KeyPair.random().public_key_strkey
        result = await client.withdraw(PROVIDER, asset, amount, payee, fee)
        if result.ok:
            self.log.fees[asset] = self.log.fees.get(asset, 0) + fee
        return result.ok
