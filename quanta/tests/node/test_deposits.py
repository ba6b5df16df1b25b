"""Alpha's deposit polling asks each provider on its own.

Goal: one provider that raises (its network down, a bug) does not keep the others' deposits
from becoming quanta. Before, its exception ended the poll for every provider after it, on
every poll. Method: the real `DepositWatcher` on a pure `AlphaNode`, with two stand-in
providers (a fake of our own provider interface, as a unit test may use): the first raises,
the second reports a deposit.
"""

from __future__ import annotations

from typing import Any

from payments.core.provider import Notification
from quanta.core.alpha import AlphaNode
from quanta.core.engine import Engine
from quanta.core.pending import PendingUpdates
from quanta.core.testing import PROVIDER_ID, default_settings, keypair, settings_quantum
from quanta.core.xdr.schema import DepositItem, PaymentResult
from quanta.node.deposits import DepositWatcher

NODE, PAYER = keypair(270), keypair(271)
UNIT = 10_000_000


class Broken:
    settings = default_settings([NODE]).providers[0]

    def notification_after(self, cursor: str, now_ms: int) -> Any:
        raise ConnectionError("horizon unreachable")


class Working:
    settings = default_settings([NODE]).providers[0]

    def notification_after(self, cursor: str, now_ms: int) -> Notification:
        item = DepositItem(PaymentResult.SUCCESS, bytes(32), "USD", 20 * UNIT, PAYER.public_key)
        return Notification("1", (item,), ())

    def pending_hashes(self, pending: Any) -> Any:
        return {}


class Providers:
    def current(self) -> dict[str, Any]:
        return {"broken": Broken(), PROVIDER_ID: Working()}


async def test_a_provider_that_raises_does_not_stop_the_others() -> None:
    alpha = AlphaNode(NODE, Engine(), PendingUpdates())
    alpha.initialize(settings_quantum(default_settings([NODE]), [NODE]).update, 1_000)
    delivered: list[Any] = []
    watcher = DepositWatcher(alpha, Providers(), delivered.extend)  # type: ignore[arg-type]
    await watcher.poll()
    account = alpha.engine.state.accounts.get_by_key(PAYER.public_key)
    assert account is not None, "the working provider's deposit became a quantum"
    balance = account.balance("USD")
    assert balance is not None and balance.amount == 20 * UNIT
