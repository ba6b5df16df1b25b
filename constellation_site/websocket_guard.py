"""`WebsocketHostGuard`: the allowed-hosts rule of HTTP requests, applied to WebSocket routes.

Django checks the Host header of every HTTP request against ALLOWED_HOSTS; Channels' routes
check nothing. A browser sends an Origin header with every WebSocket handshake, so a page on
another site could otherwise open `/ws/` to a node the victim can reach (cross-site WebSocket
hijacking) or reach it through a rebound DNS name. The guard refuses (HTTP 403, before the
handshake completes) a handshake whose Host or Origin names a host outside ALLOWED_HOSTS.
A handshake without an Origin comes from a program, not a browser (the Python client, the
herald link): an Origin is no protection against those, so they pass, and the gateway's own
handshake authenticates them as it does everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WebsocketHostGuard:
    """ASGI middleware in front of the WebSocket router: refuses foreign Hosts and Origins."""

    def __init__(self, app: ASGIApp) -> None:
        """Wraps the application that serves the allowed handshakes."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not handshake_allowed(scope):
            await WebsocketDenier()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def handshake_allowed(scope: Scope) -> bool:
    """Tells whether the handshake's Host and (if sent) Origin are allowed hosts."""
    allowed = settings.ALLOWED_HOSTS
    headers = dict(scope.get("headers", []))
    host = headers.get(b"host")
    if host is not None and not validate_host(split_domain_port(host.decode("latin1"))[0], allowed):
        return False
    origin = headers.get(b"origin")
    if origin is None:
        return True
    hostname = urlsplit(origin.decode("latin1")).hostname
    return hostname is not None and validate_host(hostname, allowed)
