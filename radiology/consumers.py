from channels.generic.websocket import AsyncJsonWebsocketConsumer

from radiology.notifications import user_group

# WebSocket close code for "not signed in" (4000-4999 are free for applications, RFC 6455 7.4.2).
CLOSE_UNAUTHENTICATED = 4401


class UserStreamConsumer(AsyncJsonWebsocketConsumer):
    """A one-way stream of events for the signed-in user: one channel-layer group per user (`group_for`, set
    by each stream to its function of the user id), joined by each of their open pages; every event is forwarded
    as JSON without its "type"."""

    group_for = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.group_name = self.group_for(user.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The stream is one-way; a ping lets the page check that the connection is alive.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def forward(self, event):
        await self.send_json({key: value for key, value in event.items() if key != "type"})


class NotificationConsumer(UserStreamConsumer):
    """The signed-in user's notifications (radiology/notifications.py)."""

    group_for = staticmethod(user_group)
    notification = UserStreamConsumer.forward
