"""Sending a study or a series to a node (C-STORE SCU) with dcmtk's storescp as the destination."""
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from archive.choices import TransferStatus
from archive.ingest import ingest_file
from archive.models import Instance
from archive.storage import archive_storage
from archive.tasks import run_transfer
from archive.transfers import request_send
from tests.archive.factories import (
    COMPRESSED_TESTDATA, UNCOMPRESSED_TESTDATA, copy_of_testdata, ingest_dataset, make_dataset,
)
from tests.archive.remote_nodes import StoreSCP, differing_elements, register_node

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def destination(tmp_path_factory):
    """One storescp for the module, accepting every transfer syntax it knows."""
    scp = StoreSCP(tmp_path_factory.mktemp("storescp") / "received", "+xa").start()
    yield scp
    scp.stop()


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


@pytest.fixture
def node(destination):
    return register_node(destination.ae_title, destination.port)


def archived_dataset(instance):
    with archive_storage().open(instance.storage_key) as handle:
        return dcmread(handle)


def study_of_every_kind(folder):
    """A study holding two generated CT series and one instance of each of pydicom's bundled files, compressed
    ones included. Returns its Study Instance UID."""
    study_uid = generate_uid()
    for series_number in (1, 2):
        series_uid = generate_uid()
        for number in (1, 2):
            ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, series_number=series_number,
                                        instance_number=number))
    for name in COMPRESSED_TESTDATA + UNCOMPRESSED_TESTDATA:
        result = ingest_file(copy_of_testdata(name, folder, study_uid=study_uid, patient_id="PAT001"))
        assert result.outcome == "stored", (name, result.reason)
    return study_uid


def test_a_sent_study_arrives_complete_and_unchanged(node, destination, tmp_path):
    study_uid = study_of_every_kind(tmp_path)
    job = request_send(node, study_uid)

    run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    instances = list(Instance.objects.filter(series__study__study_instance_uid=study_uid))
    assert (job.status, job.completed, job.failed, job.attempts, job.error) == (
        TransferStatus.DONE, len(instances), 0, 1, "")
    received = destination.received()
    for instance in instances:
        assert differing_elements(received[instance.sop_instance_uid], archived_dataset(instance)) == []


def test_compressed_instances_travel_in_the_transfer_syntax_they_are_stored_in(node, destination, tmp_path):
    study_uid = study_of_every_kind(tmp_path)
    job = request_send(node, study_uid)

    run_transfer.apply(args=[job.pk])

    received = destination.received()
    compressed = [instance for instance in Instance.objects.filter(series__study__study_instance_uid=study_uid)
                  if archived_dataset(instance).file_meta.TransferSyntaxUID.is_compressed]
    assert len(compressed) == len(COMPRESSED_TESTDATA) - 1  # all but the deflated one
    for instance in compressed:
        assert received[instance.sop_instance_uid].file_meta.TransferSyntaxUID == instance.transfer_syntax_uid


def test_sending_a_series_sends_only_that_series(node, destination):
    study_uid, series_uid = generate_uid(), generate_uid()
    wanted = [ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number))
              for number in (1, 2, 3)]
    other = ingest_dataset(make_dataset(study_uid=study_uid, series_number=2))
    job = request_send(node, study_uid, series_instance_uid=series_uid)

    run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    received = destination.received()
    assert (job.status, job.completed) == (TransferStatus.DONE, 3)
    assert all(result.sop_instance_uid in received for result in wanted)
    assert other.sop_instance_uid not in received


def test_running_a_done_job_again_sends_nothing(node, destination):
    study_uid = generate_uid()
    ingest_dataset(make_dataset(study_uid=study_uid))
    job = request_send(node, study_uid)
    run_transfer.apply(args=[job.pk])
    associations = destination.associations()

    run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts, job.completed) == (TransferStatus.DONE, 1, 1)
    assert destination.associations() == associations


def test_a_study_the_archive_does_not_hold_fails_with_a_reason(node):
    job = request_send(node, generate_uid())

    run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert job.status == TransferStatus.FAILED
    assert "no instances" in job.error


def test_the_destination_sees_our_ae_title_as_calling_ae(node, destination, settings):
    study_uid = generate_uid()
    ingest_dataset(make_dataset(study_uid=study_uid))

    run_transfer.apply(args=[request_send(node, study_uid).pk])

    assert destination.calling_ae_titles()[-1] == settings.DICOM_AET


def test_a_finished_send_is_audited_as_instances_transferred(node):
    from radiology.models import AuditEvent

    study_uid = generate_uid()
    ingest_dataset(make_dataset(study_uid=study_uid))

    run_transfer.apply(args=[request_send(node, study_uid).pk])

    event = AuditEvent.objects.get(code="instances-transferred", object_id=study_uid)
    assert (event.action, event.detail["node"], event.detail["completed"]) == ("R", node.ae_title, 1)
    assert event.patient is not None

