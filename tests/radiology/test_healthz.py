"""/healthz reports the database, the storage and each long-running component."""
from datetime import timedelta

from django.utils import timezone

from radiology.models import ServiceHeartbeat


def beat(component, seconds_ago=0):
    ServiceHeartbeat.objects.create(component=component, hostname="pacs1", pid=42,
                                    last_seen=timezone.now() - timedelta(seconds=seconds_ago))


def test_all_ok_when_the_worker_beats(client, db):
    beat("worker")
    beat("dicom")
    beat("hl7")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["storage"]["status"] == "ok"
    assert body["components"]["worker"] == {"status": "ok", "processes": 1,
                                            "last_seen": body["components"]["worker"]["last_seen"]}


def test_a_silent_worker_makes_the_platform_unready(client, db):
    beat("worker", seconds_ago=120)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["worker"]["status"] == "down"


def test_no_worker_at_all_is_down(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["worker"] == {"status": "down", "processes": 0}


def test_an_unusable_storage_is_down(client, db, settings, tmp_path):
    beat("worker")
    not_a_folder = tmp_path / "archive"
    not_a_folder.write_text("a file where the archive folder should be")
    settings.STORAGE_LOCATION = str(not_a_folder / "inside")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["storage"]["status"] == "down"
