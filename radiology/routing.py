"""WebSocket routes of every app; later apps append theirs here."""
from django.urls import path

from radiology.consumers import NotificationConsumer
from worklist.consumers import OrderEventsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/worklist/", OrderEventsConsumer.as_asgi()),
]
