"""Transcription as a Celery task: the transcript is stored on the dictation and reaches the user's editors over
/ws/dictations/ after the commit; a backend that fails marks the dictation failed with the reason and leaves
the report's draft exactly as it was."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, override_settings

from radiology.asgi import application
from radiology.celery import app as celery_app
from radiology.choices import AuditChannel, Role
from radiology.consumers import CLOSE_UNAUTHENTICATED
from reporting.dictation import services
from reporting.models import Dictation, DictationStatus, Macro
from tests.factories import UserFactory
from tests.platform_process import free_port
from tests.reporting.dictation_support import EFFUSION_WAV, SpeechService, draft_report
from tests.worklist.factories import token_client

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture
def eager_tasks():
    """Queued tasks run at once, in the caller's thread (as the worker would run them, without a broker)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def session_cookie_for(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def listen(user=None):
    headers = [ORIGIN]
    if user is not None:
        headers.append(await sync_to_async(session_cookie_for)(user))
    communicator = WebsocketCommunicator(application, "/ws/dictations/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


def dictate(user, report, section="findings"):
    response = token_client(user).post("/api/dictations/", {
        "report": report.pk, "section": section,
        "audio": SimpleUploadedFile("dictation.wav", EFFUSION_WAV.read_bytes(), content_type="audio/wav"),
    }, format="multipart")
    assert response.status_code == 201, response.json()
    return Dictation.objects.get(pk=response.json()["id"])


async def test_an_anonymous_visitor_is_refused():
    _, connected, code = await listen()
    assert (connected, code) == (False, CLOSE_UNAUTHENTICATED)


async def test_the_transcript_arrives_over_the_websocket_and_is_stored(radiologist, eager_tasks):
    report = await sync_to_async(draft_report)(radiologist)
    await sync_to_async(Macro.objects.create)(name="Normal chest", text="The lungs are clear.", owner=radiologist)
    editor, connected, _ = await listen(radiologist)
    assert connected

    with SpeechService(text=" Small left pleural effusion. next field insert macro normal chest") as service:
        with override_settings(SPEECH_BACKEND="http", SPEECH_HTTP_URL=service.url, SPEECH_HTTP_TOKEN="s3cret"):
            dictation = await sync_to_async(dictate)(radiologist, report)

    message = await editor.receive_json_from(timeout=5)
    assert message == {
        "kind": "dictation.done", "dictation_id": dictation.pk, "report_id": report.pk, "section": "findings",
        "status": "done", "transcript": "Small left pleural effusion. next field insert macro normal chest",
        "segments": [{"type": "text", "text": "small left pleural effusion"},
                     {"type": "command", "command": "next_field"},
                     {"type": "command", "command": "insert_macro", "name": "Normal chest",
                      "text": "The lungs are clear."}],
        "text": "small left pleural effusion", "error": ""}
    await sync_to_async(dictation.refresh_from_db)()
    assert (dictation.status, dictation.transcript) == (DictationStatus.DONE, message["transcript"])
    assert service.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert b"RIFF" in service.requests[0]["body"] and b'name="file"' in service.requests[0]["body"]
    await editor.disconnect()


async def test_a_speech_service_that_is_down_fails_the_dictation_and_leaves_the_draft(radiologist, eager_tasks):
    report = await sync_to_async(draft_report)(radiologist, findings="Heart size normal.")
    editor, _, _ = await listen(radiologist)
    down = f"http://127.0.0.1:{free_port()}/v1/audio/transcriptions"

    with override_settings(SPEECH_BACKEND="http", SPEECH_HTTP_URL=down):
        dictation = await sync_to_async(dictate)(radiologist, report)

    message = await editor.receive_json_from(timeout=5)
    assert (message["kind"], message["status"]) == ("dictation.failed", "failed")
    assert message["error"] == f"the speech service at {down} is not reachable (connection refused)"
    await sync_to_async(dictation.refresh_from_db)()
    assert (dictation.status, dictation.error, dictation.transcript) == (DictationStatus.FAILED, message["error"], "")
    await sync_to_async(report.refresh_from_db)()
    assert (report.version, report.sections["findings"]) == (2, "Heart size normal.")
    await editor.disconnect()


async def test_a_user_hears_only_their_own_dictations(radiologist, eager_tasks):
    colleague = await sync_to_async(UserFactory)(username="pierre", role=Role.RADIOLOGIST)
    report = await sync_to_async(draft_report)(radiologist)
    colleagues_editor, _, _ = await listen(colleague)

    with SpeechService(text="no pneumothorax") as service:
        with override_settings(SPEECH_BACKEND="http", SPEECH_HTTP_URL=service.url):
            await sync_to_async(dictate)(radiologist, report)

    assert await colleagues_editor.receive_nothing(timeout=0.3)
    await colleagues_editor.disconnect()


async def test_a_rolled_back_result_is_never_announced(radiologist):
    report = await sync_to_async(draft_report)(radiologist)
    editor, _, _ = await listen(radiologist)

    def transcribe_then_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            services.record_browser_transcript(report, radiologist, "no pneumothorax", channel=AuditChannel.API)
            raise RuntimeError("rolled back")

    await sync_to_async(transcribe_then_roll_back)()
    assert await editor.receive_nothing(timeout=0.3)
    await editor.disconnect()


async def test_text_the_browser_recognised_arrives_the_same_way(radiologist):
    report = await sync_to_async(draft_report)(radiologist)
    editor, _, _ = await listen(radiologist)

    await sync_to_async(services.record_browser_transcript)(report, radiologist, "no effusion full stop sign report",
                                                            section="impression", channel=AuditChannel.API)

    message = await editor.receive_json_from(timeout=5)
    assert message["segments"] == [{"type": "text", "text": "no effusion."},
                                   {"type": "command", "command": "sign_report", "needs_confirmation": True}]
    await editor.disconnect()
