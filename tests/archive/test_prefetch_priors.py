"""Prefetching a patient's prior studies: C-FIND each node by Patient ID (and issuer), pull what we do not hold."""
from contextlib import contextmanager

import pytest
from django.test import override_settings
from pydicom import dcmread
from pydicom.uid import generate_uid

from archive.choices import TransferKind, TransferStatus
from archive.dimse.listener import DicomListener
from archive.models import Study, TransferJob
from archive.prefetch import prefetch_priors
from archive.tasks import prefetch_priors_for_patient, run_transfer
from tests.archive.factories import ingest_dataset, make_dataset, write_part10
from tests.archive.remote_nodes import RemotePACS, register_node
from tests.factories import PatientFactory
from tests.platform_process import free_port


@pytest.fixture(autouse=True)
def tasks_run_here(monkeypatch):
    """Jobs are run by the test with run_transfer.apply; the ones request_pull queues after commit must not
    reach a broker (under REDIS_URL another test's platform process could consume them)."""
    queued = []
    monkeypatch.setattr(run_transfer, "delay", queued.append)
    return queued


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


@contextmanager
def remote_pacs(files, destinations=None, ae_title="REMOTEPACS"):
    remote = RemotePACS(files, destinations or {}, ae_title=ae_title).start()
    try:
        yield remote
    finally:
        remote.stop()


def study_files(folder, patient_id, count=1, issuer=None, study_uid=None):
    study_uid = study_uid or generate_uid()
    extra = {"IssuerOfPatientID": issuer} if issuer else {}
    series_uid = generate_uid()
    return study_uid, [
        write_part10(make_dataset(patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
                                  instance_number=number, **extra), folder / f"{study_uid}-{number}.dcm")
        for number in range(1, count + 1)]


@pytest.mark.django_db
def test_studies_we_do_not_hold_are_pulled_and_ours_and_other_patients_are_not(tmp_path):
    patient = PatientFactory(mrn="PF001")
    held, held_files = study_files(tmp_path, "PF001", count=2)
    missing, missing_files = study_files(tmp_path, "PF001")
    _, other_files = study_files(tmp_path, "SOMEONE-ELSE")
    for path in held_files:
        ingest_dataset(dcmread(path))
    with remote_pacs(held_files + missing_files + other_files) as remote:
        node = register_node(remote.ae_title, remote.port)

        jobs = prefetch_priors(patient, [node])

    assert [(job.kind, job.study_instance_uid, job.node, job.reason, job.status) for job in jobs] == [
        (TransferKind.PULL, missing, node, "prefetch", TransferStatus.QUEUED)]


@pytest.mark.django_db
def test_a_study_we_hold_only_part_of_is_pulled(tmp_path):
    patient = PatientFactory(mrn="PF002")
    study_uid, files = study_files(tmp_path, "PF002", count=3)
    ingest_dataset(dcmread(files[0]))
    with remote_pacs(files) as remote:
        jobs = prefetch_priors(patient, [register_node(remote.ae_title, remote.port)])

    assert [job.study_instance_uid for job in jobs] == [study_uid]


@pytest.mark.django_db
def test_asking_again_while_the_pulls_are_queued_adds_no_jobs(tmp_path):
    patient = PatientFactory(mrn="PF003")
    _, files = study_files(tmp_path, "PF003")
    with remote_pacs(files) as remote:
        node = register_node(remote.ae_title, remote.port)
        first = prefetch_priors(patient, [node])

        second = prefetch_priors(patient, [node])

    assert (len(first), second, TransferJob.objects.count()) == (1, [], 1)


@pytest.mark.django_db
def test_a_study_on_two_nodes_is_pulled_once_and_a_node_that_is_down_is_skipped(tmp_path):
    patient = PatientFactory(mrn="PF004")
    study_uid, files = study_files(tmp_path, "PF004")
    down = register_node("DOWN", free_port())
    with remote_pacs(files, ae_title="FIRST") as first, remote_pacs(files, ae_title="SECOND") as second:
        nodes = [down, register_node(first.ae_title, first.port), register_node(second.ae_title, second.port)]

        jobs = prefetch_priors(patient, nodes)

    assert [(job.study_instance_uid, job.node.ae_title) for job in jobs] == [(study_uid, "FIRST")]


@pytest.mark.django_db
def test_the_issuer_of_the_patient_id_is_a_matching_key(tmp_path):
    patient = PatientFactory(mrn="PF005", issuer="HOSPITAL_A")
    ours, our_files = study_files(tmp_path, "PF005", issuer="HOSPITAL_A")
    _, their_files = study_files(tmp_path, "PF005", issuer="HOSPITAL_B")
    with remote_pacs(our_files + their_files) as remote:
        jobs = prefetch_priors(patient, [register_node(remote.ae_title, remote.port)])

    assert [job.study_instance_uid for job in jobs] == [ours]


@pytest.mark.django_db
def test_a_node_that_ignores_the_issuer_is_not_trusted_with_it(tmp_path):
    patient = PatientFactory(mrn="PF005", issuer="HOSPITAL_A")
    ours, our_files = study_files(tmp_path, "PF005", issuer="HOSPITAL_A")
    _, their_files = study_files(tmp_path, "PF005", issuer="HOSPITAL_B")
    with remote_pacs(our_files + their_files) as remote:
        remote.matching_keys = ("PatientID",)
        jobs = prefetch_priors(patient, [register_node(remote.ae_title, remote.port)])

    assert [job.study_instance_uid for job in jobs] == [ours]


@pytest.mark.django_db
def test_the_background_task_prefetches_for_the_patient_and_nodes_named_by_id(tmp_path):
    patient = PatientFactory(mrn="PF007")
    study_uid, files = study_files(tmp_path, "PF007")
    with remote_pacs(files) as remote:
        node = register_node(remote.ae_title, remote.port)

        prefetch_priors_for_patient.apply(args=[patient.pk, [node.pk]])

    assert list(TransferJob.objects.values_list("study_instance_uid", "reason")) == [(study_uid, "prefetch")]


@pytest.mark.django_db(transaction=True)
def test_prefetched_studies_arrive_when_their_jobs_run(tmp_path, settings):
    patient = PatientFactory(mrn="PF006")
    first, first_files = study_files(tmp_path, "PF006", count=2)
    second, second_files = study_files(tmp_path, "PF006")
    with override_settings(HEARTBEAT_SECONDS=3600):
        listener = DicomListener(host="127.0.0.1", port=0)
        listener.start()
    try:
        with remote_pacs(first_files + second_files, {settings.DICOM_AET: ("127.0.0.1", listener.port)}) as remote:
            jobs = prefetch_priors(patient, [register_node(remote.ae_title, remote.port)])
            for job in jobs:
                run_transfer.apply(args=[job.pk])
    finally:
        listener.stop()

    assert {study.study_instance_uid: study.number_of_instances for study in Study.objects.all()} == {
        first: 2, second: 1}
    assert set(TransferJob.objects.values_list("status", flat=True)) == {TransferStatus.DONE}
