import pytest

from radiology.choices import Role
from tests.factories import UserFactory
from tests.platform_process import PlatformProcess


@pytest.fixture
def clinician(db):
    """Gregory, a referring clinician."""
    return UserFactory(username="gregory", role=Role.CLINICIAN)


@pytest.fixture
def radiologist(db):
    """Marie, a radiologist."""
    return UserFactory(username="marie", role=Role.RADIOLOGIST)


@pytest.fixture
def technologist(db):
    """Wilhelm, a technologist."""
    return UserFactory(username="wilhelm", role=Role.TECHNOLOGIST)


@pytest.fixture
def administrator(db):
    """Ada, who administers the platform."""
    return UserFactory(username="ada", role=Role.ADMINISTRATOR)


@pytest.fixture(scope="session")
def running_platform(tmp_path_factory):
    """One `serve` subprocess with the demo data, shared by the tests that need the real thing.
    Mark such tests with xdist_group("platform-process") so they share it under pytest-xdist."""
    platform = PlatformProcess(tmp_path_factory.mktemp("platform")).start()
    yield platform
    platform.stop()
