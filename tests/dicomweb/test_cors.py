"""CORS for an external viewer: the origins of RADIOLOGY_CORS_ORIGINS may call DICOMweb and WADO-URI from a
browser; a preflight is answered without credentials; nothing else of the platform is opened to them."""
import pytest
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token

from tests.archive.factories import ingest_dataset, make_dataset

VIEWER = "http://viewer.example.org:3000"


@pytest.fixture(autouse=True)
def viewer_origin(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.CORS_ALLOWED_ORIGINS = [VIEWER]


@pytest.fixture
def token(clinician):
    return Token.objects.create(user=clinician).key


@pytest.fixture
def study(db):
    dataset = make_dataset(study_uid=generate_uid())
    ingest_dataset(dataset)
    return dataset


def preflight(client, url, origin, method="GET"):
    return client.options(url, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, accept")


def cors_headers(response):
    return {name for name in response.headers if name.lower().startswith("access-control-")}


def test_the_viewer_origin_is_allowed_on_a_qido_search(client, token, study):
    response = client.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER, HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert "Warning" in response["Access-Control-Expose-Headers"]


def test_a_preflight_from_the_viewer_is_answered_without_credentials(client, study):
    response = preflight(client, f"/dicomweb/studies/{study.StudyInstanceUID}/series", VIEWER)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")} == {"GET", "HEAD", "POST",
                                                                                         "OPTIONS"}
    assert "authorization" in response["Access-Control-Allow-Headers"].split(", ")
    assert "accept" in response["Access-Control-Allow-Headers"].split(", ")


def test_a_preflight_for_a_stow_post_is_answered(client, db):
    response = preflight(client, "/dicomweb/studies", VIEWER, method="POST")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == VIEWER


def test_wado_uri_is_open_to_the_viewer_origin(client, db):
    response = preflight(client, "/wado", VIEWER)

    assert response["Access-Control-Allow-Origin"] == VIEWER


def test_the_viewer_still_needs_a_token_for_the_actual_request(client, study):
    response = client.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER)

    assert response.status_code == 401
    # The browser lets the viewer read the 401, so it can ask the user to sign in.
    assert response["Access-Control-Allow-Origin"] == VIEWER


def test_another_origin_gets_no_cors_headers(client, token, study):
    other = "http://elsewhere.example.org"

    searched = client.get("/dicomweb/studies", HTTP_ORIGIN=other, HTTP_AUTHORIZATION=f"Token {token}")
    preflighted = preflight(client, "/dicomweb/studies", other)

    assert searched.status_code == 200
    assert cors_headers(searched) == set()
    assert cors_headers(preflighted) == set()


def test_the_same_host_on_another_port_is_another_origin(client, token, study):
    response = client.get("/dicomweb/studies", HTTP_ORIGIN="http://viewer.example.org:8080",
                          HTTP_AUTHORIZATION=f"Token {token}")

    assert cors_headers(response) == set()


@pytest.mark.parametrize("url", ["/api/patients/", "/healthz", "/"])
def test_nothing_outside_dicomweb_is_opened_to_the_viewer_origin(client, token, url):
    searched = client.get(url, HTTP_ORIGIN=VIEWER, HTTP_AUTHORIZATION=f"Token {token}")
    preflighted = preflight(client, url, VIEWER)

    assert cors_headers(searched) == set()
    assert cors_headers(preflighted) == set()


def test_without_configured_origins_no_cors_headers_are_sent(client, settings, token, study):
    settings.CORS_ALLOWED_ORIGINS = []

    searched = client.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER, HTTP_AUTHORIZATION=f"Token {token}")
    preflighted = preflight(client, "/dicomweb/studies", VIEWER)

    assert cors_headers(searched) == set()
    assert cors_headers(preflighted) == set()
