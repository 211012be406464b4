"""The requests an OHIF v3 viewer (dicomweb data source, docs/dicomweb.md "Using OHIF") makes when it lists
studies and opens one, replayed with its query strings and Accept headers, from another origin: each answers
2xx with a body the viewer can use."""
import gzip
import io
import json

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import generate_frames
from pydicom.uid import JPEGLSLossless, generate_uid
from rest_framework.authtoken.models import Token

from archive.ingest import ingest_file
from archive.models import Instance
from archive.storage import archive_storage
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset

VIEWER = "http://ohif.example.org:3000"
DICOM_JSON = "application/dicom+json"
# cornerstone's WADO-RS image loader (imageRendering and thumbnailRendering 'wadors').
FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
# OHIF's study list: StudyDescription and Modality by tag, fuzzy matching off (supportsFuzzyMatching: false).
STUDY_LIST = "/dicomweb/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060"
# OHIF's lazy study loader asks the series search for SeriesDate, SeriesTime, SeriesDescription, SeriesNumber.
SERIES_FIELDS = "includefield=00080021%2C00080031%2C0008103E%2C00200011"
ROWS, COLUMNS = 24, 32


@pytest.fixture(autouse=True)
def viewer_origin(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.CORS_ALLOWED_ORIGINS = [VIEWER]


@pytest.fixture
def viewer(client, clinician):
    """The Django test client sending what the viewer's browser sends with every request."""
    token = Token.objects.create(user=clinician).key

    def get(url, accept=DICOM_JSON):
        response = client.get(url, HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT=accept, HTTP_ORIGIN=VIEWER,
                              HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert 200 <= response.status_code < 300, (url, response.status_code, body_of(response)[:300])
        assert response["Access-Control-Allow-Origin"] == VIEWER
        return response
    return get


@pytest.fixture
def study(db):
    """A CT study of two series: three uncompressed 24x32 images, and one more."""
    study_uid, axial, scout = generate_uid(), generate_uid(), generate_uid()
    sops = []
    for number in (1, 2, 3):
        dataset = make_dataset(study_uid=study_uid, series_uid=axial, instance_number=number, rows=ROWS,
                               columns=COLUMNS, study_description="CT CHEST")
        ingest_dataset(dataset)
        sops.append(dataset.SOPInstanceUID)
    ingest_dataset(make_dataset(study_uid=study_uid, series_uid=scout, series_number=2,
                                series_description="SCOUT", study_description="CT CHEST"))
    return {"study": study_uid, "axial": axial, "scout": scout, "sops": sops}


def body_of(response):
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Encoding") == "gzip":
        content = gzip.decompress(content)
    return content


def json_of(response):
    assert response["Content-Type"].startswith(DICOM_JSON)
    return json.loads(body_of(response))


def multipart_parts(response):
    """(part headers, part body) of a multipart/related response, as cornerstone splits it."""
    content_type = response["Content-Type"]
    assert content_type.startswith("multipart/related")
    boundary = next(param.split("=", 1)[1].strip('"') for param in content_type.split(";")
                    if param.strip().startswith("boundary="))
    parts = []
    for chunk in body_of(response).split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().strip().split("\r\n"))
        parts.append((headers, content[:-2] if content.endswith(b"\r\n") else content))
    return parts


def value(dataset_json, tag):
    return dataset_json[tag]["Value"][0]


def test_the_study_list_finds_the_study_with_what_the_list_shows(viewer, study):
    studies = json_of(viewer(STUDY_LIST))

    [row] = [row for row in studies if value(row, "0020000D") == study["study"]]
    assert value(row, "00081030") == "CT CHEST"
    assert value(row, "00080061") == "CT"  # ModalitiesInStudy
    assert value(row, "00201208") == 4  # NumberOfStudyRelatedInstances
    assert value(row, "00100010") == {"Alphabetic": "Doe^Jane"}


def test_the_study_browser_finds_the_patients_studies_by_patient_id(viewer, study):
    # PanelStudyBrowser: the patient's other studies, by PatientID tag, without wildcard.
    studies = json_of(viewer(f"{STUDY_LIST}&00100020=PAT001"))

    assert [value(row, "0020000D") for row in studies] == [study["study"]]


def test_the_series_search_lists_the_series_with_their_description_and_number(viewer, study):
    series = json_of(viewer(f"/dicomweb/studies/{study['study']}/series?{SERIES_FIELDS}"))

    assert [(value(row, "0020000E"), value(row, "0008103E"), value(row, "00200011")) for row in series] == [
        (study["axial"], "AXIAL", 1), (study["scout"], "SCOUT", 2)]
    assert all(value(row, "00080021") == "20260115" for row in series)


def test_the_series_metadata_holds_what_the_viewer_needs_to_display_each_instance(viewer, study):
    instances = json_of(viewer(f"/dicomweb/studies/{study['study']}/series/{study['axial']}/metadata"))

    assert sorted(value(instance, "00080018") for instance in instances) == sorted(study["sops"])
    for instance in instances:
        assert (value(instance, "00280010"), value(instance, "00280011")) == (ROWS, COLUMNS)
        assert value(instance, "00280100") == 16  # BitsAllocated
        assert value(instance, "00280004") == "MONOCHROME2"
        assert value(instance, "00281050") == 40  # WindowCenter
        pixel_data = instance["7FE00010"]
        assert pixel_data["BulkDataURI"].endswith(
            f"/dicomweb/studies/{study['study']}/series/{study['axial']}/instances/"
            f"{value(instance, '00080018')}/bulkdata/7FE00010")


def test_the_frames_of_an_uncompressed_instance_decode_to_its_pixels(viewer, study):
    sop = study["sops"][1]
    base = f"/dicomweb/studies/{study['study']}/series/{study['axial']}/instances/{sop}"

    [(headers, frame)] = multipart_parts(viewer(f"{base}/frames/1", accept=FRAME_ACCEPT))

    assert headers["Content-Type"].startswith("application/octet-stream")
    assert len(frame) == ROWS * COLUMNS * 16 // 8
    stored = dcmread(archive_storage().open(Instance.objects.get(sop_instance_uid=sop).storage_key))
    assert np.array_equal(np.frombuffer(frame, dtype="<u2").reshape(ROWS, COLUMNS), stored.pixel_array)


def test_the_frames_of_a_compressed_instance_come_as_stored_with_their_transfer_syntax(viewer, db, tmp_path):
    # transfer-syntax=* lets the viewer decode the stored bitstream itself, as the part's type announces.
    result = ingest_file(copy_of_testdata("MR_small_jpeg_ls_lossless.dcm", tmp_path))
    instance = Instance.objects.select_related("series__study").get(sop_instance_uid=result.sop_instance_uid)
    base = (f"/dicomweb/studies/{instance.series.study.study_instance_uid}/series/"
            f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}")

    [(headers, frame)] = multipart_parts(viewer(f"{base}/frames/1", accept=FRAME_ACCEPT))

    assert headers["Content-Type"] == f"application/octet-stream; transfer-syntax={JPEGLSLossless}"
    stored = dcmread(archive_storage().open(instance.storage_key))
    assert frame.rstrip(b"\x00") == next(generate_frames(stored.PixelData, number_of_frames=1)).rstrip(b"\x00")


@pytest.mark.parametrize("resource", ["thumbnail", "rendered"])
def test_the_instance_picture_for_the_thumbnail_is_a_jpeg(viewer, study, resource):
    base = f"/dicomweb/studies/{study['study']}/series/{study['axial']}/instances/{study['sops'][0]}"

    response = viewer(f"{base}/{resource}", accept="image/jpeg")

    assert response["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(body_of(response))).format == "JPEG"


def test_opening_a_study_replays_in_order_with_the_uids_each_answer_gives(viewer, study):
    # Study list -> series search -> series metadata (one request per series) -> first frame of every image.
    [row] = json_of(viewer(STUDY_LIST))
    study_uid = value(row, "0020000D")
    series_uids = [value(series, "0020000E")
                   for series in json_of(viewer(f"/dicomweb/studies/{study_uid}/series?{SERIES_FIELDS}"))]
    frames = 0
    for series_uid in series_uids:
        for instance in json_of(viewer(f"/dicomweb/studies/{study_uid}/series/{series_uid}/metadata")):
            sop = value(instance, "00080018")
            url = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop}/frames/1"
            [(_, frame)] = multipart_parts(viewer(url, accept=FRAME_ACCEPT))
            expected = value(instance, "00280010") * value(instance, "00280011") * value(instance, "00280100") // 8
            assert len(frame) == expected
            frames += 1

    assert series_uids == [study["axial"], study["scout"]]
    assert frames == 4
