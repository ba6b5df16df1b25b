"""Builders of the chronicler's tests: a real engine whose final quanta are real rows.

`Chain` runs signed requests through `quanta.core.engine.Engine` (the effects are exactly what
the engine emits) and turns each executed quantum into the `QuantumRow` alpha would persist,
signed by the one node of a single-node constellation.
"""

from __future__ import annotations

import itertools

from exchange.core.orderbook import Side
from quanta.core.engine import Engine, Executed
from quanta.core.keys import KeyPair
from quanta.core.pending import QuantumRow, quantum_row
from quanta.core.signatures import constellation_id_of
from quanta.core.testing import (
    default_settings,
    deposit_quantum,
    keypair,
    request_quantum,
    settings_quantum,
)
from quanta.core.xdr.codec import encode
from quanta.core.xdr.schema import (
    NodeSignature,
    OrderRequest,
    PayloadProof,
    PaymentRequest,
    QuantumBody,
    TimeInForce,
)

UNIT = 10_000_000
NODE = keypair(90)
"""The single node (alpha) of the test constellation."""


class Chain:
    """An initialized engine; every executed quantum is kept as a final row."""

    def __init__(self, start_ms: int = 1_700_000_000_000, step_ms: int = 1_000) -> None:
        self.engine = Engine()
        self.clock = itertools.count(start_ms, step_ms)
        self.cursor = itertools.count(1)
        self.nonces: dict[bytes, itertools.count[int]] = {}
        self.rows: list[QuantumRow] = []
        self.settings = default_settings([NODE])
        self.constellation_id = constellation_id_of(self.settings)
        self.run(settings_quantum(self.settings, [NODE]))

    def run(self, body: QuantumBody) -> Executed:
        """Executes one quantum and records its final row."""
        executed = self.engine.execute(body, next(self.clock))
        proof = PayloadProof(
            executed.payload_hash, (NodeSignature(0, NODE.sign(executed.payload_hash)),)
        )
        self.rows.append(quantum_row(executed, 0, encode(proof)))
        return executed

    def fund(self, who: KeyPair, *deposits: tuple[str, int]) -> None:
        """Deposits (asset, amount) pairs to `who` (registering the account)."""
        items = [(who, asset, amount) for asset, amount in deposits]
        self.run(deposit_quantum(next(self.cursor), items))

    def _nonce(self, who: KeyPair) -> int:
        return next(self.nonces.setdefault(who.public_key, itertools.count(1)))

    def pay(self, who: KeyPair, to: KeyPair, amount: int) -> Executed:
        """Pays `amount` USD from `who` to `to`."""
        request = PaymentRequest(1, who.public_key, self._nonce(who), "USD", amount, to.public_key)
        return self.run(request_quantum(request, who, self.constellation_id))

    def order(
        self,
        who: KeyPair,
        side: Side,
        amount: int,
        price: float,
        asset: str = "XLM",
        client_order_id: int = 0,
    ) -> Executed:
        """Places a good-till-expire limit order (labelled `client_order_id`, 0: none)."""
        request = OrderRequest(
            1, who.public_key, self._nonce(who), asset, side, amount, price,
            TimeInForce.GOOD_TILL_EXPIRE, client_order_id,
        )  # fmt: skip
        return self.run(request_quantum(request, who, self.constellation_id))

    def take_rows(self) -> list[QuantumRow]:
        """Returns and forgets the rows recorded so far."""
        rows, self.rows = self.rows, []
        return rows
