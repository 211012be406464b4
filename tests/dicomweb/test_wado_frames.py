"""WADO-RS frames (PS3.18 10.4.1.1.5) and WADO-URI (PS3.18 9): frames uncompressed or in their stored
compressed form, and single instances by query parameters as the stored file or a JPEG picture."""
import io

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from archive.ingest import ingest_file
from archive.models import Instance
from archive.storage import archive_storage
from radiology.choices import AuditChannel
from radiology.models import AuditEvent
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset


def archived(name, folder):
    """One of pydicom's bundled files, archived; returns (stored dataset, study, series, SOP instance UIDs)."""
    result = ingest_file(copy_of_testdata(name, folder))
    assert result.instance is not None, result.reason
    instance = Instance.objects.select_related("series__study").get(sop_instance_uid=result.sop_instance_uid)
    with archive_storage().open(instance.storage_key) as handle:
        dataset = dcmread(handle)
    return dataset, (instance.series.study.study_instance_uid, instance.series.series_instance_uid,
                     instance.sop_instance_uid)


def frame_url(uids, frames):
    study, series, sop = uids
    return f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/{frames}"


def get(client, url, token, **headers):
    return client.get(url, HTTP_AUTHORIZATION=f"Token {token}", **headers)


def test_frames_of_an_uncompressed_instance_are_its_pixel_bytes_in_the_order_asked(dicomweb, tmp_path):
    dataset, uids = archived("rtdose.dcm", tmp_path)
    frames = dicomweb.retrieve_instance_frames(*uids, frame_numbers=[3, 1])
    pixels = dataset.pixel_array
    assert frames == [pixels[2].tobytes(), pixels[0].tobytes()]


def test_frames_of_a_big_endian_instance_are_sent_little_endian(dicomweb, tmp_path):
    dataset, uids = archived("rtdose_expb.dcm", tmp_path)
    [frame] = dicomweb.retrieve_instance_frames(*uids, frame_numbers=[15])
    assert frame == dataset.pixel_array[14].astype("<u4").tobytes()


def test_frames_of_a_compressed_instance_are_decoded_by_default(dicomweb, tmp_path):
    dataset, uids = archived("examples_ybr_color.dcm", tmp_path)
    frames = dicomweb.retrieve_instance_frames(*uids, frame_numbers=[2, 10])
    pixels = dataset.pixel_array
    assert frames == [pixels[1].tobytes(), pixels[9].tobytes()]


def test_frames_of_a_compressed_instance_come_in_their_stored_type_when_asked(dicomweb, tmp_path):
    dataset, uids = archived("examples_ybr_color.dcm", tmp_path)
    stored = list(generate_frames(dataset.PixelData, number_of_frames=int(dataset.NumberOfFrames)))
    frames = dicomweb.retrieve_instance_frames(*uids, frame_numbers=[1, 4], media_types=("image/jpeg",))
    assert frames == [stored[0], stored[3]]


def test_rle_frames_come_in_their_stored_form_with_any_transfer_syntax(client, token, tmp_path):
    dataset, uids = archived("SC_rgb_rle_2frame.dcm", tmp_path)
    stored = list(generate_frames(dataset.PixelData, number_of_frames=2))
    response = get(client, frame_url(uids, "2"), token,
                   HTTP_ACCEPT='multipart/related; type="application/octet-stream"; transfer-syntax=*')
    assert response.status_code == 200
    assert "transfer-syntax=1.2.840.10008.1.2.5" in response["Content-Type"]
    assert stored[1] in b"".join(response.streaming_content)


def test_malformed_frame_lists_are_bad_requests_and_missing_frames_not_found(client, token, tmp_path):
    _, uids = archived("rtdose.dcm", tmp_path)
    for frames in ("0", "1,,2", "a", "1-3"):
        response = get(client, frame_url(uids, frames), token)
        assert response.status_code == 400, frames
        assert "frame list" in response.json()["detail"]
    response = get(client, frame_url(uids, "16"), token)
    assert response.status_code == 404
    assert "15 frame(s)" in response.json()["detail"]


def test_a_compressed_frame_type_for_an_uncompressed_instance_is_not_acceptable(client, token, tmp_path):
    _, uids = archived("rtdose.dcm", tmp_path)
    response = get(client, frame_url(uids, "1"), token, HTTP_ACCEPT='multipart/related; type="image/jp2"')
    assert response.status_code == 406


def test_wado_uri_returns_the_stored_file(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    response = get(client, "/wado", token, data={
        "requestType": "WADO", "studyUID": dataset.StudyInstanceUID, "seriesUID": dataset.SeriesInstanceUID,
        "objectUID": dataset.SOPInstanceUID, "contentType": "application/dicom"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    instance = Instance.objects.get(sop_instance_uid=dataset.SOPInstanceUID)
    with archive_storage().open(instance.storage_key) as handle:
        assert b"".join(response.streaming_content) == handle.read()
    assert AuditEvent.objects.filter(channel=AuditChannel.DICOMWEB, object_id=dataset.StudyInstanceUID).count() == 1


def test_wado_uri_renders_a_jpeg_with_the_asked_window_and_size(client, token):
    dataset = make_dataset(rows=64, columns=32)
    ingest_dataset(dataset)
    query = {"requestType": "WADO", "studyUID": dataset.StudyInstanceUID, "seriesUID": dataset.SeriesInstanceUID,
             "objectUID": dataset.SOPInstanceUID}
    response = get(client, "/wado", token, data={**query, "contentType": "image/jpeg", "rows": "32"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG"
    assert image.size == (16, 32)
    narrow = get(client, "/wado", token, data={**query, "windowCenter": "-1024", "windowWidth": "1"})
    wide = get(client, "/wado", token, data={**query, "windowCenter": "1000", "windowWidth": "8000"})
    assert np.asarray(Image.open(io.BytesIO(narrow.content))).mean() > np.asarray(
        Image.open(io.BytesIO(wide.content))).mean()


def test_wado_uri_refuses_bad_requests_in_http_terms(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    query = {"requestType": "WADO", "studyUID": dataset.StudyInstanceUID, "seriesUID": dataset.SeriesInstanceUID,
             "objectUID": dataset.SOPInstanceUID}
    assert get(client, "/wado", token, data={**query, "requestType": "OTHER"}).status_code == 400
    assert get(client, "/wado", token, data={**query, "objectUID": generate_uid()}).status_code == 404
    assert get(client, "/wado", token, data={**query, "contentType": "text/html"}).status_code == 406
    assert get(client, "/wado", token, data={**query, "windowCenter": "x", "windowWidth": "1"}).status_code == 400
    assert get(client, "/wado", token, data={**query, "frameNumber": "0"}).status_code == 400


def test_a_jpeg_2000_frame_comes_as_image_jp2_when_asked(dicomweb, tmp_path):
    dataset, uids = archived("JPEG2000.dcm", tmp_path)
    [stored] = generate_frames(dataset.PixelData, number_of_frames=1)
    assert dicomweb.retrieve_instance_frames(*uids, frame_numbers=[1], media_types=("image/jp2",)) == [stored]


def test_retrieval_resources_only_answer_reads(client, token, tmp_path):
    _, uids = archived("rtdose.dcm", tmp_path)
    study, series, sop = uids
    response = client.post(f"/dicomweb/studies/{study}/series/{series}/instances/{sop}",
                           HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 405
