"""`manage.py serve` runs the platform in one process and stops cleanly on SIGTERM."""
import subprocess

import pytest

from tests.platform_process import PlatformProcess

pytestmark = pytest.mark.xdist_group("platform-process")


def processes_in_group(pgid):
    ps = subprocess.run(["ps", "-eo", "pgid=,pid=,args="], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if line.split()[0] == str(pgid)]


def test_serve_answers_healthz_and_stops_on_sigterm_leaving_no_process(tmp_path):
    platform = PlatformProcess(tmp_path, seed=False).start()
    try:
        status, health = platform.health()
        assert status == 200, platform.log()
        assert {name: state["status"] for name, state in health["components"].items()} == {
            "database": "ok", "storage": "ok", "worker": "ok", "dicom": "ok", "hl7": "ok"}
    finally:
        exit_code = platform.stop()
    assert exit_code == 0, platform.log()
    assert processes_in_group(platform.process.pid) == []
    assert "stopped" in platform.log()


def test_serve_refuses_a_port_already_in_use(tmp_path):
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        platform = PlatformProcess(tmp_path, seed=False, RADIOLOGY_HTTP_PORT=str(squatter.getsockname()[1]))
        with pytest.raises(RuntimeError, match="serve exited with 1"):
            platform.start()
    assert "web server could not listen on 127.0.0.1:" in platform.log()
