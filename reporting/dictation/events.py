"""Dictation results for the dictating user's open editors, over the WebSocket at /ws/dictations/.

Each user has one channel-layer group; an event is sent after the transaction that stored the result commits,
so an editor never inserts text whose dictation was rolled back. Messages are JSON objects:

    {"kind": "dictation.done" | "dictation.failed", "dictation_id", "report_id", "section", "status",
     "transcript", "segments", "text", "error"}

`segments` are the text and voice commands in order (reporting.dictation.commands); `text` is the dictated
text without the commands.
"""
from radiology.events import publish_after_commit
from reporting.dictation import commands
from reporting.models import DictationStatus


def user_group(user_id):
    return f"dictations-user-{user_id}"


def dictation_event(dictation, segments=None):
    segments = segments if segments is not None else []
    return {
        "type": "dictation.result",
        "kind": "dictation.done" if dictation.status == DictationStatus.DONE else "dictation.failed",
        "dictation_id": dictation.pk,
        "report_id": dictation.report_id,
        "section": dictation.section,
        "status": dictation.status,
        "transcript": dictation.transcript,
        "segments": segments,
        "text": commands.plain_text(segments),
        "error": dictation.error,
    }


def dictation_finished(dictation, segments=None):
    """Tell the dictating user's editors the dictation's outcome, once the current transaction commits."""
    publish_after_commit(user_group(dictation.user_id), dictation_event(dictation, segments))
