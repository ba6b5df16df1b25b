"""The web process: daphne with per-route WebSocket limits (`constellation_site.edge`).

Run it as daphne itself: `python -m constellation_site.server -b HOST -p PORT
constellation_site.asgi:application` (every daphne option works). The one difference is the
WebSocket protocol class: before a handshake goes to the application it sets the route's
largest message and frame (so an oversized frame is refused as it arrives, not after it was
buffered) and counts the peer's connections on the route, refusing one too many with HTTP 429.
Daphne's own largest message is raised to the herald's, the largest any route takes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from autobahn.websocket.types import ConnectionDeny
from daphne import cli, ws_protocol

from constellation_site.edge import ENVELOPE_SLACK_BYTES, PROCESS_CAPS, Route, route_of, routes
from quanta.core.xdr.schema import Limits
from quanta.web_metrics import RefusalCause, refused

PER_ADDRESS_MAX = int(os.environ.get("CONSTELLATION_WS_PER_ADDRESS_MAX", "64"))
HERALD_PER_ADDRESS_MAX = int(os.environ.get("CONSTELLATION_WS_HERALD_PER_ADDRESS_MAX", "4"))
CLIENT_ROUTE, HERALD_ROUTE = routes(PER_ADDRESS_MAX, HERALD_PER_ADDRESS_MAX)
CAPS = PROCESS_CAPS
REFUSAL_CAUSES = {
    CLIENT_ROUTE.name: RefusalCause.CLIENT_CONNECTIONS_PER_ADDRESS,
    HERALD_ROUTE.name: RefusalCause.HERALD_CONNECTIONS_PER_ADDRESS,
}
TOO_MANY_CONNECTIONS = 429
SEND_BYTES_MAX = Limits.BATCH_BYTES_MAX + ENVELOPE_SLACK_BYTES
"""Largest message the process sends on any route. The route's limit is for what a peer
sends; the process's own answers are bounded where they are made (a history page by
`Limits.HISTORY_PAGE_BYTES_MAX`, a quanta batch by `BATCH_BYTES_MAX`). Autobahn applies one
limit both ways: with the client route's 65 KiB, a history page above it (300 payments, or a
few deposit quanta) was closed with 1011 instead of sent."""


class LimitedWebSocketProtocol(ws_protocol.WebSocketProtocol):  # type: ignore[misc]
    """Daphne's WebSocket protocol with the route's limits applied at the handshake."""

    edge: tuple[Route, str] | None = None

    def onConnect(self, request: Any) -> Any:  # noqa: N802 (autobahn's name)
        route = route_of(request.path, CLIENT_ROUTE, HERALD_ROUTE)
        self.maxMessagePayloadSize = route.message_bytes_max
        self.maxFramePayloadSize = route.message_bytes_max
        # Close with a frame saying why (1009 message too big), not by dropping the socket.
        self.failByDrop = False
        address = str(getattr(self.transport.getPeer(), "host", "unknown"))
        if not CAPS.admit(route, address):
            refused(REFUSAL_CAUSES[route.name])
            raise ConnectionDeny(
                TOO_MANY_CONNECTIONS, f"too many {route.name} connections from {address}"
            )
        self.edge = (route, address)
        return super().onConnect(request)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:  # noqa: N802, N803
        if self.edge is None:
            return  # Refused before daphne knew of it: nothing to tell daphne.
        route, address = self.edge
        self.edge = None
        CAPS.release(route, address)
        super().onClose(wasClean, code, reason)

    def serverSend(self, content: bytes | str, binary: bool = False) -> None:  # noqa: N802
        """Sends a message of the application, unless the connection is already closing.

        The edge closes a connection itself (1009 for an oversized frame) and a peer may close
        at any time; daphne learns of it only when the socket is gone, so until then the
        consumer's answers to earlier frames still come here, and autobahn refuses each with
        `Disconnected`, which escaped through the consumer as a logged traceback. The peer
        would never read them: they are dropped."""
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        receive_max = self.maxMessagePayloadSize
        self.maxMessagePayloadSize = SEND_BYTES_MAX  # the reactor runs one thing at a time
        try:
            super().serverSend(content, binary)
        finally:
            self.maxMessagePayloadSize = receive_max


def main(argv: list[str]) -> None:
    """Runs daphne's command line with the limited protocol and the herald's message size."""
    ws_protocol.WebSocketFactory.protocol = LimitedWebSocketProtocol
    size = str(HERALD_ROUTE.message_bytes_max)
    cli.CommandLineInterface().run(
        ["--websocket-max-message-size", size, "--websocket-max-frame-size", size, *argv]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
