"""STOW-RS (PS3.18 10.5): instances POSTed as multipart/related application/dicom are archived through the
ingest path and answered with the store response; bad requests are refused in HTTP terms, storing nothing."""
import io
from urllib.parse import urlparse

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.uid import generate_uid
from requests import HTTPError
from rest_framework.authtoken.models import Token

from archive import status
from archive.models import Instance
from archive.dicomweb import stow
from archive.storage import FilesystemStorage, archive_storage
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.factories import COMPRESSED_TESTDATA, copy_of_testdata, make_dataset, write_part10

BOUNDARY = "stow-test-boundary"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
REFERENCED_SOP_INSTANCE_UID = "00081155"
RETRIEVE_URL = "00081190"


@pytest.fixture
def technologist_token(transactional_db, technologist):
    return Token.objects.create(user=technologist).key


@pytest.fixture
def dicomweb(live_server, technologist_token):
    return DICOMwebClient(f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {technologist_token}"})


def multipart(*parts, boundary=BOUNDARY):
    """A multipart/related body of (content type, bytes) parts."""
    body = b""
    for content_type, content in parts:
        body += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def part10_bytes(dataset, folder):
    folder.mkdir(parents=True, exist_ok=True)
    return write_part10(dataset, folder / f"{dataset.SOPInstanceUID}.dcm").read_bytes()


def stored_bytes(sop_instance_uid):
    instance = Instance.objects.get(sop_instance_uid=sop_instance_uid)
    with archive_storage().open(instance.storage_key) as handle:
        return handle.read()


def post(client, url, body, token, content_type=STOW_TYPE):
    return client.post(url, data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Token {token}")


def test_stored_instances_are_indexed_and_referenced_with_their_retrieve_urls(dicomweb):
    study_uid = generate_uid()
    datasets = [make_dataset(study_uid=study_uid, instance_number=number) for number in (1, 2)]
    response = dicomweb.store_instances(datasets)
    referenced = response.ReferencedSOPSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced} == {ds.SOPInstanceUID for ds in datasets}
    for item in referenced:
        instance = Instance.objects.select_related("series__study").get(
            sop_instance_uid=item.ReferencedSOPInstanceUID)
        assert instance.series.study.study_instance_uid == study_uid
        assert urlparse(item.RetrieveURL).path == (
            f"/dicomweb/studies/{study_uid}/series/{instance.series.series_instance_uid}"
            f"/instances/{instance.sop_instance_uid}")
    assert urlparse(response.RetrieveURL).path == f"/dicomweb/studies/{study_uid}"
    assert "FailedSOPSequence" not in response


def test_stored_files_hold_the_datasets_that_were_sent(dicomweb):
    dataset = make_dataset()
    dicomweb.store_instances([dataset])
    stored = dcmread(io.BytesIO(stored_bytes(dataset.SOPInstanceUID)))
    assert stored == dataset and stored.PixelData == dataset.PixelData


def test_compressed_instances_are_stored_in_their_transfer_syntax_and_pixel_data(dicomweb, tmp_path):
    datasets = [dcmread(copy_of_testdata(name, tmp_path)) for name in COMPRESSED_TESTDATA
                if name != "image_dfl.dcm"]  # dicomweb-client cannot write a deflated data set
    response = dicomweb.store_instances(datasets)
    assert len(response.ReferencedSOPSequence) == len(datasets)
    for dataset in datasets:
        stored = dcmread(io.BytesIO(stored_bytes(dataset.SOPInstanceUID)))
        assert stored.file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID
        assert stored.PixelData == dataset.PixelData


def test_good_and_broken_instances_give_202_with_the_broken_ones_failed(dicomweb):
    good = make_dataset()
    broken = make_dataset()
    del broken.StudyInstanceUID  # ingest refuses an instance without its study: 0xA900
    response = dicomweb.store_instances([good, broken])
    assert [item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence] == [good.SOPInstanceUID]
    failed = response.FailedSOPSequence
    assert [(item.ReferencedSOPInstanceUID, item.FailureReason) for item in failed] == [
        (broken.SOPInstanceUID, status.DATASET_MISMATCH)]
    assert Instance.objects.filter(sop_instance_uid=good.SOPInstanceUID).exists()
    assert not Instance.objects.filter(sop_instance_uid=broken.SOPInstanceUID).exists()


def test_an_instance_of_another_study_than_the_url_fails_while_the_others_are_stored(dicomweb):
    study_uid = generate_uid()
    own, foreign = make_dataset(study_uid=study_uid), make_dataset()
    response = dicomweb.store_instances([own, foreign], study_instance_uid=study_uid)
    assert [item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence] == [own.SOPInstanceUID]
    assert [(item.ReferencedSOPInstanceUID, item.FailureReason) for item in response.FailedSOPSequence] == [
        (foreign.SOPInstanceUID, status.DATASET_MISMATCH)]
    assert not Instance.objects.filter(sop_instance_uid=foreign.SOPInstanceUID).exists()


def test_a_store_where_nothing_is_stored_is_a_conflict(dicomweb):
    broken = make_dataset()
    del broken.SOPInstanceUID
    with pytest.raises(HTTPError) as refusal:
        dicomweb.store_instances([broken])
    assert refusal.value.response.status_code == 409


def test_a_file_is_stored_byte_for_byte(client, technologist_token, tmp_path):
    path = copy_of_testdata("image_dfl.dcm", tmp_path)  # a deflated data set, as sent
    sent = path.read_bytes()
    response = post(client, "/dicomweb/studies", multipart(("application/dicom", sent)), technologist_token)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/dicom+json")
    sop_uid = response.json()[REFERENCED_SOP_SEQUENCE]["Value"][0][REFERENCED_SOP_INSTANCE_UID]["Value"][0]
    assert stored_bytes(sop_uid) == sent


def test_a_part_that_is_not_dicom_is_listed_as_failed_with_cannot_understand(client, technologist_token, tmp_path):
    good = make_dataset()
    body = multipart(("application/dicom", b"this is not a DICOM file"),
                     ("application/dicom", part10_bytes(good, tmp_path)))
    response = post(client, "/dicomweb/studies", body, technologist_token)
    assert response.status_code == 202
    assert response["Warning"].startswith("299 ")
    failed = response.json()[FAILED_SOP_SEQUENCE]["Value"]
    assert [item[FAILURE_REASON]["Value"] for item in failed] == [[status.CANNOT_UNDERSTAND]]
    assert Instance.objects.filter(sop_instance_uid=good.SOPInstanceUID).exists()


def test_a_body_without_its_closing_boundary_is_a_bad_request_and_stores_nothing(client, technologist_token,
                                                                                  tmp_path):
    good = make_dataset()
    body = multipart(("application/dicom", part10_bytes(good, tmp_path)))
    response = post(client, "/dicomweb/studies", body[:-len(f"--{BOUNDARY}--\r\n") - 2], technologist_token)
    assert response.status_code == 400
    assert not Instance.objects.exists()
    assert list(archive_storage().incoming.iterdir()) == []


def test_a_body_without_any_boundary_is_a_bad_request(client, technologist_token):
    response = post(client, "/dicomweb/studies", b"no parts at all", technologist_token)
    assert response.status_code == 400


def test_a_malformed_study_uid_in_the_url_is_a_bad_request(client, technologist_token, tmp_path):
    body = multipart(("application/dicom", part10_bytes(make_dataset(), tmp_path)))
    response = post(client, "/dicomweb/studies/1.2.abc", body, technologist_token)
    assert response.status_code == 400
    assert not Instance.objects.exists()


@pytest.mark.parametrize("content_type", [
    f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}',
    "application/dicom",
    "application/json",
])
def test_an_unsupported_media_type_is_refused_with_415(client, technologist_token, tmp_path, content_type):
    body = multipart(("application/dicom", part10_bytes(make_dataset(), tmp_path)))
    response = post(client, "/dicomweb/studies", body, technologist_token, content_type=content_type)
    assert response.status_code == 415
    assert not Instance.objects.exists()


