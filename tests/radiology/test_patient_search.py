"""Finding patients from the home page by name prefix, MRN and birth date."""
import datetime

import pytest

from tests.factories import PatientFactory


@pytest.fixture
def patients(db):
    return {
        "jane": PatientFactory(mrn="A100", family_name="Doe", given_name="Jane", birth_date=datetime.date(1970, 3, 14)),
        "john": PatientFactory(mrn="A200", family_name="Doe", given_name="John", birth_date=datetime.date(1968, 1, 2)),
        "aiko": PatientFactory(mrn="B300", family_name="Nakamura", given_name="Aiko"),
    }


def names_found(response):
    return [patient.mrn for patient in response.context["page"]] if response.context["page"] else []


def test_family_name_prefix_matches_case_insensitively(client, clinician, patients):
    client.force_login(clinician)
    assert sorted(names_found(client.get("/", {"q": "do"}))) == ["A100", "A200"]


@pytest.mark.parametrize("query", ["Doe, Ja", "DOE^JA"])
def test_family_and_given_name_narrow_the_search(client, clinician, patients, query):
    client.force_login(clinician)
    assert names_found(client.get("/", {"q": query})) == ["A100"]


def test_an_mrn_finds_its_patient(client, radiologist, patients):
    client.force_login(radiologist)
    assert names_found(client.get("/", {"q": "B300"})) == ["B300"]


def test_birth_date_narrows_the_search(client, technologist, patients):
    client.force_login(technologist)
    assert names_found(client.get("/", {"q": "Doe", "birth_date": "1968-01-02"})) == ["A200"]


def test_merged_away_records_are_not_listed(client, clinician, patients):
    patients["john"].merged_into = patients["jane"]
    patients["john"].save()
    client.force_login(clinician)
    assert names_found(client.get("/", {"q": "Doe"})) == ["A100"]


def test_an_invalid_birth_date_is_a_form_error(client, clinician, patients):
    client.force_login(clinician)
    response = client.get("/", {"birth_date": "14/03/1970"})
    assert "Enter a valid date" in response.content.decode()
    assert response.context["page"] is None


def test_patient_names_are_escaped(client, clinician, db):
    PatientFactory(mrn="X1", family_name="<script>alert(1)</script>", given_name="Eve")
    client.force_login(clinician)
    body = client.get("/", {"q": "X1"}).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_results_are_paged(client, clinician, db):
    PatientFactory.create_batch(30, family_name="Smith")
    client.force_login(clinician)
    first = client.get("/", {"q": "Smith"})
    second = client.get("/", {"q": "Smith", "page": 2})
    assert len(first.context["page"]) == 25 and len(second.context["page"]) == 5
    assert "Next" in first.content.decode()
