"""WebSocket routes of the herald app."""

from django.urls import path

from herald.consumers import HeraldConsumer

websocket_urlpatterns = [path("ws/herald/", HeraldConsumer.as_asgi())]
