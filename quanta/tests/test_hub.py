"""The gateway hub: batching requests to the engine, admission, and routing results back.

Goal: requests of many connections reach the engine as few channel messages, in order; no
more than `inflight_max` requests wait at the engine, and the engine's credits (or expiry)
free the room again; account results reach every connection of that key and only those;
replies reach the one connection they answer; a full engine channel refuses the batch.
Method: Channels' in-memory channel layer stands in for Redis (same API); sessions are
recording stand-ins for WebSocket connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from quanta.consumers.hub import GatewayHub
from quanta.groups import ENGINE_CHANNEL, GATEWAYS_GROUP

ALICE, BOB = bytes([1]) * 32, bytes([2]) * 32


class Recorder:
    """A connection that records what the hub hands it."""

    def __init__(self) -> None:
        self.delivered: list[bytes] = []
        self.signed: list[bool] = []
        self.refusals: list[bytes] = []
        self.changed = asyncio.Event()

    async def deliver(self, message: bytes, signed: bool = True) -> None:
        self.delivered.append(message)
        self.signed.append(signed)
        self.changed.set()

    async def refused(self, envelope: bytes) -> None:
        self.refusals.append(envelope)
        self.changed.set()

    async def until(self, done: Callable[[], bool]) -> None:
        """Waits (at most 5 s) until `done()` holds."""
        async with asyncio.timeout(5):
            while not done():
                self.changed.clear()
                await self.changed.wait()


async def started_hub(inflight_max: int = 10, expiry_s: float = 60.0) -> GatewayHub:
    hub = GatewayHub(InMemoryChannelLayer(), inflight_max, expiry_s)
    await hub.start()
    return hub


async def engine_batches(hub: GatewayHub, count: int) -> list[dict]:  # type: ignore[type-arg]
    return [await asyncio.wait_for(hub.layer.receive(ENGINE_CHANNEL), 5) for _ in range(count)]


async def test_requests_submitted_together_leave_as_one_message_in_order() -> None:
    hub = await started_hub()
    first, second = hub.open(Recorder()), hub.open(Recorder())
    hub.submit(first, b"r1")  # The sender task runs on a later turn: all three wait for it.
    hub.submit(second, b"r2")
    hub.submit(first, b"r3")
    (batch,) = await engine_batches(hub, 1)
    hub.submit(second, b"r4")
    (later,) = await engine_batches(hub, 1)
    assert batch["requests"] == [(first, b"r1"), (second, b"r2"), (first, b"r3")]
    assert later["requests"] == [(second, b"r4")]
    assert batch["hub"] == later["hub"] == hub.channel
    assert batch["batch"] != later["batch"]
    assert hub.waiting == 4


async def test_admission_stops_at_the_limit_until_the_engine_credits() -> None:
    hub = await started_hub(inflight_max=3)
    number = hub.open(Recorder())
    for data in (b"r1", b"r2"):
        assert hub.admit()
        hub.submit(number, data)
    (first,) = await engine_batches(hub, 1)
    assert hub.admit()
    hub.submit(number, b"r3")
    assert not hub.admit()
    await engine_batches(hub, 1)
    await hub.dispatch({"type": "hub.replies", "replies": [], "consumed": [first["batch"]]})
    assert hub.waiting == 1 and hub.admit()


async def test_uncredited_batches_stop_counting_after_the_expiry() -> None:
    hub = await started_hub(inflight_max=1, expiry_s=0.0)
    hub.submit(hub.open(Recorder()), b"r1")
    await engine_batches(hub, 1)
    assert hub.admit()  # The engine never answered; after the expiry the room is back.


async def test_a_restarted_engine_frees_the_room_its_predecessor_held() -> None:
    hub = await started_hub(inflight_max=1)
    hub.submit(hub.open(Recorder()), b"r1")
    await engine_batches(hub, 1)
    assert not hub.admit()  # Taken by an engine that then crashed: never credited.
    await hub.dispatch({"type": "hub.engine_started"})
    assert hub.waiting == 0 and hub.admit()


async def test_account_results_reach_every_connection_of_the_key_and_no_other() -> None:
    hub = await started_hub()
    alice_one, alice_two, bob = Recorder(), Recorder(), Recorder()
    for session, key in ((alice_one, ALICE), (alice_two, ALICE), (bob, BOB)):
        hub.bind(hub.open(session), key)
    unbound = Recorder()
    hub.open(unbound)
    await hub.layer.group_send(
        GATEWAYS_GROUP,
        {
            "type": "hub.accounts",
            "messages": [[ALICE, b"a1", False], [BOB, b"b1", True], [ALICE, b"a2", True]],
        },
    )
    await alice_two.until(lambda: len(alice_two.delivered) == 2)
    await bob.until(lambda: len(bob.delivered) == 1)
    assert alice_one.delivered == alice_two.delivered == [b"a1", b"a2"]
    assert alice_one.signed == [False, True]  # The engine's word on signing is passed on.
    assert bob.delivered == [b"b1"]
    assert unbound.delivered == []


async def test_replies_reach_their_connection_and_closed_ones_are_skipped() -> None:
    hub = await started_hub()
    alice, bob = Recorder(), Recorder()
    alice_number, bob_number = hub.open(alice), hub.open(bob)
    hub.bind(bob_number, BOB)
    hub.close(bob_number, BOB)
    replies = [[alice_number, b"refused"], [bob_number, b"gone"]]
    await hub.dispatch({"type": "hub.replies", "replies": replies, "consumed": []})
    await hub.dispatch({"type": "hub.accounts", "messages": [[BOB, b"late", True]]})
    assert alice.delivered == [b"refused"]
    assert bob.delivered == []


class FullLayer(InMemoryChannelLayer):
    """An in-memory layer whose engine channel is always full."""

    async def send(self, channel: str, message: dict) -> None:  # type: ignore[type-arg]
        if channel == ENGINE_CHANNEL:
            raise ChannelFull()
        await super().send(channel, message)


async def test_a_full_engine_channel_refuses_the_batch_and_frees_its_room() -> None:
    hub = GatewayHub(FullLayer(), 5, 60.0)
    await hub.start()
    session = Recorder()
    number = hub.open(session)
    hub.submit(number, b"r1")
    hub.submit(number, b"r2")
    await session.until(lambda: len(session.refusals) == 2)
    assert session.refusals == [b"r1", b"r2"]
    assert hub.waiting == 0


async def test_one_connection_cannot_take_the_whole_room() -> None:
    # Admission was per process only: one connection could fill it and every other client of
    # the process got 429.
    hub = GatewayHub(InMemoryChannelLayer(), 10, 60.0, session_inflight_max=3)
    await hub.start()
    greedy, polite = hub.open(Recorder()), hub.open(Recorder())
    for data in (b"r1", b"r2", b"r3"):
        assert hub.admit(greedy)
        hub.submit(greedy, data)
    assert not hub.admit(greedy)
    assert hub.admit(polite)
    (batch,) = await engine_batches(hub, 1)
    await hub.dispatch({"type": "hub.replies", "replies": [], "consumed": [batch["batch"]]})
    assert hub.admit(greedy)  # credited by the engine: its room is back


async def test_a_key_gets_at_most_its_share_of_connections() -> None:
    hub = GatewayHub(InMemoryChannelLayer(), 10, 60.0, key_sessions_max=2)
    await hub.start()
    numbers = [hub.open(Recorder()) for _ in range(3)]
    assert [hub.bind(n, ALICE) for n in numbers] == [True, True, False]
    assert hub.bind(numbers[2], BOB)  # another key has its own share
    hub.close(numbers[0], ALICE)
    fourth = hub.open(Recorder())
    assert hub.bind(fourth, ALICE)
