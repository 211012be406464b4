"""`manage.py purge_dictation_audio`: delete the audio of dictations whose report was signed more than
RADIOLOGY_DICTATION_RETENTION_DAYS days ago (run it daily, from cron or the task scheduler)."""
from django.conf import settings
from django.core.management.base import BaseCommand

from reporting.dictation.services import purge_audio


class Command(BaseCommand):
    help = "Delete dictation audio of reports signed more than RADIOLOGY_DICTATION_RETENTION_DAYS days ago."

    def handle(self, *args, **options):
        removed = purge_audio()
        self.stdout.write(f"{removed} dictation recording(s) deleted "
                          f"(retention {settings.DICTATION_RETENTION_DAYS} days after signing)")
