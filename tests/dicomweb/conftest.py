import pytest
from dicomweb_client.api import DICOMwebClient
from rest_framework.authtoken.models import Token


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    """Every DICOMweb test archives into its own folder."""
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    return tmp_path


@pytest.fixture
def token(transactional_db, clinician):
    """Gregory's API token (a clinician: may view, not store)."""
    return Token.objects.create(user=clinician).key


@pytest.fixture
def dicomweb(live_server, token):
    """dicomweb-client, a real DICOMweb client, talking to the platform over HTTP with `token`."""
    return DICOMwebClient(f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token}"})
