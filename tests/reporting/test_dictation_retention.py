"""Dictation audio is kept with the draft and deleted RADIOLOGY_DICTATION_RETENTION_DAYS after the report is
signed (the periodic task or `manage.py purge_dictation_audio`); the transcript stays. And the transcription
task itself: run twice, it transcribes once."""
import datetime
import io

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from radiology.choices import AuditChannel
from reporting import reports
from reporting.dictation import audio, services
from reporting.models import Dictation, DictationStatus
from radiology.celery import app as celery_app
from reporting.tasks import purge_dictation_audio, requeue_stalled_dictations, transcribe_dictation
from tests.factories import PASSWORD
from tests.reporting.dictation_support import SpeechService, draft_report, wav

pytestmark = pytest.mark.django_db
API = AuditChannel.API


def dictate(user, report):
    upload = io.BytesIO(wav(1.0))
    upload.size = len(upload.getvalue())
    return services.record_dictation(report, user, upload, channel=API)


@pytest.fixture
def signed(radiologist):
    """A report dictated and then signed; returns its dictation."""
    report = draft_report(radiologist, findings="Normal.")
    dictation = dictate(radiologist, report)
    reports.sign(report, radiologist, version=report.version, password=PASSWORD, channel=AuditChannel.WEB)
    return Dictation.objects.select_related("report").get(pk=dictation.pk)


def days_after_signing(dictation, days):
    return dictation.report.signed_at + datetime.timedelta(days=days)


@override_settings(DICTATION_RETENTION_DAYS=30)
def test_audio_is_kept_until_the_retention_after_signing_has_passed(signed):
    assert services.purge_audio(now=days_after_signing(signed, 29)) == 0
    assert audio.path_of(signed.audio_name).is_file()


@override_settings(DICTATION_RETENTION_DAYS=30)
def test_audio_is_deleted_after_the_retention_and_the_transcript_stays(signed):
    Dictation.objects.filter(pk=signed.pk).update(transcript="normal study", status=DictationStatus.DONE)
    path = audio.path_of(signed.audio_name)

    assert services.purge_audio(now=days_after_signing(signed, 31)) == 1

    signed.refresh_from_db()
    assert not path.exists()
    assert (signed.audio_name, signed.transcript) == ("", "normal study")
    assert signed.audio_purged_at is not None


@override_settings(DICTATION_RETENTION_DAYS=0)
def test_the_audio_of_a_draft_is_kept_however_old(radiologist):
    dictation = dictate(radiologist, draft_report(radiologist))

    assert services.purge_audio(now=timezone.now() + datetime.timedelta(days=3650)) == 0
    assert audio.path_of(dictation.audio_name).is_file()


@override_settings(DICTATION_RETENTION_DAYS=0)
def test_the_command_and_the_periodic_task_purge_the_same_way(signed, capsys):
    call_command("purge_dictation_audio")

    assert "1 dictation recording(s) deleted (retention 0 days after signing)" in capsys.readouterr().out
    assert purge_dictation_audio() == 0  # nothing left; a second run is harmless


def test_the_transcription_task_transcribes_once_however_often_it_runs(radiologist):
    dictation = dictate(radiologist, draft_report(radiologist))

    with SpeechService(text="no pneumothorax") as service, \
            override_settings(SPEECH_HTTP_URL=service.url):
        Dictation.objects.filter(pk=dictation.pk).update(backend="http")
        transcribe_dictation(dictation.pk)
        transcribe_dictation(dictation.pk)

    dictation.refresh_from_db()
    assert (dictation.status, dictation.transcript, len(service.requests)) == (DictationStatus.DONE,
                                                                               "no pneumothorax", 1)


@pytest.fixture
def eager_tasks():
    """Queued tasks run at once, in the caller's thread."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_transcription_whose_task_was_lost_is_queued_again_and_done(radiologist, eager_tasks):
    dictation = dictate(radiologist, draft_report(radiologist))
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    Dictation.objects.filter(pk=dictation.pk).update(status=DictationStatus.RUNNING, started_at=long_ago,
                                                     backend="http")

    with SpeechService(text="no pneumothorax") as service, override_settings(SPEECH_HTTP_URL=service.url):
        assert requeue_stalled_dictations() == 1

    dictation.refresh_from_db()
    assert (dictation.status, dictation.transcript) == (DictationStatus.DONE, "no pneumothorax")


def test_a_transcription_still_running_is_left_alone(radiologist):
    dictation = dictate(radiologist, draft_report(radiologist))
    Dictation.objects.filter(pk=dictation.pk).update(status=DictationStatus.RUNNING, started_at=timezone.now())

    assert services.requeue_stalled() == 0
    services.transcribe(dictation.pk)
    assert Dictation.objects.get(pk=dictation.pk).status == DictationStatus.RUNNING


def test_a_recording_that_is_gone_fails_with_the_reason(radiologist):
    dictation = dictate(radiologist, draft_report(radiologist))
    audio.delete(dictation.audio_name)

    services.transcribe(dictation.pk)

    dictation.refresh_from_db()
    assert (dictation.status, dictation.error) == (DictationStatus.FAILED, "the recording is no longer stored")


def test_the_purge_and_the_requeue_run_under_the_beat_scheduler(settings):
    assert settings.CELERY_BEAT_SCHEDULE["purge-dictation-audio"] == {
        "task": "reporting.tasks.purge_dictation_audio", "schedule": 3600.0}
    assert settings.CELERY_BEAT_SCHEDULE["requeue-stalled-dictations"] == {
        "task": "reporting.tasks.requeue_stalled_dictations", "schedule": 300.0}
