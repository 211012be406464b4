"""Fixtures shared by the archive's listener tests: one real DICOM listener per test module."""
import pytest

from tests.archive.listener_peers import register_node, running_listener, wait_for_associations_to_end


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
