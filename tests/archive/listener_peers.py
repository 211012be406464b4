"""The archive's DICOM listener in the test process, and the peers that talk to it (dcmtk tools, pynetdicom).

The listener's handlers run in its own threads with their own database connections, so the tests that use it
are marked `django_db(transaction=True)`: those threads only see committed rows.
"""
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.test import override_settings
from pynetdicom import AE

from archive.dimse.listener import DicomListener, pending_commitment_reports
from archive.models import DicomNode
from archive.storage import INCOMING_FOLDER

TOOL_TIMEOUT = 60
WAIT_TIMEOUT = 15


class _NoHeartbeat:
    """The heartbeat thread writes from its own connection as soon as it starts. The test database is SQLite in
    memory with a shared cache, where a second writer fails at once ("database table is locked") instead of
    waiting, so that write could break the test's own. The heartbeat is tested with `serve` (test_serve.py)."""

    def __init__(self, component, detail=""):
        pass

    def start(self):
        pass

    def stop(self):
        pass


@contextmanager
def running_listener(storage_location):
    """A DicomListener on 127.0.0.1 and a free port over an archive in `storage_location`, without heartbeat."""
    with override_settings(STORAGE_LOCATION=str(storage_location)), \
            mock.patch("archive.dimse.listener.Heartbeat", _NoHeartbeat):
        listener = DicomListener(host="127.0.0.1", port=0)
        listener.start()
        try:
            yield listener
        finally:
            listener.stop()


def register_node(ae_title, port=104, **permissions):
    """A DicomNode on 127.0.0.1, allowed to store and query unless told otherwise."""
    return DicomNode.objects.create(name=ae_title, ae_title=ae_title, host="127.0.0.1", port=port, **permissions)


def dcmtk(tool, *arguments, timeout=TOOL_TIMEOUT):
    """Run a dcmtk tool verbosely with TCP_NODELAY (DESIGN.md section 6); returns the CompletedProcess."""
    return subprocess.run([tool, "-v", *arguments], env={**os.environ, "TCP_NODELAY": "1"},
                          capture_output=True, text=True, timeout=timeout)


def associate(listener, contexts, calling_ae="MODALITY1", called_ae=None, **options):
    """A pynetdicom association to the listener proposing `contexts` (a list of abstract syntaxes, or of
    (abstract syntax, transfer syntaxes) pairs)."""
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TOOL_TIMEOUT
    for context in contexts:
        if isinstance(context, tuple):
            ae.add_requested_context(*context)
        else:
            ae.add_requested_context(context)
    return ae.associate("127.0.0.1", listener.port, ae_title=called_ae or settings.DICOM_AET, **options)


@contextmanager
def association_to(listener, contexts, **options):
    """An established association (see `associate`), released at the end of the block; the block's end also
    waits until the listener has finished with it, audit events included."""
    association = associate(listener, contexts, **options)
    assert association.is_established, "association not accepted"
    try:
        yield association
    finally:
        if association.is_established:
            association.release()
        wait_for_associations_to_end(listener)


def incoming_files(storage_location):
    return [path for path in (Path(storage_location) / INCOMING_FOLDER).iterdir()]


def archived_files(storage_location):
    return [path for path in Path(storage_location).rglob("*.dcm") if INCOMING_FOLDER not in path.parts]


def wait_for_associations_to_end(listener):
    """The listener records an association's audit events after the peer has seen it end, and delivers
    storage commitment results in the background: wait for both."""
    wait_until(lambda: not listener.active_associations and not pending_commitment_reports())


def wait_until(condition, timeout=WAIT_TIMEOUT, interval=0.02):
    """Poll `condition` until it returns something true; returns it, or raises AssertionError at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
