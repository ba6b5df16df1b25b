"""The herald between alpha (node 0) and each auditor, as queues the scheduler drains.

Each auditor has one link to alpha, two queues (one per direction). A message waits in its
queue until the scheduler delivers it (its delay), possibly not the oldest first (reordering),
possibly twice (duplication). A dropped message breaks the link, as a lost frame does on a
WebSocket: everything in flight both ways is gone, and the auditor must reconnect (its
handshake tells alpha its apex). A crashed node's links break the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from quanta.core.xdr.schema import AuditorResult, SignedQuantum

ALPHA = 0
QUEUE_MAX = 400
"""Messages in flight on one direction of one link (the scheduler delivers before more)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """Auditor -> alpha on connect: the auditor's apex (its quanta cursor)."""

    cursor: int


@dataclass(frozen=True, slots=True)
class Resend:
    """Auditor -> alpha: it saw a gap; send the quanta above `apex`."""

    apex: int


@dataclass(frozen=True, slots=True)
class Results:
    """Auditor -> alpha: its signatures (and transaction signatures)."""

    results: tuple[AuditorResult, ...]


@dataclass(frozen=True, slots=True)
class Catchup:
    """Auditor -> rising alpha: persisted quanta above alpha's apex, one page."""

    quanta: tuple[SignedQuantum, ...]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Quanta:
    """Alpha -> auditor: quanta with alpha's signature, and alpha's apex."""

    quanta: tuple[SignedQuantum, ...]
    alpha_apex: int


@dataclass(frozen=True, slots=True)
class RisingAsk:
    """Alpha -> auditor: alpha is Rising; send everything above `apex`."""

    apex: int


Message = Hello | Resend | Results | Catchup | Quanta | RisingAsk


class Network:
    """The links of the auditors `1..n-1` to alpha."""

    def __init__(self, nodes: int) -> None:
        """Starts with every link down (each auditor connects when it starts)."""
        self.nodes = nodes
        self.up: set[int] = set()
        self.queues: dict[tuple[int, int], list[Message]] = {}
        for auditor in range(1, nodes):
            self.queues[(auditor, ALPHA)] = []
            self.queues[(ALPHA, auditor)] = []

    def connect(self, auditor: int) -> None:
        """Opens the auditor's link (empty queues)."""
        self.up.add(auditor)

    def disconnect(self, auditor: int) -> None:
        """Breaks the auditor's link: what was in flight either way is lost."""
        self.up.discard(auditor)
        self.queues[(auditor, ALPHA)].clear()
        self.queues[(ALPHA, auditor)].clear()

    def send(self, src: int, dst: int, message: Message) -> None:
        """Queues a message if the link is up (a send on a broken link is lost)."""
        auditor = dst if src == ALPHA else src
        queue = self.queues[(src, dst)]
        if auditor in self.up and len(queue) < QUEUE_MAX:
            queue.append(message)

    def broadcast(self, message: Message) -> None:
        """Alpha -> every connected auditor (the herald group)."""
        for auditor in sorted(self.up):
            self.send(ALPHA, auditor, message)

    def take(self, src: int, dst: int, index: int) -> Message:
        """Removes and returns the message at `index` of a queue (0: the oldest)."""
        return self.queues[(src, dst)].pop(index)

    def duplicate(self, src: int, dst: int, index: int) -> None:
        """Queues a copy of a message right after it."""
        queue = self.queues[(src, dst)]
        queue.insert(index + 1, queue[index])

    def busy(self) -> list[tuple[int, int]]:
        """Returns the directions with messages in flight."""
        return [link for link, queue in sorted(self.queues.items()) if queue]
