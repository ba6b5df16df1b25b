"""Channels consumers of the quanta app.

- `GatewayConsumer` (`/ws/`, `gateway.py`): the client gateway.
- `EngineConsumer` (`runworker quanta`, `engine.py`): the sequential engine; its results
  leave through `outbox.py`.
"""

from quanta.consumers.engine import EngineConsumer
from quanta.consumers.gateway import GatewayConsumer

__all__ = ["EngineConsumer", "GatewayConsumer"]
