"""ASGI entry point: HTTP, the WebSocket routes of every app, and the engine channel."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "constellation_site.settings.base")
django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from chronicler.routing import websocket_urlpatterns as chronicler_routes  # noqa: E402
from constellation_site.websocket_guard import WebsocketHostGuard  # noqa: E402
from herald.routing import websocket_urlpatterns as herald_routes  # noqa: E402
from quanta import gc_policy  # noqa: E402
from quanta.routing import channel_routes, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketHostGuard(
            URLRouter([*herald_routes, *chronicler_routes, *websocket_urlpatterns])
        ),
        "channel": ChannelNameRouter(channel_routes),
    }
)
# Everything a web process keeps for its lifetime is imported by now (gc_policy explains).
gc_policy.settle()
