"""The external speech service backend (a Whisper-style HTTP endpoint): what it sends, what it takes back, and a
clear reason for every way the service can fail."""
import pytest
from django.test import override_settings

from reporting.dictation.backends import TranscriptionFailed, get_backend
from tests.platform_process import free_port
from tests.reporting.dictation_support import SpeechService

PCM = b"\x00\x01" * 16000  # one second of 16 kHz audio


def transcribe(url, phrases=(), **settings):
    with override_settings(SPEECH_HTTP_URL=url, **settings):
        return get_backend("http").transcribe(PCM, phrases=phrases)


def test_the_service_gets_the_wav_and_the_macro_names_and_its_text_comes_back():
    with SpeechService(text="  No pneumothorax.  ") as service:
        text = transcribe(service.url, phrases=["normal chest"], SPEECH_HTTP_TOKEN="")

    assert text == "No pneumothorax."
    [request] = service.requests
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["headers"]["Content-Type"].startswith("multipart/form-data")
    assert "Authorization" not in request["headers"]
    assert b'name="model"\r\n\r\nwhisper-1' in request["body"]
    assert b'name="prompt"\r\n\r\nnormal chest' in request["body"]
    assert b"RIFF" in request["body"] and b"WAVEfmt " in request["body"]


def test_a_service_that_is_down_is_named_with_the_reason():
    url = f"http://127.0.0.1:{free_port()}/asr"

    with pytest.raises(TranscriptionFailed) as failure:
        transcribe(url)

    assert str(failure.value) == f"the speech service at {url} is not reachable (connection refused)"


def test_a_service_that_does_not_answer_in_time_fails_after_the_timeout():
    with SpeechService(hang=True) as service, pytest.raises(TranscriptionFailed) as failure:
        transcribe(service.url, SPEECH_HTTP_TIMEOUT_SECONDS=1)

    assert str(failure.value) == f"the speech service at {service.url} did not answer within 1 s"


def test_an_error_status_is_reported_with_the_services_words():
    with SpeechService(status=503, body=b'{"error": "model is loading"}') as service, \
            pytest.raises(TranscriptionFailed) as failure:
        transcribe(service.url)

    assert str(failure.value) == \
        f'the speech service at {service.url} answered HTTP 503: {{"error": "model is loading"}}'


def test_an_answer_without_a_transcript_is_refused():
    with SpeechService(body=b"<html>proxy login</html>") as service, pytest.raises(TranscriptionFailed) as failure:
        transcribe(service.url)

    assert "answered without a transcript" in str(failure.value)


def test_no_address_configured_is_a_clear_failure():
    with pytest.raises(TranscriptionFailed, match="RADIOLOGY_SPEECH_HTTP_URL is empty"):
        transcribe("")


def test_choosing_the_http_backend_without_an_address_stops_the_platform_at_start(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    env = {"PATH": "/usr/bin:/bin", "RADIOLOGY_DATA_DIR": str(tmp_path), "RADIOLOGY_SPEECH_BACKEND": "http"}
    result = subprocess.run([sys.executable, "-c", "import radiology.settings"], env=env, capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)

    assert result.returncode != 0
    assert "RADIOLOGY_SPEECH_HTTP_URL must be the speech service's http(s):// address" in result.stderr
