"""A client that never reads its notifications stays bounded, and says what it dropped.

Goal: notifications (results of quanta that touched the account but that it did not request)
are queued for `next_notification`; beyond NOTIFICATIONS_MAX unread ones the oldest are
dropped, counted in `notifications_dropped`, and the newest are kept in order.
Method: a client object without a connection (the reader is not started); notifications are
fed to it as its reader would, as ResultMessages with message id 0.
"""

from __future__ import annotations

from typing import Any

from constellation_client import inbox as inbox_module
from constellation_client.client import ConstellationClient
from constellation_client.tests.builders import trusted
from quanta.core.status import StatusCode
from quanta.core.testing import keypair
from quanta.core.xdr.schema import ResultMessage


async def test_unread_notifications_are_bounded_and_drops_counted(monkeypatch: Any) -> None:
    monkeypatch.setattr(inbox_module, "NOTIFICATIONS_MAX", 3)
    constellation = trusted([keypair(1)])
    client = ConstellationClient(None, keypair(2), constellation)  # type: ignore[arg-type]
    for number in range(5):
        client.inbox.dispatch(ResultMessage(0, StatusCode.FORBIDDEN, f"note {number}"))
    assert client.notifications_dropped == 2
    kept = [await client.next_notification(0.1) for _ in range(3)]
    assert [n.description for n in kept if n is not None] == ["note 2", "note 3", "note 4"]
    assert await client.next_notification(0.05) is None
