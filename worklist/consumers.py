"""The live order stream at /ws/worklist/: every order change, as the pages that list orders need it ("my orders"
of the portal, the reading worklist, the technologists' schedule).

worklist.events sends one "order.changed" event per change, after its transaction commits, to one channel-layer
group; each connection here forwards the events its user may see. Messages are JSON objects:
{"kind": "order.changed", "order_id", "accession_number", "status", "status_label", "priority", "patient_id",
"referring_physician_id", "claimed_by_id", "claimed_by"}.
"""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from radiology.consumers import CLOSE_UNAUTHENTICATED
from worklist.access import sees_only_referred_orders
from worklist.events import ORDER_EVENTS_GROUP

# Signed in, but not allowed to see orders (RFC 6455 7.4.2 leaves 4000-4999 to applications; 4403 mirrors HTTP).
CLOSE_FORBIDDEN = 4403


class OrderEventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        may_view, referred_only = await database_sync_to_async(_access)(user)
        if not may_view:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user_id = user.pk
        # Decided once per connection: a role change takes effect when the page reconnects.
        self.referred_only = referred_only
        self.joined = True
        await self.channel_layer.group_add(ORDER_EVENTS_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(ORDER_EVENTS_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The stream is one-way; a ping lets the page check that the connection is alive.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def order_changed(self, event):
        if self.referred_only and event.get("referring_physician_id") != self.user_id:
            return
        await self.send_json({"kind": "order.changed",
                              **{key: value for key, value in event.items() if key != "type"}})


def _access(user):
    return user.has_perm("worklist.view_order"), sees_only_referred_orders(user)
