"""The dictation stream at /ws/dictations/: the signed-in user's transcripts, as they finish
(reporting/dictation/events.py describes the messages). Each user hears only their own dictations."""
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from radiology.consumers import CLOSE_UNAUTHENTICATED
from reporting.dictation.events import user_group


class DictationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.group_name = user_group(user.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The stream is one-way; a ping lets the page check that the connection is alive.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def dictation_result(self, event):
        await self.send_json({key: value for key, value in event.items() if key != "type"})
