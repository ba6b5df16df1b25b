"""Every message between a node's processes, as typed dicts with one constructor each.

The channel layer carries plain dicts (msgpack: tuples arrive as lists, which unpack alike).
Senders build them here and receivers annotate their handlers with the same types, so mypy
checks both ends and the engine's protocol reads on one screen:

- into the engine (`ENGINE_CHANNEL`): `quanta.requests` (gateway hubs), `quanta.init` and
  `quanta.update` (web views, answered by `init.result` / `update.result`), `quanta.account_of`
  (a gateway's handshake, answered by `account.of`),
  `quanta.signatures`, `quanta.catchup`, `quanta.auditor_state` and `herald.catchup` (alpha's
  herald endpoint), `quanta.batch` and `quanta.link_down` (an auditor's herald link);
- out of the engine: `hub.replies`, `hub.accounts` and `hub.engine_started` (to the hubs),
  `herald.quanta` and `herald.rising` (to alpha's herald connections), `herald.results` and
  `herald.resend` (to an auditor's herald link).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Pair = tuple[int, bytes]
"""A request or reply with the number of the connection it belongs to at its hub."""


class QuantaRequests(TypedDict):
    """Verified client requests of one hub, in order; the engine credits `batch`."""

    type: Literal["quanta.requests"]
    hub: str
    batch: int
    requests: list[Pair]


class EngineAsk(TypedDict):
    """A signed ConstellationUpdate for the engine, answered on `reply`."""

    type: Literal["quanta.init", "quanta.update"]
    envelope: bytes
    reply: str


class EngineAnswer(TypedDict):
    """The engine's answer to an `EngineAsk` (an HTTP status, text, and the apex if done)."""

    type: Literal["init.result", "update.result"]
    status: int
    description: str
    apex: NotRequired[int]


class QuantaAccountOf(TypedDict):
    """Asks the engine for the account of a key in its in-memory state, answered on `reply`
    with an `AccountOf`: the persisted rows lag behind by up to a snapshot interval."""

    type: Literal["quanta.account_of"]
    public_key: bytes
    reply: str


class AccountOf(TypedDict):
    """The engine's answer to `quanta.account_of` (0: the key has no account)."""

    type: Literal["account.of"]
    account_id: int


class QuantaSignatures(TypedDict):
    """An auditor's signed frame (MessageEnvelope XDR, its signature checked) holding a
    ResultsBatch, relayed by alpha's herald endpoint; the frame is kept as evidence if a
    signature in it does not verify."""

    type: Literal["quanta.signatures"]
    auditor_key: bytes
    frame: bytes


class QuantaAuditorState(TypedDict):
    """An auditor's connection `channel` at alpha's herald endpoint: its handshake or state
    report (`connected`, with its state and reason), or its disconnection."""

    type: Literal["quanta.auditor_state"]
    auditor_key: bytes
    channel: str
    connected: bool
    state: int
    reason: str


class QuantaLinkDown(TypedDict):
    """An auditor's herald link lost its connection to alpha, saying why."""

    type: Literal["quanta.link_down"]
    reason: str


class QuantaFlushAsk(TypedDict):
    """An auditor's herald link asks its engine to persist what it signed, then to answer
    `reply` (before the link answers a rising alpha from the database)."""

    type: Literal["quanta.flush_ask"]
    reply: str


class HeraldFlushed(TypedDict):
    """The auditor's engine persisted every quantum it signed before the ask."""

    type: Literal["herald.flushed"]


class QuantaCatchup(TypedDict):
    """An auditor's CatchupQuantaBatch (XDR) for a rising alpha."""

    type: Literal["quanta.catchup"]
    auditor_key: bytes
    batch: bytes


class HeraldCatchup(TypedDict):
    """An auditor's cursor: alpha's engine sends it the quanta above, to `reply`."""

    type: Literal["herald.catchup"]
    cursor: int
    reply: str


class QuantaBatch(TypedDict):
    """A herald frame from alpha (a signed QuantaBatch), for an auditor's engine."""

    type: Literal["quanta.batch"]
    batch: bytes
    reply: str


class HubReplies(TypedDict):
    """Answers to single connections of a hub, and the request batches the engine took."""

    type: Literal["hub.replies"]
    replies: list[Pair]
    consumed: list[int]


class HubAccounts(TypedDict):
    """Results for account keys: (public key, Message XDR, whether it must be signed)."""

    type: Literal["hub.accounts"]
    messages: list[tuple[bytes, bytes, bool]]


class HubEngineStarted(TypedDict):
    """A (re)started engine: what its predecessor took will never be credited."""

    type: Literal["hub.engine_started"]


