"""The node's channel layer (quanta/channel_layer.py) against the real Redis.

Goal: the merged round trips keep channels_redis's behaviour and storage layout: messages
arrive once and in order on general and process-specific channels, a full channel refuses
exactly at its capacity, groups reach every member in every process, a receive that was
cancelled loses nothing, a delivered message is not delivered again, and stock channels_redis
reads what this layer writes and the other way round.
Method: layer instances on the local Redis with a prefix of their own per test, so each
instance plays one process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from quanta.channel_layer import NodeChannelLayer

REDIS = settings.REDIS_URL


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"layer-test-{uuid.uuid4().hex[:8]}"
    yield name
    layer = RedisChannelLayer(hosts=[REDIS], prefix=name)
    await layer.flush()
    await layer.close_pools()


def layer_for(prefix: str, **config: object) -> NodeChannelLayer:
    return NodeChannelLayer(hosts=[REDIS], prefix=prefix, **config)  # type: ignore[arg-type]


async def receive(layer: RedisChannelLayer, channel: str) -> dict:  # type: ignore[type-arg]
    return await asyncio.wait_for(layer.receive(channel), 5)


async def test_general_channel_delivers_once_in_order(prefix: str) -> None:
    layer = layer_for(prefix)
    for number in range(5):
        await layer.send("engine", {"type": "request", "number": number})
    received = [(await receive(layer, "engine"))["number"] for _ in range(5)]
    assert received == [0, 1, 2, 3, 4]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive("engine"), 0.3)
    await layer.close_pools()


async def test_process_channels_share_one_queue_and_each_gets_its_own(prefix: str) -> None:
    layer = layer_for(prefix)
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.send(second, {"type": "x", "to": "second"})
    await layer.send(first, {"type": "x", "to": "first"})
    got_first, got_second = await asyncio.gather(receive(layer, first), receive(layer, second))
    assert got_first == {"type": "x", "to": "first"}
    assert got_second == {"type": "x", "to": "second"}
    await layer.close_pools()


async def test_a_full_channel_refuses_at_exactly_its_capacity(prefix: str) -> None:
    layer = layer_for(prefix, channel_capacity={"engine": 3})
    for number in range(3):
        await layer.send("engine", {"type": "x", "number": number})
    with pytest.raises(ChannelFull):
        await layer.send("engine", {"type": "x", "number": 3})
    await receive(layer, "engine")
    await layer.send("engine", {"type": "x", "number": 4})  # Room again after one left.
    await layer.close_pools()


async def test_group_send_reaches_every_member_in_every_process(prefix: str) -> None:
    web_one, web_two, engine = layer_for(prefix), layer_for(prefix), layer_for(prefix)
    channels = [
        await web_one.new_channel(),
        await web_one.new_channel(),
        await web_two.new_channel(),
    ]
    for channel in channels:
        await engine.group_add("gateways", channel)
    await engine.group_send("gateways", {"type": "hub.accounts", "n": 1})
    got = await asyncio.gather(
        receive(web_one, channels[0]), receive(web_one, channels[1]), receive(web_two, channels[2])
    )
    assert got == [{"type": "hub.accounts", "n": 1}] * 3
    await engine.group_discard("gateways", channels[2])
    await engine.group_send("gateways", {"type": "hub.accounts", "n": 2})
    assert (await receive(web_one, channels[0]))["n"] == 2
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(web_two.receive(channels[2]), 0.3)
    for layer in (web_one, web_two, engine):
        await layer.close_pools()


async def test_a_cancelled_receive_loses_nothing(prefix: str) -> None:
    layer = layer_for(prefix)
    waiting = asyncio.create_task(layer.receive("engine"))
    await asyncio.sleep(0.1)  # Let it block in Redis; cancelling earlier would prove less.
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await layer.send("engine", {"type": "x", "number": 1})
    assert (await receive(layer, "engine"))["number"] == 1
    await layer.close_pools()


async def test_a_message_left_in_the_backup_comes_back_and_delivered_ones_do_not(
    prefix: str,
) -> None:
    layer = layer_for(prefix)
    await layer.send("engine", {"type": "x", "number": 1})
    await layer.send("engine", {"type": "x", "number": 2})
    assert (await receive(layer, "engine"))["number"] == 1
    # A receive cancelled between its pop and its delivery leaves the message in the backup
    # queue; a fresh layer (a restarted process) must get it back before anything newer.
    restarted = layer_for(prefix)
    connection = restarted.connection(0)
    key = f"{prefix}engine"
    backup = restarted._backup_channel_name(key)
    assert [m for m, _ in await connection.zrange(backup, 0, -1, withscores=True)] != []
    got = [(await receive(restarted, "engine"))["number"] for _ in range(2)]
    assert got == [1, 2]  # 1 was never marked delivered in the restarted process.
    # In one process, a delivered message is gone for good.
    await restarted.send("engine", {"type": "x", "number": 3})
    assert (await receive(restarted, "engine"))["number"] == 3
    assert await connection.zcard(backup) == 1  # Only 3, until the next receive.
    await layer.close_pools()
    await restarted.close_pools()


async def test_stock_channels_redis_and_this_layer_read_each_other(prefix: str) -> None:
    ours, stock = layer_for(prefix), RedisChannelLayer(hosts=[REDIS], prefix=prefix)
    await ours.send("engine", {"type": "x", "from": "ours"})
    assert (await receive(stock, "engine"))["from"] == "ours"
    await stock.wait_received()  # Stock clears its backup queue in a task of its own.
    await stock.send("engine", {"type": "x", "from": "stock"})
    assert (await receive(ours, "engine"))["from"] == "stock"
    channel = await stock.new_channel()
    await ours.group_add("g", channel)
    await ours.group_send("g", {"type": "x", "from": "ours"})
    assert (await receive(stock, channel))["from"] == "ours"
    await ours.close_pools()
    await stock.close_pools()


async def test_a_group_with_its_own_expiry_drops_members_that_did_not_rejoin(prefix: str) -> None:
    layer = layer_for(prefix, group_expiries={"gateways": 90})
    stale, fresh, kept = "hub-dead", "hub-alive", "other-member"
    for group, channel in (("gateways", stale), ("gateways", fresh), ("others", kept)):
        await layer.group_add(group, channel)
    # As if the stale hub's process died two minutes ago: its last re-join is that old.
    old = time.time() - 120
    connection = layer.connection(0)
    await connection.zadd(layer._group_key("gateways"), {stale: old})
    await connection.zadd(layer._group_key("others"), {kept: old})
    await layer.group_send("gateways", {"type": "x"})
    await layer.group_send("others", {"type": "x"})
    assert await receive(layer, fresh) == {"type": "x"}
    assert await receive(layer, kept) == {"type": "x"}  # The default expiry is a day.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(stale), 0.3)
    await layer.close_pools()
