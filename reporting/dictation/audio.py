"""Dictation audio: checking an upload is PCM WAV within the limits, and keeping it under a generated name.

Every recording is stored the same way, whatever the browser sent: 16 kHz, mono, 16-bit PCM WAV, which is what
the speech-to-text backends want (pocketsphinx's acoustic model is trained on 16 kHz speech; Whisper servers
resample to 16 kHz anyway). The file name is made here (a random UUID) and checked against that pattern on
every read, so no path is ever built from what a client sent.
"""
import io
import os
import re
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

SAMPLE_RATE = 16000
# Rates a microphone or a browser's AudioContext records at; anything else is more likely a broken header.
ACCEPTED_RATES = range(8000, 96001)
_AUDIO_NAME = re.compile(r"^[0-9a-f]{32}\.wav$")


class AudioRejected(Exception):
    """The upload is not dictation audio the platform accepts; the message says why, in the user's terms."""


@dataclass(frozen=True)
class Recording:
    pcm: bytes  # 16 kHz mono signed 16-bit little-endian samples
    duration_seconds: float

    def wav_bytes(self):
        return wav_bytes(self.pcm)


def read_upload(upload, *, max_seconds=None, max_bytes=None):
    """The dictation in `upload` (a Django UploadedFile or any binary file object with .size), as a Recording.

    Refused (AudioRejected) when it is larger than max_bytes, not a RIFF/WAVE file, not PCM, empty or longer
    than max_seconds."""
    max_seconds = settings.DICTATION_MAX_SECONDS if max_seconds is None else max_seconds
    max_bytes = settings.DICTATION_MAX_BYTES if max_bytes is None else max_bytes
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise AudioRejected(f"the recording is {size / 1048576:.1f} MB; at most {max_bytes / 1048576:.0f} MB "
                            f"is accepted")
    upload.seek(0)
    head = upload.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioRejected("the recording is not a WAV file (RIFF/WAVE header missing)")
    upload.seek(0)
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise AudioRejected(f"the recording is larger than {max_bytes / 1048576:.0f} MB")
    try:
        with wave.open(io.BytesIO(data)) as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except wave.Error as exc:
        # The standard library reads only PCM (format tag 1); float and compressed WAVs are refused here.
        if "unknown format" in str(exc):
            raise AudioRejected("the WAV file is not PCM (16-bit PCM is expected); "
                                "compressed or floating-point WAV is not accepted") from None
        raise AudioRejected(f"the WAV file cannot be read: {exc}") from None
    except EOFError:
        raise AudioRejected("the WAV file is truncated") from None
    if width not in (1, 2, 3, 4):
        raise AudioRejected(f"the WAV file has {width * 8}-bit samples; 8-, 16-, 24- or 32-bit PCM is accepted")
    if channels < 1 or channels > 8:
        raise AudioRejected(f"the WAV file has {channels} channels")
    if rate not in ACCEPTED_RATES:
        raise AudioRejected(f"the WAV file's sample rate is {rate} Hz; 8000 to 96000 Hz is accepted")
    samples = _to_float_mono(frames, width, channels)
    duration = len(samples) / rate
    if duration == 0:
        raise AudioRejected("the recording is empty")
    if duration > max_seconds:
        raise AudioRejected(f"the recording is {duration:.0f} s long; at most {max_seconds} s "
                            f"({max_seconds / 60:g} min) is accepted")
    return Recording(pcm=_to_pcm16(_resample(samples, rate, SAMPLE_RATE)), duration_seconds=round(duration, 3))


def wav_bytes(pcm, rate=SAMPLE_RATE):
    """16-bit mono PCM samples wrapped in a WAV header."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def audio_dir():
    return Path(settings.DICTATION_AUDIO_DIR)


def store(recording):
    """Write the recording under a new generated name in the dictation folder; returns the name. The file is
    complete and on disk before the name is handed out (written aside, fsynced, renamed)."""
    directory = audio_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.wav"
    final = directory / name
    partial = directory / f".{name}.part"
    with open(partial, "wb") as handle:
        handle.write(recording.wav_bytes())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)
    return name


def path_of(name):
    """The file of a stored recording. Only names this module generated are accepted."""
    if not _AUDIO_NAME.fullmatch(name or ""):
        raise ValueError(f"not a dictation audio name: {name!r}")
    return audio_dir() / name


def read_pcm(name):
    """The 16 kHz mono 16-bit samples of a stored recording."""
    with wave.open(str(path_of(name))) as reader:
        return reader.readframes(reader.getnframes())


def delete(name):
    """Remove a stored recording; a file already gone is not an error (a purge may run twice)."""
    try:
        path_of(name).unlink()
    except FileNotFoundError:
        pass


def _to_float_mono(frames, width, channels):
    usable = len(frames) - len(frames) % (width * channels)
    frames = frames[:usable]
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16))
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    else:
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(frames, dtype=f"<{np.dtype(dtype).char}").astype(np.float32)
        samples /= float(1 << (8 * width - 1))
    return samples.reshape(-1, channels).mean(axis=1)


def _resample(samples, rate, target):
    """Linear-interpolation resampling, for recorders other than the editor (which sends 16 kHz already, through
    the browser's own resampler). Measured on espeak-ng's 22050 Hz speech, pocketsphinx got 67 of 84 words after
    it and 72 after sox's resampler; a windowed-sinc low-pass before the interpolation gave 66, so it is left out."""
    if rate == target or len(samples) == 0:
        return samples
    count = max(1, int(round(len(samples) * target / rate)))
    positions = np.arange(count, dtype=np.float64) * (rate / target)
    return np.interp(positions, np.arange(len(samples), dtype=np.float64), samples).astype(np.float32)


def _to_pcm16(samples):
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
