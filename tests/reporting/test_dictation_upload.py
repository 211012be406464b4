"""POST /api/dictations/: a WAV recording for a draft report is kept under a generated name and queued for
transcription; anything that is not acceptable dictation audio is refused with a clear message and nothing
is stored."""
import io
import os
import wave

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from radiology.choices import AuditChannel, Role
from reporting import reports
from reporting.dictation import audio
from reporting.models import Dictation, DictationStatus
from tests.factories import PASSWORD, UserFactory
from tests.reporting.dictation_support import draft_report, float_wav, wav
from tests.worklist.factories import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(radiologist):
    return draft_report(radiologist, findings="Lungs clear.")


def stored_files():
    folder = audio.audio_dir()
    return sorted(os.listdir(folder)) if folder.exists() else []


def upload(user, report, data, name="dictation.wav", **fields):
    return token_client(user).post("/api/dictations/", {
        "report": report.pk, "audio": SimpleUploadedFile(name, data, content_type="audio/wav"), **fields,
    }, format="multipart")


def test_a_recording_is_stored_and_queued(radiologist, report):
    response = upload(radiologist, report, wav(2.0), section="findings")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["section"], body["duration_seconds"], body["audio_kept"]) == \
        ("queued", "findings", 2.0, True)
    dictation = Dictation.objects.get(pk=body["id"])
    assert (dictation.user, dictation.report, dictation.backend) == (radiologist, report, "pocketsphinx")
    assert audio.path_of(dictation.audio_name).is_file()


def test_the_file_name_is_generated_never_the_clients(radiologist, report):
    response = upload(radiologist, report, wav(), name="../../../etc/cron.d/evil.wav")

    dictation = Dictation.objects.get(pk=response.json()["id"])
    assert "evil" not in dictation.audio_name and len(dictation.audio_name) == len("0" * 32 + ".wav")
    assert audio.path_of(dictation.audio_name).parent == audio.audio_dir()


def test_any_pcm_wav_is_kept_as_16_khz_mono_16_bit(radiologist, report):
    response = upload(radiologist, report, wav(1.0, rate=44100, channels=2))

    dictation = Dictation.objects.get(pk=response.json()["id"])
    with wave.open(str(audio.path_of(dictation.audio_name))) as stored:
        assert (stored.getframerate(), stored.getnchannels(), stored.getsampwidth(), stored.getnframes()) == \
            (16000, 1, 2, 16000)


def test_a_file_that_is_not_a_wav_is_refused_and_nothing_is_stored(radiologist, report):
    before = stored_files()

    response = upload(radiologist, report, b"ID3\x04\x00 this is an mp3, not a wav" * 20, name="note.mp3")

    assert response.status_code == 400
    assert "not a WAV file" in response.json()["audio"][0]
    assert (Dictation.objects.count(), stored_files()) == (0, before)


def test_a_wav_that_is_not_pcm_is_refused(radiologist, report):
    response = upload(radiologist, report, float_wav())

    assert response.status_code == 400
    assert "not PCM" in response.json()["audio"][0]
    assert not Dictation.objects.exists()


def test_a_truncated_wav_is_refused(radiologist, report):
    response = upload(radiologist, report, wav()[:30])

    assert response.status_code == 400
    assert not Dictation.objects.exists()


@override_settings(DICTATION_MAX_SECONDS=60)
def test_a_recording_longer_than_the_limit_is_refused(radiologist, report):
    before = stored_files()

    response = upload(radiologist, report, wav(61.0, rate=8000))

    assert response.status_code == 400
    assert response.json()["audio"] == ["the recording is 61 s long; at most 60 s (1 min) is accepted"]
    assert (Dictation.objects.count(), stored_files()) == (0, before)


def test_the_default_limit_is_ten_minutes(settings):
    assert settings.DICTATION_MAX_SECONDS == 600


@override_settings(DICTATION_MAX_BYTES=1024 * 1024)
def test_a_recording_larger_than_the_limit_is_refused(radiologist, report):
    response = upload(radiologist, report, wav(40.0))

    assert response.status_code == 400
    assert "at most 1 MB is accepted" in response.json()["audio"][0]
    assert not Dictation.objects.exists()


