"""Administrators manage users, roles and patients in /admin/."""
import pytest

from radiology.models import ServiceHeartbeat
from tests.factories import PatientFactory, UserFactory


@pytest.mark.parametrize("url", [
    "/admin/", "/admin/auth/user/", "/admin/auth/group/", "/admin/radiology/patient/",
    "/admin/radiology/serviceheartbeat/", "/admin/radiology/patient/add/",
])
def test_admin_pages_open(admin_client_as_administrator, url):
    assert admin_client_as_administrator.get(url).status_code == 200


@pytest.fixture
def admin_client_as_administrator(client, administrator):
    client.force_login(administrator)
    return client


def test_patients_are_searchable_by_mrn(admin_client_as_administrator):
    PatientFactory(mrn="FIND-ME", family_name="Target")
    PatientFactory(mrn="OTHER", family_name="Elsewhere")
    body = admin_client_as_administrator.get("/admin/radiology/patient/", {"q": "FIND-ME"}).content.decode()
    assert "Target" in body and "Elsewhere" not in body


def test_the_user_list_shows_each_role(admin_client_as_administrator):
    UserFactory(username="tech1", role="technologist")
    body = admin_client_as_administrator.get("/admin/auth/user/").content.decode()
    assert "technologist" in body


def test_the_mrn_and_issuer_pair_is_unique(admin_client_as_administrator):
    PatientFactory(mrn="DUP1", issuer="HOSP")
    response = admin_client_as_administrator.post("/admin/radiology/patient/add/", {
        "mrn": "DUP1", "issuer": "HOSP", "family_name": "Again", "given_name": "", "sex": "U"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_heartbeats_are_read_only(admin_client_as_administrator):
    assert admin_client_as_administrator.get("/admin/radiology/serviceheartbeat/add/").status_code == 403
    assert not ServiceHeartbeat.objects.exists()
