"""WebSocket routes and worker channels of the quanta app."""

from django.urls import path

from quanta.consumers import EngineConsumer, GatewayConsumer
from quanta.groups import ENGINE_CHANNEL

websocket_urlpatterns = [path("ws/", GatewayConsumer.as_asgi())]
channel_routes = {ENGINE_CHANNEL: EngineConsumer.as_asgi()}
