"""Reconciliation: an arriving study is linked to its order by accession number (or by the Study Instance UID
the worklist gave out), and the order moves to completed; a study without an order becomes an exception."""
import tempfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from archive.choices import TransferKind
from archive.ingest import ingest_file
from archive.models import Study, TransferJob
from tests.archive.factories import make_dataset, write_part10
from radiology.choices import AuditChannel
from tests.archive.remote_nodes import register_node
from tests.factories import PatientFactory
from tests.worklist.factories import make_order, make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus
from worklist.models import UnmatchedStudy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


@pytest.fixture
def arrive(django_capture_on_commit_callbacks):
    """Ingest as the listener does: instance_stored is sent once the index rows commit."""
    def arrive(dataset):
        with django_capture_on_commit_callbacks(execute=True), tempfile.TemporaryDirectory() as folder:
            ingest_file(write_part10(dataset, Path(folder) / "in.dcm"), calling_ae="CT01")
        return Study.objects.get(study_instance_uid=dataset.StudyInstanceUID)
    return arrive


def images_for(order, **attributes):
    return make_dataset(patient_id=order.patient.mrn, patient_name=order.patient.dicom_name, **attributes)


def test_a_study_with_the_orders_accession_number_completes_the_order(arrive):
    order = make_scheduled_order()

    study = arrive(images_for(order, accession_number=order.accession_number))

    order.refresh_from_db()
    assert order.study == study
    assert order.status == OrderStatus.COMPLETED
    assert order.images_available_at is not None


def test_a_study_with_the_assigned_study_instance_uid_matches_without_accession_number(arrive):
    order = make_scheduled_order()

    study = arrive(images_for(order, accession_number="", study_uid=order.study_instance_uid))

    order.refresh_from_db()
    assert (order.study, order.status) == (study, OrderStatus.COMPLETED)


def test_an_order_already_in_progress_by_mpps_completes_when_images_arrive(arrive):
    order = orders.change_status(make_scheduled_order(), OrderStatus.IN_PROGRESS, actor="CT01",
                                 channel=AuditChannel.DICOM)

    arrive(images_for(order, accession_number=order.accession_number))

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_later_instances_of_a_linked_study_change_nothing(arrive):
    order = make_scheduled_order()
    study_uid = generate_uid()
    arrive(images_for(order, accession_number=order.accession_number, study_uid=study_uid))

    arrive(images_for(order, accession_number=order.accession_number, study_uid=study_uid, instance_number=2))

    assert order.status_changes.filter(to_status=OrderStatus.COMPLETED).count() == 1


def test_a_study_without_an_order_goes_to_the_exceptions_list(arrive):
    study = arrive(make_dataset(accession_number="UNKNOWN9"))

    assert UnmatchedStudy.objects.get(study=study).reason == "no order with accession number UNKNOWN9"


def test_a_study_without_accession_number_and_unknown_uid_is_an_exception(arrive):
    study = arrive(make_dataset(accession_number=""))

    assert UnmatchedStudy.objects.get(study=study).reason == "no accession number"


def test_a_study_whose_accession_belongs_to_another_patient_is_an_exception_not_a_link(arrive):
    order = make_scheduled_order()
    other = PatientFactory()

    study = arrive(make_dataset(patient_id=other.mrn, accession_number=order.accession_number))

    order.refresh_from_db()
    assert order.study is None and order.status == OrderStatus.SCHEDULED
    assert f"belongs to patient {order.patient.mrn}" in UnmatchedStudy.objects.get(study=study).reason


def test_a_cancelled_order_is_not_matched(arrive):
    order = orders.cancel_order(make_order(), reason="duplicate", actor="t", channel=AuditChannel.WEB)

    study = arrive(images_for(order, accession_number=order.accession_number))

    assert UnmatchedStudy.objects.filter(study=study).exists()


def test_a_study_the_archive_pulled_itself_is_not_an_exception(arrive):
    dataset = make_dataset(accession_number="PRIOR1")
    TransferJob.objects.create(kind=TransferKind.PULL, node=register_node("PRIORS", 104),
                               study_instance_uid=dataset.StudyInstanceUID)

    study = arrive(dataset)

    assert not UnmatchedStudy.objects.filter(study=study).exists()
