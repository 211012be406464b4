"""The dictation stream at /ws/dictations/: the signed-in user's transcripts, as they finish
(reporting/dictation/events.py describes the messages). Each user hears only their own dictations."""
from radiology.consumers import UserStreamConsumer
from reporting.dictation.events import user_group


class DictationConsumer(UserStreamConsumer):
    def group_for(self, user):
        return user_group(user.pk)

    dictation_result = UserStreamConsumer.forward
