"""C-MOVE SCP with dcmtk's movescu as the requester and dcmtk's storescp as the registered destination: what
arrives is what the archive holds, element for element, compressed instances in their stored syntax."""
import tempfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from archive.ingest import ingest_file
from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import COMPRESSED_TESTDATA, copy_of_testdata
from tests.archive.qr_network import ARCHIVE_AET, dcmtk, keys, register, running_listener, stored_dataset
from tests.archive.query_archive import build_department
from tests.archive.remote_nodes import differing_elements

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def archive(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.DICOM_OPEN = False
    settings.DICOM_AET = ARCHIVE_AET
    register("MOVESCU")
    with running_listener() as listener:
        yield listener


def movescu(listener, *options, destination="DEST", **query):
    return dcmtk("movescu", *options, "-aet", "MOVESCU", "-aec", ARCHIVE_AET, "-aem", destination,
                 *keys(**query), "127.0.0.1", str(listener.port))


def assert_received_as_stored(received, sop_instance_uids):
    assert sorted(received) == sorted(sop_instance_uids)
    for uid, dataset in received.items():
        stored = stored_dataset(uid)
        assert dataset.file_meta.TransferSyntaxUID == stored.file_meta.TransferSyntaxUID, uid
        assert differing_elements(dataset, stored) == [], uid


def test_movescu_sends_a_study_to_a_registered_node_unchanged(archive, destination):
    jane = build_department()["jane"]
    result = movescu(archive, "-S", QueryRetrieveLevel="STUDY", StudyInstanceUID=jane.study_uid)
    assert result.returncode == 0, result.stderr
    assert "Received Final Move Response (Success)" in result.stderr
    assert_received_as_stored(destination.received(), jane.sop_uids)
    assert destination.associations() == 1


def test_movescu_patient_root_sends_every_study_of_the_patient(archive, destination):
    john = build_department()["john"]
    result = movescu(archive, "-P", QueryRetrieveLevel="PATIENT", PatientID="PAT002")
    assert result.returncode == 0, result.stderr
    assert_received_as_stored(destination.received(), john.sop_uids)


def test_movescu_sends_one_series(archive, destination):
    jane = build_department()["jane"]
    result = movescu(archive, "-S", QueryRetrieveLevel="SERIES", StudyInstanceUID=jane.study_uid,
                     SeriesInstanceUID=jane.series_uids[1])
    assert result.returncode == 0, result.stderr
    assert_received_as_stored(destination.received(), jane.sop_uids[2:])


def test_compressed_instances_are_moved_in_their_stored_transfer_syntax(archive, destination):
    study_uid = generate_uid()
    sop_uids = []
    with tempfile.TemporaryDirectory() as folder:
        for name in COMPRESSED_TESTDATA:
            path = copy_of_testdata(name, Path(folder), study_uid=study_uid, patient_id="PAT900")
            result = ingest_file(path, calling_ae="TEST")
            assert result.ok, (name, result.reason)
            sop_uids.append(result.sop_instance_uid)
    result = movescu(archive, "-S", QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid)
    assert result.returncode == 0, result.stderr
    assert_received_as_stored(destination.received(), sop_uids)


def test_a_move_is_audited_as_begin_transferring(archive, destination):
    jane = build_department()["jane"]
    movescu(archive, "-S", QueryRetrieveLevel="STUDY", StudyInstanceUID=jane.study_uid)
    event = AuditEvent.objects.get(code=AuditEventCode.BEGIN_TRANSFERRING)
    assert (event.actor, event.channel, event.patient.mrn) == ("MOVESCU", AuditChannel.DICOM, "PAT001")
    assert (event.object_type, event.object_id) == ("study", jane.study_uid)
    assert event.detail["destination"] == "DEST"
    assert event.detail["study_instance_uids"] == [jane.study_uid]
    assert event.detail["instances"] == 3


def test_movescu_to_an_unknown_destination_gets_move_destination_unknown(archive, destination):
    jane = build_department()["jane"]
    result = movescu(archive, "-S", destination="NOWHERE", QueryRetrieveLevel="STUDY",
                     StudyInstanceUID=jane.study_uid)
    assert "Move Destination unknown" in result.stderr or "MoveDestinationUnknown" in result.stderr
    assert destination.received() == {}