def test_storing_without_credentials_is_unauthorized(client, tmp_path, db):
    body = multipart(("application/dicom", part10_bytes(make_dataset(), tmp_path)))
    response = client.post("/dicomweb/studies", data=body, content_type=STOW_TYPE)
    assert response.status_code == 401
    assert not Instance.objects.exists()


def test_a_clinician_may_not_store_instances(client, clinician, tmp_path):
    body = multipart(("application/dicom", part10_bytes(make_dataset(), tmp_path)))
    response = post(client, "/dicomweb/studies", body, Token.objects.create(user=clinician).key)
    assert response.status_code == 403
    assert not Instance.objects.exists()


def test_an_administrator_may_store_instances(client, administrator, tmp_path):
    body = multipart(("application/dicom", part10_bytes(make_dataset(), tmp_path)))
    response = post(client, "/dicomweb/studies", body, Token.objects.create(user=administrator).key)
    assert response.status_code == 200


def test_a_store_is_audited_with_its_user_and_counts(client, technologist, tmp_path):
    study_uid = generate_uid()
    foreign = make_dataset()
    body = multipart(("application/dicom", part10_bytes(make_dataset(study_uid=study_uid), tmp_path)),
                     ("application/dicom", part10_bytes(foreign, tmp_path)))
    post(client, f"/dicomweb/studies/{study_uid}", body, Token.objects.create(user=technologist).key)
    event = AuditEvent.objects.get(code=AuditEventCode.DICOM_INSTANCES_TRANSFERRED)
    assert (event.channel, event.user, event.action, event.outcome) == (
        AuditChannel.DICOMWEB, technologist, "C", AuditOutcome.MINOR_FAILURE)
    assert (event.detail["stored"], event.detail["failed"]) == (1, 1)
    assert event.object_id == study_uid


