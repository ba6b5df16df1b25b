"""WebSocket routes of the chronicler app."""

from django.urls import path

from chronicler.consumers import ChroniclerConsumer

websocket_urlpatterns = [path("ws/chronicler/", ChroniclerConsumer.as_asgi())]
