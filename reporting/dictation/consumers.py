"""The dictation stream at /ws/dictations/: the signed-in user's transcripts, as they finish
(reporting/dictation/events.py describes the messages). Each user hears only their own dictations."""
from radiology.consumers import UserStreamConsumer
from reporting.dictation.events import user_group


class DictationConsumer(UserStreamConsumer):
    group_for = staticmethod(user_group)
    dictation_result = UserStreamConsumer.forward
