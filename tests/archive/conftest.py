"""Fixtures shared by the archive's network tests: the real DICOM listener, and a C-MOVE destination."""
import pytest

from tests.archive import qr_network
from tests.archive.listener_peers import register_node, running_listener, wait_for_associations_to_end
from tests.archive.remote_nodes import StoreSCP


@pytest.fixture(scope="module")
def storage_location(tmp_path_factory):
    """The archive folder of the module's listener."""
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def module_listener(django_db_setup, django_db_blocker, storage_location):
    """The archive's DicomListener on 127.0.0.1 and a free port, started once per test module."""
    with django_db_blocker.unblock(), running_listener(storage_location) as listener:
        yield listener


@pytest.fixture
def listener(module_listener):
    """The module's listener; each test's associations end on the listener's side, audit written, before its
    database is emptied."""
    yield module_listener
    wait_for_associations_to_end(module_listener)


@pytest.fixture
def modality(listener):
    """A registered modality, MODALITY1, allowed to store and query."""
    return register_node("MODALITY1")


@pytest.fixture
def qr_listener(settings, tmp_path):
    """A listener for the query/retrieve tests: its own archive folder, closed to unknown AEs, and PYSCU (the
    tests' pynetdicom SCU) registered."""
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.DICOM_OPEN = False
    settings.DICOM_AET = qr_network.ARCHIVE_AET
    qr_network.register("PYSCU")
    with qr_network.running_listener() as running:
        yield running


@pytest.fixture
def destination(tmp_path):
    """dcmtk's storescp as the registered C-MOVE destination DEST."""
    storescp = StoreSCP(tmp_path / "received", "+xa", ae_title="DEST").start()
    qr_network.register("DEST", port=storescp.port)
    yield storescp
    storescp.stop()