def test_an_empty_recording_is_refused(radiologist, report):
    response = upload(radiologist, report, wav(0.0))

    assert (response.status_code, response.json()["audio"]) == (400, ["the recording is empty"])


def test_audio_and_a_transcript_together_are_refused(radiologist, report):
    response = token_client(radiologist).post("/api/dictations/", {
        "report": report.pk, "transcript": "no pneumothorax",
        "audio": SimpleUploadedFile("d.wav", wav(), content_type="audio/wav")}, format="multipart")

    assert response.status_code == 400
    assert "either `audio`" in response.json()["non_field_errors"][0]


def test_a_signed_report_takes_no_dictation(radiologist, report):
    report = reports.sign(report, radiologist, version=report.version, password=PASSWORD, channel=AuditChannel.WEB)

    response = upload(radiologist, report, wav())

    assert response.status_code == 409
    assert "final and cannot be changed" in response.json()["detail"]
    assert not Dictation.objects.exists()


def test_only_the_author_dictates_into_a_report(report):
    colleague = UserFactory(username="pierre", first_name="Pierre", last_name="Curie", role=Role.RADIOLOGIST)

    response = upload(colleague, report, wav())

    assert response.status_code == 409
    assert "being written by" in response.json()["detail"]


def test_an_unknown_section_is_refused(radiologist, report):
    response = upload(radiologist, report, wav(), section="conclusion_and_more")

    assert (response.status_code, response.json()["detail"]) == (409, "the report has no section 'conclusion_and_more'")


def test_clinicians_and_anonymous_callers_cannot_dictate(clinician, report):
    assert upload(clinician, report, wav()).status_code == 403
    assert APIClient().post("/api/dictations/", {"report": report.pk}).status_code in (401, 403)
    assert not Dictation.objects.exists()


def test_a_user_lists_only_their_own_dictations(radiologist, report):
    upload(radiologist, report, wav())
    colleague = UserFactory(username="pierre", role=Role.RADIOLOGIST)

    assert token_client(colleague).get("/api/dictations/").json()["results"] == []
    [mine] = token_client(radiologist).get(f"/api/dictations/?report={report.pk}").json()["results"]
    assert mine["status"] == DictationStatus.QUEUED


def test_the_editor_learns_the_backend_and_the_limits(radiologist):
    response = token_client(radiologist).get("/api/dictations/backend/")

    assert response.json() == {"backend": "pocketsphinx", "accepts_audio": True, "sample_rate": 16000,
                               "max_seconds": 600, "max_bytes": 25 * 1024 * 1024}


@override_settings(SPEECH_BACKEND="browser")
def test_with_the_browser_backend_audio_is_refused_and_text_is_taken(radiologist, report):
    assert upload(radiologist, report, wav()).status_code == 409

    response = token_client(radiologist).post("/api/dictations/", {
        "report": report.pk, "transcript": "no pneumothorax", "section": "findings"}, format="json")

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["transcript"], response.json()["audio_kept"]) == \
        ("done", "no pneumothorax", False)


def test_reading_an_upload_never_trusts_the_header_length():
    data = bytearray(wav(1.0))
    data[40:44] = (10 ** 9).to_bytes(4, "little")  # a data chunk claiming a gigabyte

    recording = audio.read_upload(_file(bytes(data)))

    assert recording.duration_seconds == 1.0


def _file(data):
    handle = io.BytesIO(data)
    handle.size = len(data)
    return handle


@override_settings(SPEECH_BACKEND="browser")
def test_a_dictation_shows_its_voice_commands_as_segments(radiologist, report):
    response = token_client(radiologist).post("/api/dictations/", {
        "report": report.pk, "transcript": "no effusion next field"}, format="json")

    shown = token_client(radiologist).get(f"/api/dictations/{response.json()['id']}/").json()
    assert shown["segments"] == response.json()["segments"] == [
        {"type": "text", "text": "no effusion"}, {"type": "command", "command": "next_field"}]


def test_an_unreachable_task_queue_loses_no_upload(radiologist, report, monkeypatch,
                                                   django_capture_on_commit_callbacks):
    from reporting.tasks import transcribe_dictation

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(transcribe_dictation, "delay", broker_down)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(radiologist, report, wav())

    assert response.status_code == 201
    assert Dictation.objects.get(pk=response.json()["id"]).status == DictationStatus.QUEUED
