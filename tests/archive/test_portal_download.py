"""Downloading a study as a zip: every instance, byte for byte, under names made of numbers, audited."""
import io
import zipfile

import pytest
from django.http import StreamingHttpResponse
from pydicom.uid import generate_uid

from archive.models import Instance, Study
from archive.storage import archive_storage
from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import UserFactory


@pytest.fixture
def study(db):
    """Series 1 with instances 1-3, series 2 with instances 1-2."""
    study_uid = generate_uid()
    for series_number, count in ((1, 3), (2, 2)):
        series_uid = generate_uid()
        for instance_number in range(1, count + 1):
            ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, series_number=series_number,
                                        instance_number=instance_number, rows=64, columns=64))
    return Study.objects.get(study_instance_uid=study_uid)


def download(client, study):
    response = client.get(f"/studies/{study.pk}/download.zip")
    assert response.status_code == 200, response.content
    return response, zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def stored_bytes(instance):
    with archive_storage().open(instance.storage_key) as handle:
        return handle.read()


def test_the_zip_holds_every_instance_with_identical_bytes(client, radiologist, study):
    client.force_login(radiologist)
    _, archive = download(client, study)
    assert archive.testzip() is None
    instances = Instance.objects.filter(series__study=study)
    by_name = {f"{i.series.series_number}/{i.instance_number}.dcm": i for i in instances}
    assert sorted(archive.namelist()) == sorted(by_name)
    for name, instance in by_name.items():
        assert archive.read(name) == stored_bytes(instance)


def test_the_zip_is_streamed_as_an_attachment(client, radiologist, study):
    client.force_login(radiologist)
    response, _ = download(client, study)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="study-{study.pk}.zip"'
    assert "no-store" in response["Cache-Control"]


def test_entry_names_come_from_numbers_never_from_tag_values(client, radiologist, db):
    study_uid, series_uid = generate_uid(), generate_uid()
    for _ in range(2):  # no series number, and the same instance number twice
        unnumbered_series = make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=7,
                                         series_description="../../etc/passwd", study_description="..\\evil")
        del unnumbered_series.SeriesNumber
        ingest_dataset(unnumbered_series)
    unnumbered_instance = make_dataset(study_uid=study_uid, series_number=-2)
    del unnumbered_instance.InstanceNumber
    ingest_dataset(unnumbered_instance)
    client.force_login(radiologist)
    _, archive = download(client, Study.objects.get(study_instance_uid=study_uid))
    assert sorted(archive.namelist()) == ["-2/x1.dcm", "x2/7-2.dcm", "x2/7.dcm"]


def test_a_download_is_audited_as_an_export(client, clinician, study):
    client.force_login(clinician)
    download(client, study)
    event = AuditEvent.objects.get(code=AuditEventCode.EXPORT)
    assert (event.user, event.channel, event.patient, event.object_id) == (
        clinician, AuditChannel.WEB, study.patient, study.study_instance_uid)
    assert event.detail["instances"] == 5


def test_a_missing_stored_file_fails_before_anything_is_sent(client, radiologist, study):
    instance = Instance.objects.filter(series__study=study).first()
    archive_storage().path(instance.storage_key).rename(archive_storage().path(instance.storage_key + ".away"))
    try:
        client.force_login(radiologist)
        response = client.get(f"/studies/{study.pk}/download.zip")
        assert response.status_code == 500
        assert "1 stored file(s) of this study are missing" in response.content.decode()
        assert not AuditEvent.objects.filter(code=AuditEventCode.EXPORT).exists()
    finally:
        archive_storage().path(instance.storage_key + ".away").rename(archive_storage().path(instance.storage_key))


def test_anonymous_visitors_are_sent_to_sign_in(client, study):
    assert client.get(f"/studies/{study.pk}/download.zip").status_code == 302


def test_an_account_without_a_role_is_refused(client, study):
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.pk}/download.zip").status_code == 403
