"""A send that cannot be done at once: destination down or refusing, some instances refused, re-runs."""
import pytest
from pydicom.uid import CTImageStorage, generate_uid

from archive.choices import TransferStatus
from archive.ingest import ingest_file
from archive.tasks import OUTSTANDING_HEADING, run_transfer
from archive.transfers import request_send
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset
from tests.archive.remote_nodes import RecordingStoreSCP, StoreSCP, register_node
from tests.platform_process import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick_retries(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.TRANSFER_MAX_RETRIES = 2
    settings.TRANSFER_RETRY_SECONDS = 0


def small_study(count=2):
    study_uid = generate_uid()
    for number in range(1, count + 1):
        ingest_dataset(make_dataset(study_uid=study_uid, instance_number=number))
    return study_uid


def mixed_study(folder):
    """Two uncompressed CT instances and one JPEG baseline instance. Returns (study UID, JPEG SOP UID)."""
    study_uid = small_study()
    jpeg = ingest_file(copy_of_testdata("SC_rgb_jpeg_dcmtk.dcm", folder, study_uid=study_uid, patient_id="PAT001"))
    return study_uid, jpeg.sop_instance_uid


def test_a_destination_that_is_down_is_retried_then_the_job_fails_with_the_error():
    node = register_node("NOBODY", free_port())
    job = request_send(node, small_study())

    run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts, job.completed) == (TransferStatus.FAILED, 3, 0)
    assert f"could not connect to NOBODY at 127.0.0.1:{node.port}" in job.error
    assert "gave up after 3 attempts" in job.error


def test_a_refused_association_is_retried_then_fails_with_the_reason(tmp_path):
    scp = StoreSCP(tmp_path / "received", "--refuse").start()
    try:
        node = register_node(scp.ae_title, scp.port)
        job = request_send(node, small_study())

        run_transfer.apply(args=[job.pk])
    finally:
        scp.stop()

    job.refresh_from_db()
    assert (job.status, job.attempts) == (TransferStatus.FAILED, 3)
    assert "STORESCP rejected the association" in job.error


def test_a_failed_job_run_again_once_the_destination_is_up_sends_everything(tmp_path, settings):
    settings.TRANSFER_MAX_RETRIES = 0
    port = free_port()
    node = register_node("LATER", port)
    job = request_send(node, small_study(3))
    run_transfer.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == TransferStatus.FAILED

    scp = StoreSCP(tmp_path / "received", ae_title="LATER", port=port).start()
    try:
        run_transfer.apply(args=[job.pk])
        received = scp.received()
    finally:
        scp.stop()

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed, job.attempts, job.error) == (TransferStatus.DONE, 3, 0, 2, "")
    assert len(received) == 3


def test_instances_the_destination_refuses_end_the_job_partial_with_counts(tmp_path):
    # Without +xa storescp accepts only uncompressed transfer syntaxes: the JPEG instance cannot be sent as stored.
    scp = StoreSCP(tmp_path / "received").start()
    try:
        node = register_node(scp.ae_title, scp.port)
        study_uid, jpeg_uid = mixed_study(tmp_path)
        job = request_send(node, study_uid)

        run_transfer.apply(args=[job.pk])
        received = scp.received()
    finally:
        scp.stop()

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed, job.attempts) == (TransferStatus.PARTIAL, 2, 1, 1)
    assert job.error.startswith("1 of 3 instances were not stored by STORESCP")
    assert f"{OUTSTANDING_HEADING}\n{jpeg_uid}: not accepted by STORESCP" in job.error
    assert list(job.undelivered) == [jpeg_uid]
    assert jpeg_uid not in received and len(received) == 2


def test_running_a_partial_job_again_sends_only_what_failed(tmp_path):
    port = free_port()
    first = StoreSCP(tmp_path / "first", port=port).start()
    try:
        node = register_node(first.ae_title, port)
        study_uid, jpeg_uid = mixed_study(tmp_path)
        job = request_send(node, study_uid)
        run_transfer.apply(args=[job.pk])
    finally:
        first.stop()

    second = StoreSCP(tmp_path / "second", "+xa", port=port).start()
    try:
        run_transfer.apply(args=[job.pk])
        received = second.received()
    finally:
        second.stop()

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed, job.attempts, job.error) == (TransferStatus.DONE, 3, 0, 2, "")
    assert list(received) == [jpeg_uid]


def test_an_archived_file_gone_missing_fails_that_instance_only(tmp_path):
    from archive.models import Instance
    from archive.storage import archive_storage

    scp = StoreSCP(tmp_path / "received").start()
    try:
        node = register_node(scp.ae_title, scp.port)
        study_uid = small_study(2)
        lost = Instance.objects.filter(series__study__study_instance_uid=study_uid).first()
        archive_storage().delete(lost.storage_key)
        job = request_send(node, study_uid)

        run_transfer.apply(args=[job.pk])
    finally:
        scp.stop()

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed) == (TransferStatus.PARTIAL, 1, 1)
    assert f"{lost.sop_instance_uid}: file missing from the archive storage" in job.error


def test_a_send_cut_off_midway_resumes_with_the_instances_not_yet_delivered(settings):
    settings.TRANSFER_MAX_RETRIES = 0
    recorder = RecordingStoreSCP([CTImageStorage]).start()
    try:
        recorder.abort_after = 2
        node = register_node(recorder.ae_title, recorder.port)
        job = request_send(node, small_study(4))
        run_transfer.apply(args=[job.pk])
        job.refresh_from_db()
        assert (job.status, job.completed) == (TransferStatus.FAILED, 2)
        assert "RECORDER ended the association after 2 instances" in job.error
        first_delivery = set(recorder.received)

        recorder.abort_after = None
        recorder.received.clear()
        run_transfer.apply(args=[job.pk])
    finally:
        recorder.stop()

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed, job.error) == (TransferStatus.DONE, 4, 0, "")
    assert len(recorder.received) == 2 and not first_delivery & set(recorder.received)
