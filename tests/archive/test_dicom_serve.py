"""The DICOM listener inside `manage.py serve` (a real subprocess on SQLite in WAL mode): many senders at once
lose nothing, and every instance answered with success survives a kill -9 that comes right after."""
import hashlib
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from archive import status
from tests.archive.factories import make_dataset, write_part10
from tests.platform_process import PlatformProcess

PARALLEL_SENDERS = 16
INSTANCES_PER_SENDER = 5
TOOL_TIMEOUT = 120


def index_of(data_dir):
    """{SOP Instance UID: (storage key, SHA-256)} read straight from the platform's SQLite database."""
    with sqlite3.connect(Path(data_dir) / "radiology.sqlite3") as database:
        rows = database.execute("SELECT sop_instance_uid, storage_key, sha256 FROM archive_instance").fetchall()
    return {uid: (key, sha256) for uid, key, sha256 in rows}


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def platform(tmp_path):
    platform = PlatformProcess(tmp_path / "data", seed=False, RADIOLOGY_DICOM_OPEN="1").start()
    yield platform
    platform.stop()


def storescu(platform, folder, calling_ae):
    return subprocess.Popen(
        ["storescu", "-v", "-aet", calling_ae, "-aec", "RADIOLOGY", "+sd", "127.0.0.1",
         platform.env["RADIOLOGY_DICOM_PORT"], str(folder)],
        env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sixteen_senders_storing_at_once_lose_no_instance(platform, tmp_path):
    sent = {}
    for sender in range(PARALLEL_SENDERS):
        folder = tmp_path / f"sender{sender}"
        folder.mkdir()
        study_uid = None
        for number in range(1, INSTANCES_PER_SENDER + 1):
            dataset = make_dataset(patient_id=f"PAT{sender:03d}", instance_number=number, study_uid=study_uid)
            study_uid = dataset.StudyInstanceUID
            write_part10(dataset, folder / f"{number}.dcm")
            sent[dataset.SOPInstanceUID] = folder / f"{number}.dcm"
    senders = [storescu(platform, tmp_path / f"sender{sender}", f"MODALITY{sender}")
               for sender in range(PARALLEL_SENDERS)]
    outputs = [sender.communicate(timeout=TOOL_TIMEOUT)[0] for sender in senders]

    for output in outputs:
        # storescu exits 0 even when single C-STOREs fail: count the success responses (DESIGN.md section 6).
        assert output.count("Received Store Response (Success)") == INSTANCES_PER_SENDER, output
    index = index_of(platform.env["RADIOLOGY_DATA_DIR"])
    assert set(index) == set(sent)
    archive = Path(platform.env["RADIOLOGY_DATA_DIR"]) / "archive"
    for key, sha256 in index.values():
        assert sha256_of(archive / key) == sha256
    assert "database is locked" not in platform.log()


def test_every_instance_answered_with_success_survives_a_kill_9_during_ingest(tmp_path):
    data_dir = tmp_path / "data"
    platform = PlatformProcess(data_dir, seed=False, RADIOLOGY_DICOM_OPEN="1").start()
    datasets = [make_dataset(patient_id="PAT-KILL", instance_number=number, rows=64, columns=64)
                for number in range(1, 401)]
    acknowledged = []
    enough_stored = threading.Event()

    def send():
        ae = AE(ae_title="MODALITY1")
        ae.add_requested_context(CTImageStorage)
        association = ae.associate("127.0.0.1", int(platform.env["RADIOLOGY_DICOM_PORT"]), ae_title="RADIOLOGY")
        for dataset in datasets:
            if not association.is_established:
                break
            answer = getattr(association.send_c_store(dataset), "Status", None)
            if answer is None:  # no response: the listener is gone
                break
            if answer == status.SUCCESS:
                acknowledged.append(dataset.SOPInstanceUID)
                if len(acknowledged) >= 40:
                    enough_stored.set()
        enough_stored.set()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert enough_stored.wait(timeout=TOOL_TIMEOUT)
        os.killpg(platform.process.pid, signal.SIGKILL)  # while the sender is still sending
        sender.join(timeout=TOOL_TIMEOUT)
    finally:
        platform.stop()
    assert 40 <= len(acknowledged) < len(datasets), "the kill came too late to test anything"

    restarted = PlatformProcess(data_dir, seed=False, RADIOLOGY_DICOM_OPEN="1").start()
    try:
        index = index_of(data_dir)
        archive = data_dir / "archive"
        for uid in acknowledged:
            assert uid in index, f"{uid} was acknowledged but is not indexed"
            key, sha256 = index[uid]
            assert sha256_of(archive / key) == sha256
    finally:
        restarted.stop()
