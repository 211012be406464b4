"""/api/patients/ with token and session authentication."""
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import PatientFactory, UserFactory


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_nothing_is_served_anonymously(db):
    PatientFactory()
    assert APIClient().get("/api/patients/").status_code in (401, 403)


def test_a_signed_in_account_without_a_role_sees_no_patient(db):
    PatientFactory()
    assert token_client(UserFactory()).get("/api/patients/").status_code == 403


def test_search_by_name_prefix(clinician):
    PatientFactory(mrn="P1", family_name="Doe", given_name="Jane")
    PatientFactory(mrn="P2", family_name="Roe", given_name="Rick")
    response = token_client(clinician).get("/api/patients/", {"q": "doe"})
    assert response.status_code == 200
    assert [patient["mrn"] for patient in response.json()["results"]] == ["P1"]


def test_search_by_mrn_and_birth_date(clinician):
    PatientFactory(mrn="P1", birth_date="1970-03-14")
    PatientFactory(mrn="P2", birth_date="1980-01-01")
    results = token_client(clinician).get("/api/patients/", {"birth_date": "1970-03-14"}).json()["results"]
    assert [patient["mrn"] for patient in results] == ["P1"]
    assert token_client(clinician).get("/api/patients/", {"mrn": "P2"}).json()["count"] == 1


def test_clinicians_cannot_register_patients(clinician):
    response = token_client(clinician).post("/api/patients/", {"mrn": "N1", "family_name": "New"})
    assert response.status_code == 403


def test_administrators_register_patients_and_duplicates_are_refused(administrator):
    client = token_client(administrator)
    assert client.post("/api/patients/", {"mrn": "N1", "family_name": "New"}).status_code == 201
    duplicate = client.post("/api/patients/", {"mrn": "N1", "family_name": "Again"})
    assert duplicate.status_code == 400
    assert "unique" in str(duplicate.json()).lower()


def test_the_schema_and_docs_are_served_without_a_cdn(client, administrator):
    client.force_login(administrator)
    assert "/api/patients/" in client.get("/api/schema/").content.decode()
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower() and "https://" not in docs
