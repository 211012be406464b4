"""Settings for the test suite: the platform's own settings over a throw-away data dir."""
import atexit
import os
import shutil
import tempfile

_data_dir = tempfile.mkdtemp(prefix="radiology-test-")
atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ["RADIOLOGY_DATA_DIR"] = _data_dir
os.environ.pop("RADIOLOGY_STORAGE", None)

from radiology.settings import *  # noqa: E402,F403

# Hashing at production strength makes every log-in in the suite slow, and proves nothing more.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Parallel test processes (pytest-xdist) sharing one Redis must not hear each other's WebSocket groups.
if REDIS_URL:  # noqa: F405
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405

# Connections opened by the threads of async tests close when their work is done, so the test databases
# can be dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
