"""The channel layer of every node: channels_redis with one Redis round trip where it took four.

Why: on these machines one asyncio Redis round trip costs about 0.2 ms of CPU, and
channels_redis 4.3 spends four on a send (ZREMRANGEBYSCORE, ZCOUNT, ZADD, EXPIRE), four on a
group send and four on a receive (a clean-up script, BZPOPMIN, ZADD to the backup queue, and
a ZPOPMIN from it after delivery). With several channel messages per batch of quanta on every
node, that was most of a constellation's CPU. The storage layout and the guarantees are
channels_redis's own; only the round trips are merged into Lua scripts:

- `send`: one script drops expired messages, checks capacity (raising ChannelFull as before;
  now atomically, where channels_redis could overshoot) and adds the message.
- `group_send`: one script drops expired members and returns the rest; one more sends to all of
  them (as channels_redis does).
- `receive_single`: one script removes the message the previous receive delivered from the
  backup queue, moves any message a cancelled receive left there back to the channel, pops the
  next message and backs it up. A message stays in the backup queue until the next receive (or
  until a cancelled receive's message is put back), so a receive cancelled while waiting for
  the script's answer loses nothing. Only when the channel is empty does it block in
  BZPOPMIN, like channels_redis, and return what that pops.

Written against channels_redis 4.3.0 (pinned in requirements.txt); tests/integration run the
layer against the real Redis.
"""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer

_SEND = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

_GROUP_MEMBERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: channel keys; ARGV: one message per key, one capacity per key, cutoff, now, expiry.
_GROUP_SEND = """
local n = #KEYS
local cutoff, now, expiry = ARGV[2 * n + 1], ARGV[2 * n + 2], ARGV[2 * n + 3]
local over_capacity = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, cutoff)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""

# KEYS: channel, backup; ARGV[1]: '1' if the message the previous receive popped was delivered.
_POP = """
if ARGV[1] == '1' then
    redis.call('ZPOPMIN', KEYS[2])
end
local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed_up, 1, -2 do
    redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
end
redis.call('DEL', KEYS[2])
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then
    return false
end
redis.call('ZADD', KEYS[2], popped[2], popped[1])
return popped[1]
"""


class NodeChannelLayer(RedisChannelLayer):
    """channels_redis's RedisChannelLayer with its round trips merged (see the module doc)."""

    def __init__(
        self, *args: Any, group_expiries: dict[str, int] | None = None, **kwargs: Any
    ) -> None:
        """Takes channels_redis's configuration, plus `group_expiries`: seconds after which a
        member of the named group that did not re-join is dropped (instead of `group_expiry`),
        for groups whose members re-join often and may die without leaving."""
        super().__init__(*args, **kwargs)
        self.group_expiries = dict(group_expiries or {})
        # Channel keys whose last popped message was delivered and still sits in the backup.
        self._delivered: set[str] = set()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Sends a message onto a (general or process-specific) channel."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        if "!" in channel:
            message = {**message, "__asgi_channel__": channel}
            key = self.prefix + self.non_local_name(channel)
            index = self.consistent_hash(channel)
        else:
            key = self.prefix + channel
            index = next(self._send_index_generator)
        now = time.time()
        added = await self.connection(index).eval(
            _SEND,
            1,
            key,
            int(now) - int(self.expiry),
            self.get_capacity(channel),
            now,
            self.serialize(message),
            int(self.expiry),
        )
        if not added:
            raise ChannelFull()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Sends a message to every channel of the group."""
        assert self.require_valid_group_name(group), "Group name not valid"
        connection = self.connection(self.consistent_hash(group))
        cutoff = int(time.time()) - self.group_expiries.get(group, self.group_expiry)
        members = await connection.eval(_GROUP_MEMBERS, 1, self._group_key(group), cutoff)
        names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(names, message)
        for index, keys in by_connection.items():
            now = time.time()
            await self.connection(index).eval(
                _GROUP_SEND,
                len(keys),
                *keys,
                *(messages[key] for key in keys),
                *(capacities[key] for key in keys),
                int(now) - int(self.expiry),
                now,
                int(self.expiry),
            )

    async def receive_single(self, channel: str) -> tuple[Any, dict[str, Any]]:
        """Receives one message off the channel (one round trip when one is waiting)."""
        assert self.require_valid_channel_name(channel, receive=True), "Channel name invalid"
        if "!" in channel:
            assert channel.endswith("!")
            index = self.consistent_hash(channel)
        else:
            index = next(self._receive_index_generator)
        key = self.prefix + channel
        backup = self._backup_channel_name(key)
        connection = self.connection(index)
        await self.receive_clean_locks.acquire(key)
        try:
            content = None
            while content is None:
                # Cleared before the await: once the script ran, the delivered message is gone
                # from the backup even if this receive is cancelled before the reply.
                delivered = "1" if key in self._delivered else "0"
                self._delivered.discard(key)
                content = await connection.eval(_POP, 2, key, backup, delivered)
                if content is not None:
                    self._delivered.add(key)  # Backed up: the next receive removes it.
                    break
                # Nothing waiting: block until a message comes. Nothing can cancel this
                # receive between BZPOPMIN's answer and the return below (no await), so the
                # message is not backed up (channels_redis's extra ZADD protected nothing).
                result = await connection.bzpopmin(key, timeout=self.brpop_timeout)
                if result is not None:
                    content = result[1]
            message = self.deserialize(content)
        finally:
            self.receive_clean_locks.release(key)
        # Same return convention as channels_redis: (channel or channels, message).
        return message.pop("__asgi_channel__", channel), message