def test_a_body_larger_than_the_free_disk_space_is_refused_before_it_is_written(client, technologist_token,
                                                                                tmp_path, monkeypatch):
    body = multipart(("application/dicom", part10_bytes(make_dataset(), tmp_path)))
    free = stow.DISK_RESERVE_BYTES + len(body) - 1
    monkeypatch.setattr(FilesystemStorage, "free_bytes", lambda storage: free)
    response = post(client, "/dicomweb/studies", body, technologist_token)
    assert response.status_code == 413
    assert not Instance.objects.exists()
    assert list(archive_storage().incoming.iterdir()) == []


def test_a_stream_that_grows_past_the_free_disk_space_is_cut_off_and_its_parts_removed(tmp_path, monkeypatch):
    # A chunked body declares no length: the limit is enforced while reading.
    parts = [("application/dicom", part10_bytes(make_dataset(), tmp_path)) for _ in range(3)]
    body = multipart(*parts)
    monkeypatch.setattr(FilesystemStorage, "free_bytes", lambda storage: stow.DISK_RESERVE_BYTES + len(body) // 2)
    with pytest.raises(stow.TooLarge):
        stow.receive_parts(io.BytesIO(body), BOUNDARY.encode(), archive_storage(),
                           archive_storage().free_bytes() - stow.DISK_RESERVE_BYTES)
    assert list(archive_storage().incoming.iterdir()) == []


def test_a_different_copy_of_a_stored_instance_is_kept_out_with_a_warning(client, technologist_token, tmp_path,
                                                                          settings):
    settings.ARCHIVE_DUPLICATE_POLICY = "keep-first"
    first = make_dataset()
    post(client, "/dicomweb/studies", multipart(("application/dicom", part10_bytes(first, tmp_path))),
         technologist_token)
    second = make_dataset(sop_uid=first.SOPInstanceUID, study_uid=first.StudyInstanceUID,
                          series_uid=first.SeriesInstanceUID, study_description="CHANGED")
    response = post(client, "/dicomweb/studies",
                    multipart(("application/dicom", part10_bytes(second, tmp_path / "second"))), technologist_token)
    assert response.status_code == 202 and response["Warning"].startswith("299 ")
    item = response.json()[REFERENCED_SOP_SEQUENCE]["Value"][0]
    assert item["00081196"]["Value"] == [status.ELEMENTS_DISCARDED]  # WarningReason
    assert dcmread(io.BytesIO(stored_bytes(first.SOPInstanceUID))).StudyDescription == first.StudyDescription


def test_a_refused_duplicate_fails_with_its_reason_and_is_a_conflict(client, technologist_token, tmp_path, settings):
    settings.ARCHIVE_DUPLICATE_POLICY = "reject"
    first = make_dataset()
    post(client, "/dicomweb/studies", multipart(("application/dicom", part10_bytes(first, tmp_path))),
         technologist_token)
    second = make_dataset(sop_uid=first.SOPInstanceUID, study_uid=first.StudyInstanceUID,
                          series_uid=first.SeriesInstanceUID, study_description="CHANGED")
    response = post(client, "/dicomweb/studies",
                    multipart(("application/dicom", part10_bytes(second, tmp_path / "second"))), technologist_token)
    assert response.status_code == 409
    failed = response.json()[FAILED_SOP_SEQUENCE]["Value"]
    assert [item[FAILURE_REASON]["Value"] for item in failed] == [[status.DUPLICATE_SOP_INSTANCE]]
