"""Speech-to-text by an external HTTP service, such as a Whisper server the site runs.

The request is the one OpenAI's transcription endpoint defines and that Whisper servers (faster-whisper-server,
whisper.cpp's server, LocalAI, …) copy: POST multipart/form-data with `file` (the WAV), `model`, `language`
and `response_format=json`, to RADIOLOGY_SPEECH_HTTP_URL (e.g. http://10.0.0.5:8000/v1/audio/transcriptions),
with `Authorization: Bearer <RADIOLOGY_SPEECH_HTTP_TOKEN>` when a token is set. The answer is JSON with the
text in `text`. The user's macro names go in `prompt`, which Whisper uses to bias its spelling.

Whatever goes wrong (the service is down, does not answer within RADIOLOGY_SPEECH_HTTP_TIMEOUT seconds, answers
an error status or something that is not a transcript) becomes TranscriptionFailed with a one-line reason.
"""
import requests
from django.conf import settings

from reporting.dictation.audio import wav_bytes
from reporting.dictation.backends import SpeechToText, TranscriptionFailed


class HttpSpeechToText(SpeechToText):
    name = "http"

    def transcribe(self, pcm, *, phrases=()):
        # Read on every call: the address and token may be changed without restarting the worker's backends.
        url, timeout = settings.SPEECH_HTTP_URL, settings.SPEECH_HTTP_TIMEOUT_SECONDS
        if not url:
            raise TranscriptionFailed("no speech service is configured (RADIOLOGY_SPEECH_HTTP_URL is empty)")
        headers = {"Accept": "application/json"}
        if settings.SPEECH_HTTP_TOKEN:
            headers["Authorization"] = f"Bearer {settings.SPEECH_HTTP_TOKEN}"
        form = {"model": settings.SPEECH_HTTP_MODEL, "language": "en", "response_format": "json"}
        if phrases:
            form["prompt"] = ", ".join(str(phrase) for phrase in phrases)
        try:
            response = requests.post(url, headers=headers, data=form, timeout=timeout,
                                     files={"file": ("dictation.wav", wav_bytes(pcm), "audio/wav")})
        except requests.Timeout:
            raise TranscriptionFailed(f"the speech service at {url} did not answer within {timeout} s") from None
        except requests.ConnectionError as exc:
            raise TranscriptionFailed(f"the speech service at {url} is not reachable ({_reason(exc)})") from None
        except requests.RequestException as exc:
            raise TranscriptionFailed(f"the request to the speech service at {url} failed: {exc}") from None
        if response.status_code != 200:
            raise TranscriptionFailed(f"the speech service at {url} answered HTTP {response.status_code}"
                                      f"{': ' + _short(response.text) if response.text.strip() else ''}")
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError):
            raise TranscriptionFailed(f"the speech service at {url} answered without a transcript "
                                      f"(JSON with a `text` field was expected)") from None
        if not isinstance(text, str):
            raise TranscriptionFailed(f"the speech service at {url} answered a `text` that is not text")
        return text.strip()


def _reason(exc):
    """The innermost cause of a connection error, e.g. "connection refused", without urllib3's object dumps."""
    cause = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    text = getattr(cause, "strerror", None) or str(cause)
    return text.lower() if text else "connection failed"


def _short(text, limit=200):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
