"""Modality Performed Procedure Step (PS3.4 F.7) from a pynetdicom SCU: N-CREATE IN PROGRESS starts the
order's procedure, N-SET COMPLETED or DISCONTINUED moves it on, and the step is kept as the modality sent it."""
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.listener_peers import association_to
from tests.worklist.conftest import performed_step_attributes
from tests.worklist.factories import make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus, PerformedStepStatus
from worklist.models import PerformedProcedureStep

pytestmark = pytest.mark.django_db(transaction=True)

SUCCESS = 0x0000


@pytest.fixture
def order(ct_station, today_at):
    """An order booked on CT_ROOM1 this morning, picked by the technologist from the worklist."""
    return make_scheduled_order(ct_station, start=today_at(9))


def completion(status="COMPLETED", series_uid=None):
    """An N-SET modification list ending the step, with its performed series."""
    modifications = Dataset()
    modifications.PerformedProcedureStepStatus = status
    modifications.PerformedProcedureStepEndDate = "20261128"
    modifications.PerformedProcedureStepEndTime = "103000"
    series = Dataset()
    series.SeriesInstanceUID = series_uid or generate_uid()
    series.SeriesDescription = "AXIAL 1mm"
    series.PerformingPhysicianName = ""
    series.OperatorsName = "Tech^Wilhelm"
    series.ReferencedImageSequence = []
    modifications.PerformedSeriesSequence = [series]
    return modifications


def started(mpps, order):
    uid = generate_uid()
    status, _ = mpps.create(uid, performed_step_attributes(order))
    assert status.Status == SUCCESS
    return uid


def test_n_create_in_progress_moves_the_order_to_in_progress(mpps, order):
    uid = started(mpps, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
    change = order.status_changes.last()
    assert (change.actor, change.channel) == ("CT_ROOM1", AuditChannel.DICOM)
    step = PerformedProcedureStep.objects.get(sop_instance_uid=uid)
    assert (step.order, step.status, step.performing_ae_title) == (order, PerformedStepStatus.IN_PROGRESS,
                                                                  "CT_ROOM1")


def test_the_performed_step_keeps_its_attributes_as_dicom_json(mpps, order):
    uid = started(mpps, order)
    attributes = Dataset.from_json(PerformedProcedureStep.objects.get(sop_instance_uid=uid).attributes)
    assert attributes.PerformedProcedureStepID == "PPS1"
    assert attributes.ScheduledStepAttributesSequence[0].AccessionNumber == order.accession_number


def test_the_order_is_found_by_accession_number_alone(mpps, order):
    attributes = performed_step_attributes(order)
    item = attributes.ScheduledStepAttributesSequence[0]
    item.ScheduledProcedureStepID = ""
    item.StudyInstanceUID = generate_uid()
    status, _ = mpps.create(generate_uid(), attributes)
    assert status.Status == SUCCESS
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS


def test_the_order_is_found_by_its_study_instance_uid(mpps, order):
    attributes = performed_step_attributes(order)
    item = attributes.ScheduledStepAttributesSequence[0]
    item.ScheduledProcedureStepID = ""
    item.AccessionNumber = ""
    status, _ = mpps.create(generate_uid(), attributes)
    assert status.Status == SUCCESS
    assert PerformedProcedureStep.objects.get().order == order


def test_an_unscheduled_step_is_kept_without_an_order(mpps, ct_station):
    uid = generate_uid()
    status, _ = mpps.create(uid, performed_step_attributes(None))
    assert status.Status == SUCCESS
    step = PerformedProcedureStep.objects.get(sop_instance_uid=uid)
    assert step.order is None
    status, _ = mpps.set(uid, completion())
    assert status.Status == SUCCESS
    step.refresh_from_db()
    assert step.status == PerformedStepStatus.COMPLETED


def test_n_create_without_a_sop_instance_uid_gets_one_assigned(mpps, order, listener):
    with association_to(listener, [ModalityPerformedProcedureStep], calling_ae="CT_ROOM1") as association:
        status, _ = association.send_n_create(performed_step_attributes(order), ModalityPerformedProcedureStep)
    assert status.Status == SUCCESS
    assert UID(PerformedProcedureStep.objects.get(order=order).sop_instance_uid).is_valid


def test_n_set_completed_moves_the_order_to_completed(mpps, order):
    uid = started(mpps, order)
    series_uid = generate_uid()
    status, _ = mpps.set(uid, completion(series_uid=series_uid))
    assert status.Status == SUCCESS
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    step = PerformedProcedureStep.objects.get(sop_instance_uid=uid)
    assert step.status == PerformedStepStatus.COMPLETED
    attributes = Dataset.from_json(step.attributes)
    assert attributes.PerformedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert attributes.PerformedProcedureStepEndTime == "103000"
    assert attributes.PerformedProcedureStepID == "PPS1"  # kept from the N-CREATE


def test_n_set_discontinued_moves_the_order_to_discontinued(mpps, order):
    uid = started(mpps, order)
    modifications = completion("DISCONTINUED")
    modifications.PerformedProcedureStepDiscontinuationReasonCodeSequence = []
    status, _ = mpps.set(uid, modifications)
    assert status.Status == SUCCESS
    order.refresh_from_db()
    assert order.status == OrderStatus.DISCONTINUED


def test_n_set_in_progress_updates_attributes_and_leaves_the_order(mpps, order):
    uid = started(mpps, order)
    modifications = Dataset()
    modifications.PerformedProcedureStepDescription = "CT chest, contrast given"
    status, _ = mpps.set(uid, modifications)
    assert status.Status == SUCCESS
    step = PerformedProcedureStep.objects.get(sop_instance_uid=uid)
    assert step.status == PerformedStepStatus.IN_PROGRESS
    assert Dataset.from_json(step.attributes).PerformedProcedureStepDescription == "CT chest, contrast given"
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS


def test_completed_after_the_images_already_completed_the_order_is_accepted(mpps, order):
    uid = started(mpps, order)
    orders.change_status(order, OrderStatus.COMPLETED, actor="archive", channel=AuditChannel.DICOM)
    status, _ = mpps.set(uid, completion())
    assert status.Status == SUCCESS
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_each_step_is_a_procedure_record_audit_event(mpps, order):
    uid = started(mpps, order)
    mpps.set(uid, completion())
    created, updated = AuditEvent.objects.filter(code=AuditEventCode.PROCEDURE_RECORD).order_by("pk")
    assert (created.action, created.actor, created.channel, created.outcome) == (
        "C", "CT_ROOM1", AuditChannel.DICOM, AuditOutcome.SUCCESS)
    assert (created.object_id, created.patient) == (uid, order.patient)
    assert created.detail["accession_number"] == order.accession_number
    assert (updated.action, updated.detail["status"]) == ("U", "COMPLETED")
