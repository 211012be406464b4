"""Run `manage.py serve` as a real subprocess for the tests that need the whole platform."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def platform_env(data_dir, **overrides):
    """The environment of a platform subprocess: its own data dir and ports, SQLite, Redis if the suite uses it."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "RADIOLOGY_STORAGE")}
    env.update({
        "RADIOLOGY_DATA_DIR": str(data_dir),
        "RADIOLOGY_HTTP_PORT": str(free_port()),
        "RADIOLOGY_DICOM_PORT": str(free_port()),
        "RADIOLOGY_HL7_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


def manage(env, *args, stdin=None, check=True):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, check=check, timeout=120)


class PlatformProcess:
    def __init__(self, data_dir, seed=True, **env_overrides):
        self.env = platform_env(data_dir, **env_overrides)
        self.base_url = f"http://127.0.0.1:{self.env['RADIOLOGY_HTTP_PORT']}"
        self.log_path = Path(data_dir) / "serve.log"
        self.seed = seed
        self.process = None

    def start(self, ready_timeout=60):
        manage(self.env, "migrate", "--noinput")
        if self.seed:
            manage(self.env, "seed_demo")
        self._log = open(self.log_path, "w")
        # A session of its own, so a test can check that nothing of the group outlives a stop.
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"], cwd=ROOT, env=self.env, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            status, _ = self.health()
            if status == 200:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not become healthy in {ready_timeout}s:\n{self.log()}")

    def health(self):
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        except OSError:
            return None, None

    def stop(self, timeout=30):
        """SIGTERM, then wait; returns the exit code (SIGKILL and -9 if it would not stop)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return -9
        finally:
            self._log.close()

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""
