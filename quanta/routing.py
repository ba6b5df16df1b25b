"""WebSocket routes and worker channels of the quanta app.

A routing module wires applications together, so it may import from the apps above (the
chronicler's history pages for the gateway) and the node runtime (the engine worker), as
`constellation_site` does; tests/test_layers.py says which modules may.
"""

from typing import Any

from django.conf import settings
from django.urls import path

from chronicler.selectors import quantum_info_page
from quanta.consumers import GatewayConsumer
from quanta.groups import ENGINE_CHANNEL
from quanta.node.alpha_worker import AlphaWorker
from quanta.node.auditor_worker import AuditorWorker

websocket_urlpatterns = [path("ws/", GatewayConsumer.as_asgi(history_page=quantum_info_page))]

_ENGINE_WORKERS = {"alpha": AlphaWorker.as_asgi(), "auditor": AuditorWorker.as_asgi()}


async def engine_worker(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Runs the engine worker of the role CONSTELLATION_ROLE names (read when the worker
    starts, not at import)."""
    role = "auditor" if settings.NODE_ROLE == "auditor" else "alpha"
    await _ENGINE_WORKERS[role](scope, receive, send)


channel_routes = {ENGINE_CHANNEL: engine_worker}
