"""RADIOLOGY_DICOM_PROCESSES: several listener processes share the DICOM port; they start, store and stop with
`serve`, and do not outlive it."""
import os
import signal
import subprocess
import time

import pytest

from tests.archive.factories import make_dataset, write_part10
from tests.archive.test_dicom_serve import index_of, storescu
from tests.platform_process import PlatformProcess

pytestmark = pytest.mark.xdist_group("platform-process")


def processes_in_group(pgid):
    ps = subprocess.run(["ps", "-eo", "pgid=,pid=,stat="], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if line.split()[0] == str(pgid) and "Z" not in line.split()[2]]


@pytest.fixture
def platform(tmp_path):
    platform = PlatformProcess(tmp_path / "data", seed=False, RADIOLOGY_DICOM_OPEN="1",
                               RADIOLOGY_DICOM_PROCESSES="2").start()
    yield platform
    platform.stop()


def test_healthz_counts_every_listener_process(platform):
    status, health = platform.health()
    assert status == 200
    assert health["components"]["dicom"]["processes"] == 2


def test_parallel_senders_are_all_stored(platform, tmp_path):
    sent = set()
    for sender in range(4):
        folder = tmp_path / f"sender{sender}"
        folder.mkdir()
        for number in range(1, 4):
            dataset = make_dataset(patient_id=f"P{sender}", instance_number=number)
            write_part10(dataset, folder / f"{number}.dcm")
            sent.add(dataset.SOPInstanceUID)
    senders = [storescu(platform, tmp_path / f"sender{sender}", "MODALITY") for sender in range(4)]
    for process in senders:
        process.communicate(timeout=120)
        assert process.returncode == 0
    assert set(index_of(platform.env["RADIOLOGY_DATA_DIR"])) == sent


def test_sigterm_stops_every_listener_process(platform):
    assert len(processes_in_group(platform.process.pid)) == 2
    assert platform.stop() == 0
    assert processes_in_group(platform.process.pid) == []


def test_listener_processes_die_with_a_killed_serve(platform):
    os.kill(platform.process.pid, signal.SIGKILL)
    platform.process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while processes_in_group(platform.process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in_group(platform.process.pid) == []
