"""C-GET SCP with dcmtk's getscu: instances come back over the requester's own association, byte for byte as
stored, compressed ones in their stored transfer syntax."""
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from archive.ingest import ingest_file
from radiology.choices import AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import copy_of_testdata
from tests.archive.qr_network import (
    ARCHIVE_AET, data_set_bytes, dcmtk, keys, register, running_listener, stored_dataset, stored_path,
)
from tests.archive.query_archive import build_department

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def archive(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.DICOM_OPEN = False
    settings.DICOM_AET = ARCHIVE_AET
    register("GETSCU")
    with running_listener() as listener:
        yield listener


def getscu(listener, folder, *options, **query):
    folder.mkdir(exist_ok=True)
    result = dcmtk("getscu", "-S", "+B", *options, "-aet", "GETSCU", "-aec", ARCHIVE_AET, "-od", str(folder),
                   *keys(**query), "127.0.0.1", str(listener.port))
    received = {str(dcmread(path, stop_before_pixels=True).SOPInstanceUID): path
                for path in sorted(Path(folder).iterdir())}
    return result, received


def test_getscu_retrieves_a_study_byte_for_byte(archive, tmp_path):
    jane = build_department()["jane"]
    result, received = getscu(archive, tmp_path / "got", QueryRetrieveLevel="STUDY", StudyInstanceUID=jane.study_uid)
    assert result.returncode == 0, result.stderr
    assert "Number of Completed Suboperations : 3" in result.stderr
    assert "Number of Failed Suboperations    : 0" in result.stderr
    assert sorted(received) == sorted(jane.sop_uids)
    for uid, path in received.items():
        assert data_set_bytes(path) == data_set_bytes(stored_path(uid)), uid


def test_getscu_retrieves_one_image(archive, tmp_path):
    jane = build_department()["jane"]
    result, received = getscu(archive, tmp_path / "got", QueryRetrieveLevel="IMAGE", StudyInstanceUID=jane.study_uid,
                              SeriesInstanceUID=jane.series_uids[0], SOPInstanceUID=jane.sop_uids[1])
    assert result.returncode == 0, result.stderr
    assert list(received) == [jane.sop_uids[1]]


# getscu proposes its preferred syntax together with the uncompressed ones in one presentation context, and the
# listener, as acceptor, takes uncompressed first: compressed instances then come back decompressed, with the same
# pixels and the same SOP Instance UID (test_cget_pynetdicom checks the as-stored case).
@pytest.mark.parametrize(("name", "prefer"), [
    ("MR_small_jp2klossless.dcm", "+xv"),
    ("MR_small_jpeg_ls_lossless.dcm", "+xt"),
    ("MR_small_RLE.dcm", "+xr"),
])
def test_getscu_gets_compressed_instances_decompressed_with_the_same_pixels(archive, tmp_path, name, prefer):
    study_uid = generate_uid()
    ingested = ingest_file(copy_of_testdata(name, tmp_path, study_uid=study_uid), calling_ae="TEST")
    assert ingested.ok, ingested.reason
    result, received = getscu(archive, tmp_path / "got", prefer, QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid)
    assert result.returncode == 0, result.stderr
    assert list(received) == [ingested.sop_instance_uid]
    got = dcmread(received[ingested.sop_instance_uid])
    assert not got.file_meta.TransferSyntaxUID.is_compressed
    assert (got.pixel_array == stored_dataset(ingested.sop_instance_uid).pixel_array).all()


def test_a_get_is_audited_as_begin_transferring_to_the_requester(archive, tmp_path):
    john = build_department()["john"]
    getscu(archive, tmp_path / "got", QueryRetrieveLevel="STUDY", StudyInstanceUID=john.study_uid)
    event = AuditEvent.objects.get(code=AuditEventCode.BEGIN_TRANSFERRING)
    assert (event.actor, event.detail["destination"], event.detail["instances"]) == ("GETSCU", "GETSCU", 1)
    assert event.patient.mrn == "PAT002"
