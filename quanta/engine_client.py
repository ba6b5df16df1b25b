"""Web-process requests that the engine answers (initialization, settings updates, the
account of a key).

Such a request goes to the engine's channel with a fresh reply channel, and the caller waits
a bounded time for the one answer: a dict with `status`, `description` and, on success,
`apex`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from quanta import events
from quanta.groups import ENGINE_CHANNEL


async def _ask_engine(make: Callable[[str], Mapping[str, Any]], timeout_s: float) -> dict[str, Any]:
    """Sends the event `make(reply)` to the engine and returns its answer on that new reply
    channel, without its type; raises TimeoutError past `timeout_s`, ChannelFull if the
    engine's channel is full."""
    layer = get_channel_layer()
    assert layer is not None
    reply = await layer.new_channel()
    await layer.send(ENGINE_CHANNEL, make(reply))
    answer = dict(await asyncio.wait_for(layer.receive(reply), timeout_s))
    answer.pop("type", None)
    return answer


async def engine_ask(
    event_type: Literal["quanta.init", "quanta.update"], envelope: bytes, timeout_s: float
) -> dict[str, Any] | None:
    """Sends `envelope` to the engine as `event_type`; returns its answer, None on timeout."""
    try:
        return await _ask_engine(
            lambda reply: events.engine_ask(event_type, envelope, reply), timeout_s
        )
    except TimeoutError:
        return None


ACCOUNT_OF_TIMEOUT_S = 2.0
"""How long a handshake waits for the engine to name a key's account before it settles for
the persisted rows' answer (an engine busy Rising or restarting)."""


async def engine_account_of(
    public_key: bytes, timeout_s: float = ACCOUNT_OF_TIMEOUT_S
) -> int | None:
    """Returns the key's account id in the engine's memory (0: none), None on timeout."""
    try:
        answer = await _ask_engine(
            lambda reply: events.quanta_account_of(public_key, reply), timeout_s
        )
    except (TimeoutError, ChannelFull):  # A busy engine: the rows' answer stands.
        return None
    return int(answer["account_id"])
