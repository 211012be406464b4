"""A study's page: its attributes, its series with thumbnails, and an audit entry for each view."""
import pytest
from pydicom.uid import generate_uid

from archive.models import DicomNode, Study
from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import UserFactory


@pytest.fixture
def study(db):
    """A CT head study of Jane Doe: two axial images in series 2, a scout in series 1, a report in series 9."""
    study_uid = generate_uid()
    series = {number: generate_uid() for number in (1, 2, 9)}
    ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series[1], series_number=1,
                                series_description="SCOUT", body_part="HEAD"))
    for instance_number in (1, 2):
        ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series[2], series_number=2,
                                    instance_number=instance_number, series_description="AXIAL 5mm"))
    report = make_dataset(study_uid=study_uid, series_uid=series[9], series_number=9, modality="SR",
                          sop_class_uid="1.2.840.10008.5.1.4.1.1.88.11", series_description="REPORT")
    for keyword in ("Rows", "Columns", "PixelData", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel",
                    "PhotometricInterpretation", "PixelRepresentation"):
        delattr(report, keyword)
    ingest_dataset(report)
    return Study.objects.get(study_instance_uid=study_uid)


def test_the_page_shows_the_study_attributes(client, radiologist, study):
    client.force_login(radiologist)
    body = client.get(f"/studies/{study.pk}/").content.decode()
    for shown in ("Doe, Jane", "PAT001", "1970-03-14", "2026-01-15 10:15:00", "ACC001", "CT HEAD",
                  "House, Gregory", study.study_instance_uid):
        assert shown in body


def test_each_series_is_listed_in_series_number_order(client, radiologist, study):
    client.force_login(radiologist)
    series_list = list(client.get(f"/studies/{study.pk}/").context["series_list"])
    assert [(series.series_number, series.series_description, series.number_of_instances)
            for series in series_list] == [(1, "SCOUT", 1), (2, "AXIAL 5mm", 2), (9, "REPORT", 1)]


def test_series_with_images_have_a_thumbnail_and_others_do_not(client, radiologist, study):
    client.force_login(radiologist)
    body = client.get(f"/studies/{study.pk}/").content.decode()
    series = {series.series_number: series for series in study.series.all()}
    assert f'src="/studies/{study.pk}/series/{series[1].pk}/thumbnail.png"' in body
    assert f'src="/studies/{study.pk}/series/{series[2].pk}/thumbnail.png"' in body
    assert f"/series/{series[9].pk}/thumbnail.png" not in body
    assert "no image" in body


def test_each_view_is_audited_as_instances_accessed(client, radiologist, study):
    client.force_login(radiologist)
    client.get(f"/studies/{study.pk}/")
    event = AuditEvent.objects.get(code=AuditEventCode.DICOM_INSTANCES_ACCESSED)
    assert (event.user, event.channel, event.patient, event.object_id, event.action) == (
        radiologist, AuditChannel.WEB, study.patient, study.study_instance_uid, "R")


def test_an_unknown_study_is_not_found(client, radiologist, db):
    client.force_login(radiologist)
    assert client.get("/studies/999999/").status_code == 404


def test_a_script_in_a_description_is_shown_as_text(client, radiologist, db):
    result = ingest_dataset(make_dataset(study_description="<script>alert(1)</script>",
                                         series_description="<img src=x onerror=alert(2)>"))
    client.force_login(radiologist)
    body = client.get(f"/studies/{result.instance.series.study.pk}/").content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body


def test_radiologists_see_download_transfers_and_send(client, radiologist, study):
    client.force_login(radiologist)
    body = client.get(f"/studies/{study.pk}/").content.decode()
    assert f'href="/studies/{study.pk}/download.zip"' in body
    assert f'href="/studies/transfers/?study={study.pk}"' in body
    assert "No DICOM node is registered to send to." in body
    DicomNode.objects.create(name="Reading room 3", ae_title="RR3", host="127.0.0.1", port=11113)
    assert f'action="/studies/{study.pk}/send/"' in client.get(f"/studies/{study.pk}/").content.decode()


def test_clinicians_may_download_but_not_send(client, clinician, study):
    client.force_login(clinician)
    body = client.get(f"/studies/{study.pk}/").content.decode()
    assert f'href="/studies/{study.pk}/download.zip"' in body
    assert "/send/" not in body and "/studies/transfers/" not in body


def test_anonymous_visitors_are_sent_to_sign_in(client, study):
    response = client.get(f"/studies/{study.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_account_without_a_role_is_refused(client, study):
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.pk}/").status_code == 403
    assert not AuditEvent.objects.filter(code=AuditEventCode.DICOM_INSTANCES_ACCESSED).exists()
