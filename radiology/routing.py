"""WebSocket routes of every app; later apps append theirs here."""
from django.urls import path

from radiology.consumers import NotificationConsumer
from reporting.consumers import ReportPresenceConsumer
from reporting.dictation.consumers import DictationConsumer
from worklist.consumers import OrderEventsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/worklist/", OrderEventsConsumer.as_asgi()),
    path("ws/reports/<int:report_id>/presence/", ReportPresenceConsumer.as_asgi()),
    path("ws/dictations/", DictationConsumer.as_asgi()),
]
