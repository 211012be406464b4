"""Per-user notifications over WebSocket.

Services call `notify_user` inside their transaction; the event leaves only after the commit, so a browser
never hears of a change that was rolled back.
"""
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def user_group(user_id):
    return f"user-{user_id}"


def notify_user(user, kind, message, **fields):
    """Send {kind, message, ...fields} to every open page of `user`, after the current transaction commits."""
    event = {"type": "notification", "kind": kind, "message": message, **fields}
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(user_group(user.pk), event))
