"""QIDO-RS answers to requests it cannot serve as asked (PS3.18 8.3.4, 10.6.3): who may search, bad parameters,
no matches, results cut by a limit, and what it does not support."""
import pytest
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token

from radiology.choices import AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import UserFactory

LIMIT_WARNING = ('299 testserver "The number of results exceeded the maximum supported by the server. '
                 'Additional results can be requested."')


@pytest.fixture
def token(clinician):
    return Token.objects.create(user=clinician).key


@pytest.fixture
def studies(db):
    """Three studies of patient PAT001, each with one CT instance."""
    uids = [generate_uid() for _ in range(3)]
    for day, uid in enumerate(uids, start=1):
        ingest_dataset(make_dataset(study_uid=uid, study_date=f"2026010{day}"))
    return uids


def search(client, url, token, **headers):
    return client.get(url, HTTP_AUTHORIZATION=f"Token {token}", **headers)


def test_searching_without_credentials_is_refused_with_401(client, studies):
    response = client.get("/dicomweb/studies")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_searching_without_permission_to_view_images_is_refused_with_403(client, studies):
    token = Token.objects.create(user=UserFactory(username="visitor")).key

    assert search(client, "/dicomweb/studies", token).status_code == 403


def test_an_unknown_attribute_is_refused_with_400_naming_it(client, token, studies):
    response = search(client, "/dicomweb/studies?PatientNickname=Jane", token)

    assert response.status_code == 400
    assert "PatientNickname" in response.json()["detail"]


def test_an_attribute_that_cannot_be_matched_is_refused_with_400_naming_it(client, token, studies):
    response = search(client, "/dicomweb/studies?InstitutionName=General", token)

    assert response.status_code == 400
    assert "InstitutionName" in response.json()["detail"]


@pytest.mark.parametrize("query", ["StudyDate=2026-01-01", "limit=ten", "offset=-1", "SeriesNumber=two",
                                   "fuzzymatching=maybe", "PatientName=A&PatientName=B"])
def test_a_bad_parameter_value_is_refused_with_400(client, token, studies, query):
    response = search(client, f"/dicomweb/instances?{query}", token)

    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_malformed_study_uid_in_the_path_is_refused_with_400(client, token, studies):
    assert search(client, "/dicomweb/studies/not-a-uid/series", token).status_code == 400


def test_a_failed_search_is_audited_as_a_minor_failure(client, token, studies):
    search(client, "/dicomweb/studies?PatientNickname=Jane", token)

    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert event.outcome == AuditOutcome.MINOR_FAILURE
    assert "PatientNickname" in event.detail["error"]


def test_no_match_is_answered_204_without_content(client, token, studies):
    response = search(client, "/dicomweb/studies?PatientID=NOBODY", token)

    assert response.status_code == 204
    assert response.content == b""


def test_results_cut_by_the_limit_carry_a_warning(client, token, studies):
    response = search(client, "/dicomweb/studies?limit=2", token)

    assert response.status_code == 200
    assert len(response.json()) == 2
    assert response["Warning"] == LIMIT_WARNING


def test_the_last_page_carries_no_warning(client, token, studies):
    response = search(client, "/dicomweb/studies?limit=2&offset=2", token)

    assert len(response.json()) == 1
    assert "Warning" not in response


def test_results_beyond_the_server_maximum_need_another_request(client, token, studies, monkeypatch):
    monkeypatch.setattr("archive.dicomweb.qido.MAXIMUM_RESULTS", 2)

    response = search(client, "/dicomweb/studies?limit=100", token)

    assert len(response.json()) == 2
    assert response["Warning"] == LIMIT_WARNING


def test_fuzzy_matching_is_accepted_with_a_warning_that_matching_was_literal(client, token, studies):
    response = search(client, "/dicomweb/studies?fuzzymatching=true&PatientName=Doe^Jane", token)

    assert len(response.json()) == 3
    assert "fuzzymatching parameter is not supported" in response["Warning"]


def test_an_accept_header_without_dicom_json_is_refused_with_406(client, token, studies):
    response = search(client, "/dicomweb/studies", token, HTTP_ACCEPT="application/dicom+xml")

    assert response.status_code == 406


def test_results_are_dicom_json_with_urls_against_the_request_host(client, token, studies):
    response = search(client, f"/dicomweb/studies?StudyInstanceUID={studies[0]},{studies[2]}", token,
                      HTTP_ACCEPT="application/dicom+json")

    assert response["Content-Type"].startswith("application/dicom+json")
    urls = sorted(result["00081190"]["Value"][0] for result in response.json())
    assert urls == sorted(f"http://testserver/dicomweb/studies/{uid}" for uid in (studies[0], studies[2]))


def test_attributes_may_be_named_by_tag(client, token, studies):
    response = search(client, "/dicomweb/studies?00100020=PAT001&00080020=20260102", token)

    assert [result["0020000D"]["Value"][0] for result in response.json()] == [studies[1]]


@pytest.mark.parametrize("url", ["/dicomweb/studies", "/dicomweb/series", "/dicomweb/instances"])
def test_a_search_reads_the_results_in_a_fixed_number_of_queries(client, token, studies, url,
                                                                  django_assert_max_num_queries):
    for number in range(2, 30):
        ingest_dataset(make_dataset(study_uid=studies[0], instance_number=number))

    # Authentication (token, user, permissions), one query for the results, the audit event and its patient.
    with django_assert_max_num_queries(6):
        response = search(client, f"{url}?PatientID=PAT001&includefield=all", token)

    assert response.status_code == 200


def test_the_accept_query_parameter_takes_the_place_of_the_accept_header(client, token, studies):
    refused = search(client, "/dicomweb/studies?accept=image/jpeg", token, HTTP_ACCEPT="application/dicom+json")
    answered = search(client, "/dicomweb/studies?accept=application/dicom%2Bjson", token, HTTP_ACCEPT="image/jpeg")

    assert (refused.status_code, answered.status_code) == (406, 200)