class HeraldQuanta(TypedDict):
    """A QuantaBatch (Message XDR) for the auditors."""

    type: Literal["herald.quanta"]
    batch: bytes


class HeraldRising(TypedDict):
    """Alpha is rising from `apex`: ask the auditor for what it holds above."""

    type: Literal["herald.rising"]
    apex: int


class HeraldResults(TypedDict):
    """An auditor's ResultsBatch (Message XDR) for alpha."""

    type: Literal["herald.results"]
    message: bytes


class HeraldResend(TypedDict):
    """The auditor's engine saw a gap: ask alpha to resend from `apex`."""

    type: Literal["herald.resend"]
    apex: int


def quanta_requests(hub: str, batch: int, requests: list[Pair]) -> QuantaRequests:
    """Returns a `quanta.requests` event."""
    return {"type": "quanta.requests", "hub": hub, "batch": batch, "requests": requests}


def engine_ask(
    kind: Literal["quanta.init", "quanta.update"], envelope: bytes, reply: str
) -> EngineAsk:
    """Returns a `quanta.init` or `quanta.update` event."""
    return {"type": kind, "envelope": envelope, "reply": reply}


def engine_answer(
    kind: Literal["init.result", "update.result"], status: int, description: str
) -> EngineAnswer:
    """Returns an engine's answer (add `apex` once the update executed)."""
    return {"type": kind, "status": status, "description": description}


def quanta_account_of(public_key: bytes, reply: str) -> QuantaAccountOf:
    """Returns a `quanta.account_of` event."""
    return {"type": "quanta.account_of", "public_key": public_key, "reply": reply}


def account_of(account_id: int) -> AccountOf:
    """Returns the engine's answer to `quanta.account_of`."""
    return {"type": "account.of", "account_id": account_id}


def quanta_signatures(auditor_key: bytes, frame: bytes) -> QuantaSignatures:
    """Returns a `quanta.signatures` event (`auditor_key`: the connection's bound key)."""
    return {"type": "quanta.signatures", "auditor_key": auditor_key, "frame": frame}


def quanta_auditor_state(
    auditor_key: bytes, channel: str, connected: bool, state: int = 0, reason: str = ""
) -> QuantaAuditorState:
    """Returns a `quanta.auditor_state` event."""
    return {
        "type": "quanta.auditor_state",
        "auditor_key": auditor_key,
        "channel": channel,
        "connected": connected,
        "state": state,
        "reason": reason,
    }


def quanta_link_down(reason: str) -> QuantaLinkDown:
    """Returns a `quanta.link_down` event."""
    return {"type": "quanta.link_down", "reason": reason}


def quanta_flush_ask(reply: str) -> QuantaFlushAsk:
    """Returns a `quanta.flush_ask` event."""
    return {"type": "quanta.flush_ask", "reply": reply}


def herald_flushed() -> HeraldFlushed:
    """Returns a `herald.flushed` event."""
    return {"type": "herald.flushed"}


def quanta_catchup(auditor_key: bytes, batch: bytes) -> QuantaCatchup:
    """Returns a `quanta.catchup` event (`auditor_key`: the connection's bound key)."""
    return {"type": "quanta.catchup", "auditor_key": auditor_key, "batch": batch}


def herald_catchup(cursor: int, reply: str) -> HeraldCatchup:
    """Returns a `herald.catchup` event."""
    return {"type": "herald.catchup", "cursor": cursor, "reply": reply}


def quanta_batch(batch: bytes, reply: str) -> QuantaBatch:
    """Returns a `quanta.batch` event."""
    return {"type": "quanta.batch", "batch": batch, "reply": reply}


def hub_replies(replies: list[Pair], consumed: list[int]) -> HubReplies:
    """Returns a `hub.replies` event."""
    return {"type": "hub.replies", "replies": replies, "consumed": consumed}


def hub_accounts(messages: list[tuple[bytes, bytes, bool]]) -> HubAccounts:
    """Returns a `hub.accounts` event."""
    return {"type": "hub.accounts", "messages": messages}


def hub_engine_started() -> HubEngineStarted:
    """Returns a `hub.engine_started` event."""
    return {"type": "hub.engine_started"}


def herald_quanta(batch: bytes) -> HeraldQuanta:
    """Returns a `herald.quanta` event."""
    return {"type": "herald.quanta", "batch": batch}


def herald_rising(apex: int) -> HeraldRising:
    """Returns a `herald.rising` event."""
    return {"type": "herald.rising", "apex": apex}


def herald_results(message: bytes) -> HeraldResults:
    """Returns a `herald.results` event."""
    return {"type": "herald.results", "message": message}


def herald_resend(apex: int) -> HeraldResend:
    """Returns a `herald.resend` event."""
    return {"type": "herald.resend", "apex": apex}
