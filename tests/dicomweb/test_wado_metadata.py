"""WADO-RS metadata (PS3.18 10.4.1.2): the DICOM JSON of every instance, with absolute BulkDataURIs that the
bulkdata resource answers, and ETag/Last-Modified/gzip for viewers."""
import gzip
import json

from pydicom import dcmread
from pydicom.uid import generate_uid

from archive.models import Instance
from archive.storage import archive_storage
from tests.archive.factories import ingest_dataset, make_dataset

PIXEL_DATA = "7FE00010"


def stored_dataset(sop_instance_uid):
    instance = Instance.objects.get(sop_instance_uid=sop_instance_uid)
    with archive_storage().open(instance.storage_key) as handle:
        return dcmread(handle)


def served_by(live_server, uri):
    """dicomweb-client sends `Host` without the port (web.py sets it from the host name alone), so absolute
    URIs the platform builds from that header name port 80; the path is what is checked and followed."""
    path = uri.split("/dicomweb/", 1)[1]
    return f"{live_server.url}/dicomweb/{path}"


def get(client, url, token, **headers):
    return client.get(url, HTTP_AUTHORIZATION=f"Token {token}", **headers)


def test_metadata_at_each_level_describes_the_stored_instances(dicomweb):
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number)
                for number in (1, 2)]
    other = make_dataset(study_uid=study_uid, series_uid=generate_uid())
    for dataset in [*datasets, other]:
        ingest_dataset(dataset)
    study = dicomweb.retrieve_study_metadata(study_uid)
    series = dicomweb.retrieve_series_metadata(study_uid, series_uid)
    instance = dicomweb.retrieve_instance_metadata(study_uid, series_uid, datasets[0].SOPInstanceUID)
    assert len(study) == 3
    assert [item["00080018"]["Value"][0] for item in series] == [ds.SOPInstanceUID for ds in datasets]
    assert instance["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert instance["00280010"]["Value"] == [16]


def test_pixel_data_is_a_bulk_data_uri_that_returns_the_stored_pixels(dicomweb, live_server):
    dataset = make_dataset(rows=8, columns=4)
    ingest_dataset(dataset)
    metadata = dicomweb.retrieve_instance_metadata(
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
    uri = metadata[PIXEL_DATA]["BulkDataURI"]
    assert served_by(live_server, uri) == (f"{live_server.url}/dicomweb/studies/{dataset.StudyInstanceUID}/series/"
                   f"{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}/bulkdata/{PIXEL_DATA}")
    assert metadata[PIXEL_DATA]["vr"] == "OW"
    [pixels] = dicomweb.retrieve_bulkdata(served_by(live_server, uri))
    assert pixels == stored_dataset(dataset.SOPInstanceUID).PixelData


def test_large_values_nested_in_sequences_are_retrieved_from_their_own_bulk_data_uri(dicomweb, live_server):
    from pydicom.dataset import Dataset
    item = Dataset()
    item.ReferencedSOPInstanceUID = generate_uid()
    item.add_new(0x00091010, "OB", b"\x01\x02" * 1500)
    dataset = make_dataset()
    dataset.add_new(0x00091010, "OB", b"\x07" * 2000)
    dataset.add_new(0x00091001, "LO", "PRIVATE CREATOR")
    item.add_new(0x00091001, "LO", "PRIVATE CREATOR")
    dataset.ReferencedImageSequence = [item]
    ingest_dataset(dataset)
    metadata = dicomweb.retrieve_instance_metadata(
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
    top = served_by(live_server, metadata["00091010"]["BulkDataURI"])
    nested = served_by(live_server, metadata["00081140"]["Value"][0]["00091010"]["BulkDataURI"])
    assert nested.endswith("/bulkdata/00081140/0/00091010")
    assert list(dicomweb.retrieve_bulkdata(top)) == [b"\x07" * 2000]
    assert list(dicomweb.retrieve_bulkdata(nested)) == [b"\x01\x02" * 1500]


def test_metadata_carries_an_etag_that_answers_not_modified(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    url = f"/dicomweb/studies/{dataset.StudyInstanceUID}/metadata"
    first = get(client, url, token)
    assert first.status_code == 200
    assert first["Content-Type"] == "application/dicom+json"
    assert first["Last-Modified"]
    again = get(client, url, token, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    ingest_dataset(make_dataset(study_uid=dataset.StudyInstanceUID))
    changed = get(client, url, token, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert len(changed.json()) == 2


def test_metadata_is_gzipped_for_clients_that_accept_it(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    url = f"/dicomweb/studies/{dataset.StudyInstanceUID}/metadata"
    plain = get(client, url, token)
    zipped = get(client, url, token, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.content)) == plain.json()


def test_unknown_bulk_data_and_unknown_instances_are_not_found(client, token):
    dataset = make_dataset()
    ingest_dataset(dataset)
    instance_url = (f"/dicomweb/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
                    f"/instances/{dataset.SOPInstanceUID}")
    assert get(client, f"{instance_url}/bulkdata/00091234", token).status_code == 404
    assert get(client, f"{instance_url}/bulkdata/not-a-tag", token).status_code == 400
    missing = get(client, f"/dicomweb/studies/{generate_uid()}/metadata", token)
    assert missing.status_code == 404
    assert "no study" in missing.json()["detail"]
