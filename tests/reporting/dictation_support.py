"""What the dictation tests share: a draft to dictate into, WAV recordings made on the spot, the committed
espeak-ng fixture, word accuracy, and a small speech service on 127.0.0.1."""
import io
import json
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from archive.models import Study
from radiology.choices import AuditChannel
from reporting import reports
from reporting.dictation.accuracy import words_right  # noqa: F401 - the tests' measure of a transcript
from tests.worklist.factories import make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# "small left pleural effusion with basal atelectasis no pneumothorax", spoken by espeak-ng 1.51 (en-us, 150 words a
# minute) and resampled to 16 kHz mono 16-bit with sox (docs/reporting.md says how to make it again).
EFFUSION_WAV = FIXTURES / "dictation_effusion.wav"
EFFUSION_WORDS = "small left pleural effusion with basal atelectasis no pneumothorax"


def draft_report(radiologist, **sections):
    """A draft report by `radiologist` on a case whose images arrived."""
    order = make_scheduled_order(reason="Shortness of breath")
    order.study = Study.objects.create(study_instance_uid=order.study_instance_uid, patient=order.patient)
    order.save(update_fields=["study"])
    order = orders.change_status(order, OrderStatus.COMPLETED, actor="CR01", channel=AuditChannel.DICOM)
    report = reports.start_report(order, radiologist, channel=AuditChannel.WEB)
    if sections:
        report = reports.save_draft(report, radiologist, version=report.version, sections=sections,
                                    channel=AuditChannel.WEB)
    return report


def wav(seconds=1.0, rate=16000, channels=1, width=2):
    """PCM WAV bytes of a quiet 440 Hz tone."""
    count = int(seconds * rate)
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(count) / rate)
    if width == 2:
        samples = (tone * 32767).astype("<i2")
    elif width == 1:
        samples = ((tone + 1) * 127.5).astype(np.uint8)
    else:
        samples = (tone * (2 ** 31 - 1)).astype("<i4")
    frames = np.repeat(samples[:, None], channels, axis=1).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return buffer.getvalue()


def float_wav(seconds=0.5, rate=16000):
    """A 32-bit floating-point WAV (format tag 3, IEEE float): a WAV, but not PCM."""
    data = (0.1 * np.sin(np.arange(int(seconds * rate)))).astype("<f4").tobytes()
    fmt = (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little") \
        + (rate * 4).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(data).to_bytes(4, "little") + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


class SpeechService:
    """A Whisper-style transcription endpoint on 127.0.0.1 answering `text` (or `status` with `body`), recording
    each request it gets; with `hang=True` it never answers."""

    def __init__(self, text="", status=200, body=None, hang=False):
        self.text, self.status, self.body, self.hang = text, status, body, hang
        self.requests = []
        self.release = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                service.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "body": self.rfile.read(length)})
                if service.hang:
                    service.release.wait(30)
                    return
                payload = service.body if service.body is not None else json.dumps({"text": service.text}).encode()
                self.send_response(service.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/audio/transcriptions"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
