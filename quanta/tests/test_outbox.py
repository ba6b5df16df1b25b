"""The engine's result outbox: what may leave when, and in which order.

Goal: acknowledgements and rejections leave at once; a finalization waits until its quantum
is persisted and then leaves; each destination gets one message per drain with its results in
the order they were queued, so an account sees a request's acknowledgement before its
finalization.
Method: Channels' in-memory channel layer stands in for Redis (same API), with a group per
account as the gateway makes them.
"""

from __future__ import annotations

from channels.layers import InMemoryChannelLayer

from quanta.consumers.outbox import ResultOutbox, send_batched
from quanta.core.alpha import Delivery
from quanta.groups import account_group

ALICE, BOB = bytes([1]) * 32, bytes([2]) * 32


def test_finalization_waits_for_its_quantum_to_be_persisted() -> None:
    outbox = ResultOutbox()
    ack = Delivery(b"ack-1", ALICE)
    final = Delivery(b"final-1", ALICE, finals_persisted_min=1)
    rejection = Delivery(b"refused-2", None, "reply.channel")
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


async def test_one_message_per_destination_in_queue_order() -> None:
    layer = InMemoryChannelLayer()
    alice_connection = await layer.new_channel()
    bob_connection = await layer.new_channel()
    await layer.group_add(account_group(ALICE), alice_connection)
    await layer.group_add(account_group(BOB), bob_connection)
    deliveries = [
        Delivery(b"ack-1", ALICE),
        Delivery(b"note-for-bob", BOB),
        Delivery(b"final-1", ALICE),
        Delivery(b"ack-2", ALICE),
    ]
    await send_batched(layer, deliveries)
    alice = await layer.receive(alice_connection)
    bob = await layer.receive(bob_connection)
    assert alice == {"type": "quanta.results", "messages": [b"ack-1", b"final-1", b"ack-2"]}
    assert bob == {"type": "quanta.results", "messages": [b"note-for-bob"]}
