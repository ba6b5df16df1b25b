"""The engine's result outbox: what may leave when, in which order, in how many messages.

Goal: acknowledgements and rejections leave at once; a finalization waits until its quantum
is persisted and then leaves; one drain becomes one `hub.replies` message per hub (answers to
single connections, and the credits of the request batches the engine took), then one
`hub.accounts` message for every gateway hub (account results in queue order, so an account
sees a request's acknowledgement before its finalization).
Method: Channels' in-memory channel layer stands in for Redis (same API).
"""

from __future__ import annotations

from channels.layers import InMemoryChannelLayer

from quanta.core.results import Delivery
from quanta.groups import GATEWAYS_GROUP
from quanta.node.outbox import ResultOutbox, send_batched

ALICE, BOB = bytes([1]) * 32, bytes([2]) * 32


def test_finalization_waits_for_its_quantum_to_be_persisted() -> None:
    outbox = ResultOutbox()
    ack = Delivery(b"ack-1", ALICE)
    final = Delivery(b"final-1", ALICE, finals_persisted_min=1)
    rejection = Delivery(b"refused-2", None, ("hub", 3))
    outbox.put([ack, final, rejection])
    assert outbox.take_deliverable() == [ack, rejection]
    assert outbox.take_deliverable() == []
    outbox.finals_persisted(1)
    assert outbox.take_deliverable() == [final]


def test_later_finalizations_wait_for_theirs_too() -> None:
    outbox = ResultOutbox()
    first = Delivery(b"final-1", ALICE, finals_persisted_min=1)
    second = Delivery(b"final-2", BOB, finals_persisted_min=2)
    outbox.put([first, second])
    outbox.finals_persisted(1)
    assert outbox.take_deliverable() == [first]
    outbox.finals_persisted(1)
    assert outbox.take_deliverable() == [second]


def test_credits_are_taken_once_per_hub() -> None:
    outbox = ResultOutbox()
    outbox.credit("hub-a", 1)
    outbox.credit("hub-b", 7)
    outbox.credit("hub-a", 2)
    assert outbox.take_credits() == {"hub-a": [1, 2], "hub-b": [7]}
    assert outbox.take_credits() == {}


async def test_one_message_for_all_hubs_and_one_per_hub_in_queue_order() -> None:
    layer = InMemoryChannelLayer()
    hub_a = await layer.new_channel()
    hub_b = await layer.new_channel()
    await layer.group_add(GATEWAYS_GROUP, hub_a)
    await layer.group_add(GATEWAYS_GROUP, hub_b)
    deliveries = [
        Delivery(b"ack-1", ALICE, signed=False),
        Delivery(b"refused-2", None, (hub_a, 4)),
        Delivery(b"note-for-bob", BOB),
        Delivery(b"final-1", ALICE, signed=False),
        Delivery(b"refused-3", None, (hub_a, 5)),
    ]
    await send_batched(layer, deliveries, {hub_a: [9], hub_b: [2, 3]})
    accounts = {
        "type": "hub.accounts",
        "messages": [
            (ALICE, b"ack-1", False),
            (BOB, b"note-for-bob", True),
            (ALICE, b"final-1", False),
        ],
    }
    assert await layer.receive(hub_a) == {
        "type": "hub.replies",
        "replies": [(4, b"refused-2"), (5, b"refused-3")],
        "consumed": [9],
    }
    # A hub with credits but no replies still hears that its batches were taken.
    assert await layer.receive(hub_b) == {"type": "hub.replies", "replies": [], "consumed": [2, 3]}
    assert await layer.receive(hub_a) == accounts
    assert await layer.receive(hub_b) == accounts
