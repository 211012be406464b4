"""Per-user notifications over WebSocket.

Services call `notify_user` inside their transaction; the event leaves only after the commit, so a browser
never hears of a change that was rolled back.
"""
from radiology.events import publish_after_commit


def user_group(user_id):
    return f"user-{user_id}"


def notify_user(user, kind, message, **fields):
    """Send {kind, message, ...fields} to every open page of `user`, after the current transaction commits."""
    publish_after_commit(user_group(user.pk), {"type": "notification", "kind": kind, "message": message, **fields})
