"""Channels consumers of the quanta app: `GatewayConsumer` (`/ws/`, `gateway.py`), the client
gateway, with its process's `GatewayHub` (`hub.py`) and the session handshake shared with the
other endpoints (`client_session.py`). The engine's workers are the node runtime's
(`quanta.node`)."""

from quanta.consumers.gateway import GatewayConsumer

__all__ = ["GatewayConsumer"]
