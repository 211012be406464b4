"""The archive's real DICOM listener and dcmtk's command-line tools, for the Query/Retrieve tests.

The listener runs in the test process (so tests can look at the index and the audit trail) on a free port,
under the AE title ARCHIVE. Tests that use it need `transactional_db`: the listener's threads have their own
database connections and only see committed rows.
"""
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from pydicom import dcmread

from archive.dimse.listener import DicomListener
from archive.models import DicomNode, Instance
from archive.storage import archive_storage

ARCHIVE_AET = "ARCHIVE"
TOOL_TIMEOUT = 60


@contextmanager
def running_listener():
    """The archive's DicomListener on 127.0.0.1 and a free port; yields it (its `port` is the real one)."""
    listener = DicomListener(host="127.0.0.1", port=0, ae_title=ARCHIVE_AET)
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


def register(ae_title, port=104, **permissions):
    """A registered DicomNode on 127.0.0.1 (allowed to store and query unless told otherwise)."""
    return DicomNode.objects.create(name=ae_title, ae_title=ae_title, host="127.0.0.1", port=port, **permissions)


def dcmtk(tool, *arguments, cwd=None, timeout=TOOL_TIMEOUT):
    """Run a dcmtk tool verbosely with TCP_NODELAY (DESIGN.md 6); returns the CompletedProcess."""
    return subprocess.run([tool, "-v", *arguments], cwd=cwd, env={**os.environ, "TCP_NODELAY": "1"},
                          capture_output=True, text=True, timeout=timeout)


def keys(**values):
    """-k options for findscu/movescu/getscu: keyword=value, or just the keyword to ask for it."""
    options = []
    for keyword, value in values.items():
        options += ["-k", keyword if value is None else f"{keyword}={value}"]
    return options


def extracted_responses(folder):
    """The C-FIND responses findscu --extract wrote into `folder`, in order."""
    return [dcmread(path) for path in sorted(Path(folder).glob("rsp*.dcm"))]


def stored_path(sop_instance_uid):
    """The archived file of an instance."""
    instance = Instance.objects.get(sop_instance_uid=sop_instance_uid)
    return archive_storage().path(instance.storage_key)


def stored_dataset(sop_instance_uid):
    return dcmread(stored_path(sop_instance_uid))


def data_set_bytes(path):
    """The bytes of a Part 10 file after its file meta information (PS3.10 7.1)."""
    raw = Path(path).read_bytes()
    return raw[_file_meta_end(raw):]


def _file_meta_end(raw):
    # Preamble (128) + "DICM" (4), then group 0002 elements in explicit VR little endian; the first, (0002,0000)
    # File Meta Information Group Length, gives the length of the rest (PS3.10 7.1).
    assert raw[128:132] == b"DICM"
    group_length = int.from_bytes(raw[140:144], "little")
    return 144 + group_length
