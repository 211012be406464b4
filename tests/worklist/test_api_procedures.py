"""/api/procedures/: the procedure catalogue, read by every order role and edited by administrators."""
import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.worklist.factories import ProcedureTypeFactory, token_client
from worklist.models import ProcedureType

pytestmark = pytest.mark.django_db


def test_nothing_is_served_anonymously():
    ProcedureTypeFactory()
    assert APIClient().get("/api/procedures/").status_code in (401, 403)


def test_an_account_without_a_role_is_refused():
    assert token_client(UserFactory()).get("/api/procedures/").status_code == 403


def test_clinicians_read_the_catalogue_filtered_by_modality(clinician):
    ProcedureTypeFactory(code="CTCHEST", modality="CT", body_part="CHEST")
    ProcedureTypeFactory(code="MRKNEE", modality="MR", body_part="KNEE")

    response = token_client(clinician).get("/api/procedures/", {"modality": "MR"})

    assert response.status_code == 200
    assert [(p["code"], p["body_part"]) for p in response.json()["results"]] == [("MRKNEE", "KNEE")]


def test_clinicians_and_technologists_cannot_change_the_catalogue(clinician, technologist):
    procedure = ProcedureTypeFactory(code="CTCHEST")
    new = {"code": "CTHEAD", "name": "CT head", "modality": "CT"}

    assert token_client(clinician).post("/api/procedures/", new).status_code == 403
    assert token_client(technologist).patch(f"/api/procedures/{procedure.pk}/", {"name": "x"}).status_code == 403
    assert list(ProcedureType.objects.values_list("code", flat=True)) == ["CTCHEST"]


def test_administrators_add_and_retire_procedures(administrator):
    client = token_client(administrator)

    created = client.post("/api/procedures/", {"code": "CTHEAD", "name": "CT head", "modality": "CT",
                                               "body_part": "HEAD", "default_duration_minutes": 15})
    retired = client.patch(f"/api/procedures/{created.json()['id']}/", {"active": False})

    assert (created.status_code, retired.status_code) == (201, 200)
    assert ProcedureType.objects.filter(code="CTHEAD", active=False, default_duration_minutes=15).exists()


def test_a_duplicate_code_is_refused_with_the_reason(administrator):
    ProcedureTypeFactory(code="CTHEAD")

    response = token_client(administrator).post("/api/procedures/", {"code": "CTHEAD", "name": "Again",
                                                                     "modality": "CT"})

    assert response.status_code == 400
    assert "code" in response.json()


def test_procedures_are_not_deleted_through_the_api(administrator):
    procedure = ProcedureTypeFactory()
    assert token_client(administrator).delete(f"/api/procedures/{procedure.pk}/").status_code == 405
