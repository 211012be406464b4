"""Presence on a report at /ws/reports/<id>/presence/: who has the report open in the editor ("Dr X is editing").

Each editor page joins the report's channel-layer group and announces itself; the others answer so that the
newcomer learns who was there first, and a closing page says goodbye. Nothing is stored: presence is what the
open connections say. Messages to the page: {"kind": "presence", "editors": [{"user_id", "name", "you"}]},
the other editing connections (a second window of your own has "you": true).

Only users who may read the report connect (reporting.access); of those, only users who may edit reports are
announced, so a colleague or administrator who merely looks is not shown as editing.
"""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from radiology.choices import Role
from radiology.consumers import CLOSE_UNAUTHENTICATED
from radiology.roles import user_role
from reporting.access import may_edit_reports, visible_reports

# Signed in, but this report is not theirs to see (RFC 6455 7.4.2 leaves 4000-4999 to applications).
CLOSE_FORBIDDEN = 4403


def presence_group(report_id):
    return f"report-{report_id}-presence"


class ReportPresenceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        report_id = self.scope["url_route"]["kwargs"]["report_id"]
        may_view, announced, name = await database_sync_to_async(_access)(user, report_id)
        if not may_view:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group_name = presence_group(report_id)
        self.user_id, self.announced, self.name = user.pk, announced, name
        # The other connections of this report, by channel name: {"user_id", "name"}.
        self.others = {}
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self._tell("presence.join")
        await self._send_editors()

    async def disconnect(self, code):
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
            await self._tell("presence.leave")

    async def receive_json(self, content, **kwargs):
        # The page only listens; a ping lets it check that the connection is alive.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def presence_join(self, event):
        if event["channel"] == self.channel_name:
            return
        self._remember(event)
        # Tell the newcomer that this connection is here too.
        if self.announced:
            await self.channel_layer.send(event["channel"], {"type": "presence.here", **self._me()})
        await self._send_editors()

    async def presence_here(self, event):
        self._remember(event)
        await self._send_editors()

    async def presence_leave(self, event):
        if self.others.pop(event["channel"], None) is not None:
            await self._send_editors()

    def _remember(self, event):
        if event.get("announced"):
            self.others[event["channel"]] = {"user_id": event["user_id"], "name": event["name"]}

    def _me(self):
        return {"channel": self.channel_name, "user_id": self.user_id, "name": self.name,
                "announced": self.announced}

    async def _tell(self, kind):
        await self.channel_layer.group_send(self.group_name, {"type": kind, **self._me()})

    async def _send_editors(self):
        editors = [{**editor, "you": editor["user_id"] == self.user_id} for editor in self.others.values()]
        await self.send_json({"kind": "presence", "editors": sorted(editors, key=lambda e: e["name"])})


def _access(user, report_id):
    may_view = visible_reports(user).filter(pk=report_id).exists()
    full_name = user.get_full_name() or user.get_username()
    name = f"Dr {full_name}" if user_role(user) == Role.RADIOLOGIST else full_name
    return may_view, may_edit_reports(user), name
