"""Dictation: the one place that records dictations, transcribes them and removes their audio.

    upload (WAV) → checked and stored under a generated name → Dictation queued → Celery task transcribe →
    backend → transcript stored, voice commands parsed → event to the user's editors over WebSocket

A dictation belongs to a report that is still being written (draft or preliminary) and only its author
dictates into it. The transcript is delivered to the editor, which inserts it at the cursor and saves the
report through reporting.reports.save_draft like any other edit: nothing here writes into a report, so a
failed transcription leaves the draft exactly as it was and says why on the dictation.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode
from reporting.choices import EDITABLE_STATUSES, SIGNED_STATUSES, ReportStatus
from reporting.dictation import audio, commands, events
from reporting.dictation.backends import TranscriptionFailed, get_backend
from reporting.models import Dictation, DictationStatus

logger = logging.getLogger(__name__)

# A dictation still "queued" or "running" this long lost its task (a worker died mid-run, the broker was down when
# it was queued): requeue_stalled queues it again and the next run takes it over. Pocketsphinx took 8.6 s for
# 37 s of speech here, so a ten-minute recording (the upload limit) takes about two and a half minutes.
STALLED_AFTER = timedelta(minutes=15)


class DictationRefused(Exception):
    """The dictation is refused by the reporting rules (signed report, someone else's report, …)."""


def check_can_dictate(report, user, section=""):
    """Raise DictationRefused unless `user` may dictate into `report` (at `section`, when given)."""
    if report.status not in EDITABLE_STATUSES:
        raise DictationRefused(f"the report is {report.get_status_display().lower()} and cannot be changed; "
                               f"corrections are addenda")
    if report.author_id != user.pk:
        raise DictationRefused(f"the report is being written by {report.author.get_full_name() or report.author}")
    if section and section not in report.sections:
        raise DictationRefused(f"the report has no section {section!r}")


def record_dictation(report, user, upload, *, section="", channel):
    """Check and keep an uploaded recording for `report` and queue its transcription. Bad audio raises
    audio.AudioRejected and nothing is stored."""
    backend = get_backend()
    if not backend.accepts_audio:
        raise DictationRefused("speech is recognised in the browser on this site; send the recognised text "
                               "(`transcript`) instead of audio")
    check_can_dictate(report, user, section)
    recording = audio.read_upload(upload)
    name = audio.store(recording)
    try:
        with transaction.atomic():
            dictation = Dictation.objects.create(
                report=report, user=user, section=section, backend=backend.name, audio_name=name,
                duration_seconds=recording.duration_seconds)
            _audit(dictation, "C", user, channel, duration_seconds=recording.duration_seconds)
            transaction.on_commit(lambda: _queue(dictation.pk))
    except BaseException:
        audio.delete(name)
        raise
    return dictation


@transaction.atomic
def record_browser_transcript(report, user, transcript, *, section="", channel):
    """Keep text the browser's own recogniser heard (the browser backend) and deliver it like a transcript."""
    check_can_dictate(report, user, section)
    dictation = Dictation.objects.create(
        report=report, user=user, section=section, backend="browser", status=DictationStatus.DONE,
        transcript=str(transcript).strip(), started_at=timezone.now(), finished_at=timezone.now())
    _audit(dictation, "C", user, channel, backend="browser")
    events.dictation_finished(dictation, commands.parse(dictation.transcript, commands.macros_for(user)))
    return dictation


def transcribe(dictation_id):
    """Transcribe a queued dictation and deliver the result; the Celery task's work. Safe to run twice: the
    dictation is claimed with a conditional UPDATE, so only one run transcribes it."""
    now = timezone.now()
    claimed = Dictation.objects.filter(pk=dictation_id).filter(
        Q(status=DictationStatus.QUEUED) | Q(status=DictationStatus.RUNNING, started_at__lt=now - STALLED_AFTER),
    ).update(status=DictationStatus.RUNNING, started_at=now)
    if not claimed:
        return None
    dictation = Dictation.objects.select_related("user").get(pk=dictation_id)
    macros = commands.macros_for(dictation.user)
    try:
        pcm = audio.read_pcm(dictation.audio_name)
        text = get_backend(dictation.backend).transcribe(pcm, phrases=[macro.name for macro in macros.values()])
    except TranscriptionFailed as exc:
        return _finish(dictation, error=str(exc))
    except FileNotFoundError:
        return _finish(dictation, error="the recording is no longer stored")
    except Exception as exc:
        _finish(dictation, error=f"internal error while transcribing: {exc}")
        raise
    return _finish(dictation, transcript=text, segments=commands.parse(text, macros))


def requeue_stalled(now=None):
    """Queue the transcription again for dictations whose task was lost; returns how many. A dictation queued twice
    is still transcribed once (see transcribe)."""
    cutoff = (now or timezone.now()) - STALLED_AFTER
    stalled = list(Dictation.objects.exclude(audio_name="").filter(
        Q(status=DictationStatus.QUEUED, created_at__lt=cutoff)
        | Q(status=DictationStatus.RUNNING, started_at__lt=cutoff)).values_list("pk", flat=True))
    for dictation_id in stalled:
        _queue(dictation_id)
    return len(stalled)


def purge_audio(now=None):
    """Delete the audio of dictations whose report was signed (or entered in error) more than
    DICTATION_RETENTION_DAYS ago; the transcript stays. Returns how many recordings were removed."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.DICTATION_RETENTION_DAYS)
    due = Dictation.objects.exclude(audio_name="").filter(
        Q(report__status__in=SIGNED_STATUSES, report__signed_at__lte=cutoff)
        | Q(report__status=ReportStatus.ENTERED_IN_ERROR, report__updated_at__lte=cutoff))
    removed = 0
    for dictation in due.select_related("report__order__patient"):
        audio.delete(dictation.audio_name)
        # Conditional: a purge running at the same time counts each recording once.
        if Dictation.objects.filter(pk=dictation.pk, audio_name=dictation.audio_name).update(
                audio_name="", audio_purged_at=timezone.now()):
            removed += 1
            record_audit_event(AuditEventCode.PROCEDURE_RECORD, action="D", channel=AuditChannel.SYSTEM,
                               actor="dictation retention", patient=dictation.report.order.patient,
                               object_type="dictation", object_id=dictation.report.order.accession_number,
                               dictation=dictation.pk, what="audio deleted after retention")
    return removed


def _finish(dictation, *, transcript="", segments=None, error=""):
    with transaction.atomic():
        dictation.status = DictationStatus.FAILED if error else DictationStatus.DONE
        dictation.transcript, dictation.error, dictation.finished_at = transcript, error, timezone.now()
        dictation.save(update_fields=["status", "transcript", "error", "finished_at"])
        events.dictation_finished(dictation, segments)
    return dictation


def _queue(dictation_id):
    from reporting.tasks import transcribe_dictation

    try:
        transcribe_dictation.delay(dictation_id)
    except Exception:
        # The broker is unreachable: the dictation is stored and queued; requeue_stalled sends it again later,
        # and the upload still succeeds.
        logger.exception("could not queue the transcription of dictation %s", dictation_id)


def _audit(dictation, action, user, channel, **detail):
    report = dictation.report
    record_audit_event(AuditEventCode.PROCEDURE_RECORD, action=action, channel=channel, actor=user.get_username(),
                       user=user, patient=report.order.patient, object_type="dictation",
                       object_id=report.order.accession_number, dictation=dictation.pk, **detail)
