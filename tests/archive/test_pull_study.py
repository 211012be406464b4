"""Pulling a study from a remote node: C-MOVE to our own AE title, the instances arriving through our real DICOM
listener. The remote PACS is pynetdicom answering C-FIND and C-MOVE (tests/archive/remote_nodes.py)."""
from contextlib import contextmanager

import pytest
from django.test import override_settings
from pydicom.uid import generate_uid

from archive import scu
from archive.choices import TransferStatus
from archive.dimse.listener import DicomListener
from archive.models import Instance, Study
from archive.tasks import run_transfer
from archive.transfers import request_pull
from tests.archive.factories import copy_of_testdata, make_dataset, write_part10
from tests.archive.remote_nodes import RemotePACS, register_node
from tests.platform_process import free_port

# Our listener's threads have their own database connections and see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def tasks_run_here(monkeypatch):
    """Jobs are run by the test with run_transfer.apply; the ones request_pull queues after commit must not
    reach a broker (under REDIS_URL another test's platform process could consume them)."""
    queued = []
    monkeypatch.setattr(run_transfer, "delay", queued.append)
    return queued


@pytest.fixture(autouse=True)
def quick_retries(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.TRANSFER_MAX_RETRIES = 2
    settings.TRANSFER_RETRY_SECONDS = 0


@contextmanager
def our_listener():
    """The archive's own DICOM listener, under our AE title, on a free port."""
    with override_settings(HEARTBEAT_SECONDS=3600):
        listener = DicomListener(host="127.0.0.1", port=0)
        listener.start()
        try:
            yield listener
        finally:
            listener.stop()


@contextmanager
def remote_pacs(files, destinations):
    remote = RemotePACS(files, destinations).start()
    try:
        yield remote
    finally:
        remote.stop()


def remote_files(folder):
    """Files of the remote archive: study A (two CT instances and a JPEG 2000 one) and study B (one CT), both of
    patient RP001. Returns (study A UID, study B UID, files)."""
    study_a, study_b, series = generate_uid(), generate_uid(), generate_uid()
    files = [write_part10(make_dataset(patient_id="RP001", study_uid=study_a, series_uid=series,
                                       instance_number=number), folder / f"a{number}.dcm") for number in (1, 2)]
    files.append(copy_of_testdata("JPEG2000.dcm", folder, study_uid=study_a, patient_id="RP001"))
    files.append(write_part10(make_dataset(patient_id="RP001", study_uid=study_b), folder / "b1.dcm"))
    return study_a, study_b, files


def test_a_pulled_study_arrives_through_our_listener_and_is_indexed(tmp_path, settings):
    study_a, study_b, files = remote_files(tmp_path)
    with our_listener() as listener, \
            remote_pacs(files, {settings.DICOM_AET: ("127.0.0.1", listener.port)}) as remote:
        node = register_node(remote.ae_title, remote.port)
        job = request_pull(node, study_a)

        run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed, job.attempts, job.error) == (TransferStatus.DONE, 3, 0, 1, "")
    study = Study.objects.get(study_instance_uid=study_a)
    assert study.number_of_instances == 3
    assert set(Instance.objects.filter(series__study=study).values_list("received_from", flat=True)) == {
        remote.ae_title}
    assert not Study.objects.filter(study_instance_uid=study_b).exists()
    assert remote.calling_ae_titles == [settings.DICOM_AET]


def test_running_a_done_pull_again_asks_the_node_nothing(tmp_path, settings):
    study_a, _, files = remote_files(tmp_path)
    with our_listener() as listener, \
            remote_pacs(files, {settings.DICOM_AET: ("127.0.0.1", listener.port)}) as remote:
        job = request_pull(register_node(remote.ae_title, remote.port), study_a)
        run_transfer.apply(args=[job.pk])

        run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts) == (TransferStatus.DONE, 1)
    assert len(remote.calling_ae_titles) == 1


def test_pulling_a_study_the_node_does_not_hold_fails(tmp_path, settings):
    _, _, files = remote_files(tmp_path)
    with our_listener() as listener, \
            remote_pacs(files, {settings.DICOM_AET: ("127.0.0.1", listener.port)}) as remote:
        job = request_pull(register_node(remote.ae_title, remote.port), generate_uid())

        run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.completed, job.attempts) == (TransferStatus.FAILED, 0, 1)
    assert "REMOTEPACS sent no instances of this study" in job.error


def test_a_node_that_does_not_know_our_ae_title_fails_without_retrying(tmp_path):
    study_a, _, files = remote_files(tmp_path)
    with remote_pacs(files, destinations={}) as remote:
        job = request_pull(register_node(remote.ae_title, remote.port), study_a)

        run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts) == (TransferStatus.FAILED, 1)
    assert "C-MOVE refused by REMOTEPACS: 0xA801" in job.error


def test_a_node_that_is_down_is_retried_then_the_pull_fails():
    node = register_node("GONE", free_port())
    job = request_pull(node, generate_uid())

    run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts) == (TransferStatus.FAILED, 3)
    assert "could not connect to GONE" in job.error


def test_find_studies_answers_the_remote_studies_matching_the_keys(tmp_path, settings):
    study_a, study_b, files = remote_files(tmp_path)
    files.append(write_part10(make_dataset(patient_id="SOMEONE-ELSE"), tmp_path / "other.dcm"))
    with remote_pacs(files, {}) as remote:
        node = register_node(remote.ae_title, remote.port)

        matches = scu.find_studies(node, PatientID="RP001")
        none = scu.find_studies(node, PatientID="NOBODY")

    assert {str(match.StudyInstanceUID) for match in matches} == {study_a, study_b}
    counts = {str(match.StudyInstanceUID): match.NumberOfStudyRelatedInstances for match in matches}
    assert counts == {study_a: 3, study_b: 1}
    assert none == []
    assert remote.calling_ae_titles == [settings.DICOM_AET, settings.DICOM_AET]


def test_instances_our_archive_refuses_end_the_pull_partial_with_the_counts(tmp_path, settings):
    from tests.archive.factories import ingest_dataset
    from pydicom import dcmread

    settings.ARCHIVE_DUPLICATE_POLICY = "reject"
    study_a, _, files = remote_files(tmp_path)
    # We hold a different version of one of the remote's instances: our listener refuses theirs (0x0111).
    conflicting = dcmread(files[0])
    conflicting.StudyDescription = "OUR VERSION"
    ingest_dataset(conflicting)
    with our_listener() as listener, \
            remote_pacs(files, {settings.DICOM_AET: ("127.0.0.1", listener.port)}) as remote:
        job = request_pull(register_node(remote.ae_title, remote.port), study_a)

        run_transfer.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.completed, job.failed) == (TransferStatus.PARTIAL, 2, 1)
    assert job.error.startswith("1 of 3 instances were not moved (0xB000")
    assert f"{conflicting.SOPInstanceUID}: failed sub-operation" in job.error
