"""Scheduling an order pulls the patient's prior studies from the nodes marked for prefetch
(archive.DicomNode.prefetch_priors), the priors of the ordered modality first."""
import datetime

import pytest
from django.test import override_settings
from django.utils import timezone
from pydicom.uid import generate_uid

from archive.choices import TransferKind, TransferStatus
from archive.dimse.listener import DicomListener
from archive.models import Study, TransferJob
from archive.tasks import prefetch_priors_for_patient, run_transfer
from radiology.choices import AuditChannel
from tests.archive.factories import make_dataset, write_part10
from tests.archive.remote_nodes import RemotePACS, register_node
from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory, StationFactory, make_order
from worklist import orders

START = (timezone.now() + datetime.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def tasks_run_here(monkeypatch):
    """The prefetch task runs in the test process as soon as it is queued; the pulls it queues are collected
    (the test runs them with run_transfer.apply), so that nothing reaches a broker."""
    monkeypatch.setattr(prefetch_priors_for_patient, "delay",
                        lambda *args, **kwargs: prefetch_priors_for_patient.apply(args=args, kwargs=kwargs))
    queued = []
    monkeypatch.setattr(run_transfer, "delay", queued.append)
    return queued


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


@pytest.fixture
def remote_pacs(tmp_path):
    """Starts RemotePACS nodes on demand and stops them after the test."""
    started = []

    def start(files, destinations=None, ae_title="PRIORS"):
        remote = RemotePACS(files, destinations or {}, ae_title=ae_title).start()
        started.append(remote)
        return remote

    yield start
    for remote in started:
        remote.stop()


def prior(folder, mrn, modality, description, count=1):
    """A prior study of the patient, as files a remote node holds; returns (Study Instance UID, files)."""
    study_uid, series_uid = generate_uid(), generate_uid()
    return study_uid, [
        write_part10(make_dataset(patient_id=mrn, study_uid=study_uid, series_uid=series_uid, modality=modality,
                                  study_description=description, instance_number=number, ModalitiesInStudy=modality),
                     folder / f"{study_uid}-{number}.dcm")
        for number in range(1, count + 1)]


def prefetch_node(remote):
    node = register_node(remote.ae_title, remote.port)
    node.prefetch_priors = True
    node.save(update_fields=["prefetch_priors"])
    return node


def schedule(order):
    return orders.schedule_order(order, start=START, station=StationFactory(modality=order.procedure.modality),
                                 actor="wilhelm", channel=AuditChannel.WEB)


@pytest.mark.django_db
def test_scheduling_queues_pulls_of_the_priors_same_modality_first(tmp_path, remote_pacs,
                                                                     django_capture_on_commit_callbacks):
    patient = PatientFactory(mrn="PRI001")
    mr_prior, mr_files = prior(tmp_path, "PRI001", "MR", "MR KNEE")
    ct_prior, ct_files = prior(tmp_path, "PRI001", "CT", "CT CHEST")
    remote = remote_pacs(mr_files + ct_files)
    node = prefetch_node(remote)
    order = make_order(patient=patient, procedure=ProcedureTypeFactory(modality="CT", body_part="CHEST"))

    with django_capture_on_commit_callbacks(execute=True):
        schedule(order)

    jobs = list(TransferJob.objects.order_by("pk"))
    assert [(job.kind, job.node, job.study_instance_uid, job.reason, job.status) for job in jobs] == [
        (TransferKind.PULL, node, ct_prior, "prefetch", TransferStatus.QUEUED),
        (TransferKind.PULL, node, mr_prior, "prefetch", TransferStatus.QUEUED)]


@pytest.mark.django_db
def test_nodes_not_marked_for_prefetch_are_not_asked(tmp_path, remote_pacs, django_capture_on_commit_callbacks):
    patient = PatientFactory(mrn="PRI002")
    _, files = prior(tmp_path, "PRI002", "CT", "CT CHEST")
    remote = remote_pacs(files, ae_title="ELSEWHERE")
    register_node(remote.ae_title, remote.port)  # a known node, not marked for prefetch
    order = make_order(patient=patient, procedure=ProcedureTypeFactory(modality="CT"))

    with django_capture_on_commit_callbacks(execute=True):
        schedule(order)

    assert (remote.calling_ae_titles, TransferJob.objects.count()) == ([], 0)


@pytest.mark.django_db
def test_a_refused_booking_prefetches_nothing(tmp_path, remote_pacs, django_capture_on_commit_callbacks):
    patient = PatientFactory(mrn="PRI003")
    _, files = prior(tmp_path, "PRI003", "CT", "CT CHEST")
    prefetch_node(remote_pacs(files))
    station = StationFactory(modality="CT")
    procedure = ProcedureTypeFactory(modality="CT")
    make_order(procedure=procedure, start=START, station=station)
    order = make_order(patient=patient, procedure=procedure)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(orders.BookingConflict):
        orders.schedule_order(order, start=START, station=station, actor="wilhelm", channel=AuditChannel.WEB)

    assert not TransferJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_priors_arrive_in_the_archive_when_their_pulls_run(tmp_path, remote_pacs, settings, tasks_run_here):
    patient = PatientFactory(mrn="PRI004")
    ct_prior, ct_files = prior(tmp_path, "PRI004", "CT", "CT CHEST", count=2)
    mr_prior, mr_files = prior(tmp_path, "PRI004", "MR", "MR KNEE")
    with override_settings(HEARTBEAT_SECONDS=3600):
        listener = DicomListener(host="127.0.0.1", port=0)
        listener.start()
    try:
        remote = remote_pacs(ct_files + mr_files, {settings.DICOM_AET: ("127.0.0.1", listener.port)})
        prefetch_node(remote)
        order = make_order(patient=patient, procedure=ProcedureTypeFactory(modality="CT", body_part="CHEST"))

        schedule(order)  # commits: the prefetch runs after the commit, as it would in production
        for job_id in list(tasks_run_here):
            run_transfer.apply(args=[job_id])
    finally:
        listener.stop()

    assert {study.study_instance_uid: (study.number_of_instances, study.patient_id)
            for study in Study.objects.all()} == {ct_prior: (2, patient.pk), mr_prior: (1, patient.pk)}
    assert set(TransferJob.objects.values_list("status", flat=True)) == {TransferStatus.DONE}
