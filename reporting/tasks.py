"""Celery tasks of dictation, thin wrappers over reporting/dictation/services.py.

(The distribution and critical-result tasks live in reporting/distribution_tasks.py and critical_tasks.py.)
"""
from celery import shared_task

from reporting.dictation import services


@shared_task(ignore_result=True)
def transcribe_dictation(dictation_id):
    """Transcribe one uploaded dictation; queued when the upload commits."""
    services.transcribe(dictation_id)


@shared_task(ignore_result=True)
def requeue_stalled_dictations():
    """Queue again the transcriptions whose task was lost (periodic)."""
    return services.requeue_stalled()


@shared_task(ignore_result=True)
def purge_dictation_audio():
    """Delete dictation audio RADIOLOGY_DICTATION_RETENTION_DAYS after its report was signed (periodic)."""
    return services.purge_audio()
