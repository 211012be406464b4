"""WADO-RS instance retrieval (PS3.18 10.4.1.1.1-3): studies, series and instances come back as the stored Part 10
files, byte for byte, in their stored transfer syntax unless the client asks for Explicit VR Little Endian."""
import email
import io

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from archive.models import Instance
from archive.storage import archive_storage
from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import COMPRESSED_TESTDATA, copy_of_testdata, ingest_dataset, make_dataset
from archive.ingest import ingest_file

DICOM_ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def stored_bytes(sop_instance_uid):
    instance = Instance.objects.get(sop_instance_uid=sop_instance_uid)
    with archive_storage().open(instance.storage_key) as handle:
        return handle.read()


def written_bytes(dataset):
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def parts_of(response):
    """The (headers, body) of each part of a multipart/related response from Django's test client."""
    body = b"".join(response.streaming_content)
    message = email.message_from_bytes(
        f"Content-Type: {response['Content-Type']}\r\n\r\n".encode() + body)
    return [(part, part.get_payload(decode=True)) for part in message.get_payload()]


def get(client, url, token, **headers):
    return client.get(url, HTTP_AUTHORIZATION=f"Token {token}", **headers)


def compressed_study(folder, study_uid):
    for name in COMPRESSED_TESTDATA:
        result = ingest_file(copy_of_testdata(name, folder, study_uid=study_uid))
        assert result.instance is not None, (name, result.reason)


def test_a_study_is_retrieved_as_the_stored_files(dicomweb):
    study_uid = generate_uid()
    datasets = [make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number)
                for series_uid in (generate_uid(), generate_uid()) for number in (1, 2)]
    for dataset in datasets:
        ingest_dataset(dataset)
    retrieved = dicomweb.retrieve_study(study_uid)
    assert sorted(written_bytes(ds) for ds in retrieved) == sorted(
        stored_bytes(ds.SOPInstanceUID) for ds in datasets)


def test_a_series_and_an_instance_are_retrieved_alone(dicomweb):
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number)
                for number in (1, 2, 3)]
    other = make_dataset(study_uid=study_uid)
    for dataset in [*datasets, other]:
        ingest_dataset(dataset)
    series = dicomweb.retrieve_series(study_uid, series_uid)
    assert {ds.SOPInstanceUID for ds in series} == {ds.SOPInstanceUID for ds in datasets}
    instance = dicomweb.retrieve_instance(study_uid, series_uid, datasets[1].SOPInstanceUID)
    assert written_bytes(instance) == stored_bytes(datasets[1].SOPInstanceUID)


def test_compressed_instances_come_back_in_their_stored_syntax_with_any_transfer_syntax(dicomweb, tmp_path):
    study_uid = generate_uid()
    compressed_study(tmp_path, study_uid)
    retrieved = dicomweb.retrieve_study(study_uid, media_types=(("application/dicom", "*"),))
    assert len(retrieved) == len(COMPRESSED_TESTDATA)
    for dataset in retrieved:
        stored = Instance.objects.get(sop_instance_uid=dataset.SOPInstanceUID)
        assert dataset.file_meta.TransferSyntaxUID == stored.transfer_syntax_uid
        assert written_bytes(dataset) == stored_bytes(dataset.SOPInstanceUID)


def test_explicit_vr_little_endian_is_produced_by_decoding_compressed_instances(dicomweb, tmp_path):
    study_uid = generate_uid()
    compressed_study(tmp_path, study_uid)
    retrieved = dicomweb.retrieve_study(study_uid, media_types=(("application/dicom", ExplicitVRLittleEndian),))
    assert len(retrieved) == len(COMPRESSED_TESTDATA)
    for dataset in retrieved:
        assert dataset.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        original = dcmread(io.BytesIO(stored_bytes(dataset.SOPInstanceUID)))
        if original.file_meta.TransferSyntaxUID.is_compressed:
            original.decompress(generate_instance_uid=False)
        assert (dataset.pixel_array == original.pixel_array).all()


def test_a_transfer_syntax_that_cannot_be_produced_is_not_acceptable(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    response = get(client, f"/dicomweb/studies/{dataset.StudyInstanceUID}", token,
                   HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50')
    assert response.status_code == 406
    assert "1.2.840.10008.1.2.1" in response.json()["detail"]


def test_parts_name_their_transfer_syntax_and_location(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    response = get(client, f"/dicomweb/studies/{dataset.StudyInstanceUID}", token, HTTP_ACCEPT=DICOM_ANY_SYNTAX)
    assert response.status_code == 200
    assert response["Content-Type"].startswith('multipart/related; type="application/dicom"; boundary=')
    [(part, body)] = parts_of(response)
    assert part["Content-Type"] == f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}"
    assert part["Content-Location"] == (
        f"http://testserver/dicomweb/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}")
    assert body == stored_bytes(dataset.SOPInstanceUID)


def test_unknown_uids_are_not_found_and_malformed_ones_are_bad_requests(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    study = dataset.StudyInstanceUID
    for url in (f"/dicomweb/studies/{generate_uid()}", f"/dicomweb/studies/{study}/series/{generate_uid()}",
                f"/dicomweb/studies/{study}/series/{dataset.SeriesInstanceUID}/instances/{generate_uid()}"):
        response = get(client, url, token)
        assert response.status_code == 404, url
        assert "detail" in response.json()
    response = get(client, "/dicomweb/studies/1.2.abc", token)
    assert response.status_code == 400
    assert "malformed study UID" in response.json()["detail"]


def test_a_retrieval_is_one_audit_event_for_the_patient(client, token, clinician):
    dataset = make_dataset()
    ingest_dataset(dataset)
    ingest_dataset(make_dataset(study_uid=dataset.StudyInstanceUID))
    response = get(client, f"/dicomweb/studies/{dataset.StudyInstanceUID}", token)
    b"".join(response.streaming_content)
    [event] = AuditEvent.objects.filter(channel=AuditChannel.DICOMWEB)
    assert event.code == AuditEventCode.DICOM_INSTANCES_ACCESSED
    assert event.user == clinician
    assert event.object_id == dataset.StudyInstanceUID
    assert event.patient.pk == Instance.objects.get(
        sop_instance_uid=dataset.SOPInstanceUID).series.study.patient_id
    assert event.detail["instances"] == 2


def test_anonymous_requests_are_refused(client, db):
    dataset = make_dataset()
    ingest_dataset(dataset)
    assert client.get(f"/dicomweb/studies/{dataset.StudyInstanceUID}").status_code == 401
