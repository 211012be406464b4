"""The speech-to-text interface and the registry of backends, one of which RADIOLOGY_SPEECH_BACKEND chooses.

A backend turns a recording (16 kHz mono 16-bit PCM, see reporting.dictation.audio) into text. `phrases` are
extra things the user may say, such as the names of their macros after "insert macro"; a backend that can bias
its recognition uses them, the others ignore them. A backend that cannot transcribe raises TranscriptionFailed
with a reason a radiologist understands; the dictation is then marked failed with that reason.

    pocketsphinx  offline, the default: CMU PocketSphinx with the bundled radiology vocabulary
    http          an external service (for example a Whisper server) at RADIOLOGY_SPEECH_HTTP_URL
    browser       the browser's own speech recognition in the editor; the server gets text, never audio
"""
import abc
from importlib import import_module

from django.conf import settings


class TranscriptionFailed(Exception):
    """The backend could not transcribe the recording; the message says why."""


class SpeechToText(abc.ABC):
    """The interface every backend implements."""

    name = ""
    # False for backends whose recognition happens in the browser: the API then refuses audio uploads.
    accepts_audio = True

    @abc.abstractmethod
    def transcribe(self, pcm, *, phrases=()):
        """The text spoken in `pcm` (16 kHz mono signed 16-bit little-endian samples)."""


class BrowserSpeechRecognition(SpeechToText):
    """Recognition runs in the editor (the Web Speech API, `webkitSpeechRecognition`); the page posts the text it
    heard, which goes through the same command parsing and delivery as a server transcript."""

    name = "browser"
    accepts_audio = False

    def transcribe(self, pcm, *, phrases=()):
        raise TranscriptionFailed("speech is recognised in the browser on this site (RADIOLOGY_SPEECH_BACKEND="
                                  "browser); no server backend is configured to transcribe audio")


# name → "module:class"; imported on first use, so the pocketsphinx wheel is loaded only where it is chosen.
BACKENDS = {
    "pocketsphinx": "reporting.dictation.pocketsphinx_backend:PocketsphinxSpeechToText",
    "http": "reporting.dictation.http_backend:HttpSpeechToText",
    "browser": "reporting.dictation.backends:BrowserSpeechRecognition",
}

_instances = {}


def get_backend(name=None):
    """The backend named `name`, by default the one the settings choose. Instances are shared: a backend keeps
    what is costly to load (pocketsphinx's models) between transcriptions."""
    name = name or settings.SPEECH_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"unknown speech-to-text backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name not in _instances:
        module_name, class_name = BACKENDS[name].split(":")
        _instances[name] = getattr(import_module(module_name), class_name)()
    return _instances[name]
