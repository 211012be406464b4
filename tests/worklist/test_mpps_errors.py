"""MPPS requests the SCP refuses, each with its PS3.4 F.7 / PS3.7 C status and an Error Comment, audited, and
with nothing changed."""
import struct
from unittest import mock

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.dsutils import encode

from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.listener_peers import register_node
from tests.worklist.conftest import performed_step_attributes
from tests.worklist.factories import make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus, PerformedStepStatus
from worklist.models import PerformedProcedureStep

pytestmark = pytest.mark.django_db(transaction=True)

SUCCESS = 0x0000
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_OBJECT_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
NOT_AUTHORIZED = 0x0124


@pytest.fixture
def order(ct_station, today_at):
    return make_scheduled_order(ct_station, start=today_at(9))


def status_of(modifications):
    dataset = Dataset()
    dataset.PerformedProcedureStepStatus = modifications
    return dataset


def answer(response):
    status, _ = response
    return status.Status, status.get("ErrorComment", "")


def test_a_second_n_create_of_the_same_step_is_a_duplicate(mpps, order):
    uid = generate_uid()
    assert answer(mpps.create(uid, performed_step_attributes(order)))[0] == SUCCESS
    assert answer(mpps.create(uid, performed_step_attributes(order))) == (
        DUPLICATE_SOP_INSTANCE, f"performed procedure step {uid} exists already"[:64])
    assert PerformedProcedureStep.objects.count() == 1


def test_n_set_of_an_unknown_step_is_no_such_object_instance(mpps, order):
    uid = generate_uid()
    assert answer(mpps.set(uid, status_of("COMPLETED"))) == (
        NO_SUCH_OBJECT_INSTANCE, f"no performed procedure step {uid}"[:64])


def test_n_create_without_a_status_is_a_missing_attribute(mpps, order):
    assert answer(mpps.create(generate_uid(), performed_step_attributes(order, status=None))) == (
        MISSING_ATTRIBUTE, "PerformedProcedureStepStatus is missing")
    order.refresh_from_db()
    assert (order.status, PerformedProcedureStep.objects.count()) == (OrderStatus.SCHEDULED, 0)


def test_n_create_completed_is_an_invalid_attribute_value(mpps, order):
    assert answer(mpps.create(generate_uid(), performed_step_attributes(order, status="COMPLETED"))) == (
        INVALID_ATTRIBUTE_VALUE, "N-CREATE needs status IN PROGRESS, not 'COMPLETED'")
    assert PerformedProcedureStep.objects.count() == 0


def test_n_set_with_an_unknown_status_is_an_invalid_attribute_value(mpps, order):
    uid = generate_uid()
    mpps.create(uid, performed_step_attributes(order))
    assert answer(mpps.set(uid, status_of("FINISHED"))) == (
        INVALID_ATTRIBUTE_VALUE, "unknown PerformedProcedureStepStatus 'FINISHED'")
    assert PerformedProcedureStep.objects.get().status == PerformedStepStatus.IN_PROGRESS


@pytest.mark.parametrize("final_status", ["COMPLETED", "DISCONTINUED"])
def test_a_completed_or_discontinued_step_can_no_longer_be_updated(mpps, order, final_status):
    uid = generate_uid()
    mpps.create(uid, performed_step_attributes(order))
    assert answer(mpps.set(uid, status_of(final_status)))[0] == SUCCESS
    assert answer(mpps.set(uid, status_of("IN PROGRESS"))) == (
        PROCESSING_FAILURE, f"performed procedure step is {final_status} and final")
    assert PerformedProcedureStep.objects.get().status == final_status


def test_a_move_the_order_refuses_is_a_processing_failure_that_changes_nothing(mpps, order):
    uid = generate_uid()
    mpps.create(uid, performed_step_attributes(order))
    orders.change_status(order, OrderStatus.COMPLETED, actor="archive", channel=AuditChannel.DICOM)
    status, comment = answer(mpps.set(uid, status_of("DISCONTINUED")))
    assert status == PROCESSING_FAILURE
    assert comment.startswith(f"order {order.accession_number} is completed (images available); it cannot")
    assert PerformedProcedureStep.objects.get().status == PerformedStepStatus.IN_PROGRESS
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_n_create_for_a_cancelled_order_is_a_processing_failure(mpps, order):
    attributes = performed_step_attributes(order)
    orders.cancel_order(order, reason="patient left", actor="wilhelm", channel=AuditChannel.WEB)
    status, comment = answer(mpps.create(generate_uid(), attributes))
    assert status == PROCESSING_FAILURE
    assert comment.startswith(f"order {order.accession_number} is cancelled")
    assert PerformedProcedureStep.objects.count() == 0


def test_a_node_not_allowed_to_store_may_not_report_steps(mpps, order):
    register_node("QUERY_ONLY", allow_store=False, allow_query=True)
    assert answer(mpps.as_ae("QUERY_ONLY").create(generate_uid(), performed_step_attributes(order))) == (
        NOT_AUTHORIZED, "QUERY_ONLY may not report procedure steps")
    event = AuditEvent.objects.get(code=AuditEventCode.PROCEDURE_RECORD)
    assert (event.actor, event.outcome) == ("QUERY_ONLY", AuditOutcome.SERIOUS_FAILURE)
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_a_refused_request_is_audited_with_its_reason(mpps, order):
    mpps.create(generate_uid(), performed_step_attributes(order, status="DISCONTINUED"))
    event = AuditEvent.objects.get(code=AuditEventCode.PROCEDURE_RECORD)
    assert (event.action, event.outcome) == ("C", AuditOutcome.MINOR_FAILURE)
    assert event.detail["error"] == "N-CREATE needs status IN PROGRESS, not 'DISCONTINUED'"


def test_an_attribute_list_that_cannot_be_decoded_is_an_invalid_attribute_value(mpps, order):
    # Rows (US) with three bytes: no whole number of values (the attribute list is sent as raw bytes).
    attributes = performed_step_attributes(order)
    raw = encode(attributes, True, True) + struct.pack("<HHI", 0x0028, 0x0010, 3) + b"ABC"
    with mock.patch("pynetdicom.association.encode", return_value=raw):
        status, comment = answer(mpps.create(generate_uid(), attributes))
    assert (status, comment[:30]) == (INVALID_ATTRIBUTE_VALUE, "attribute list cannot be decod")
    order.refresh_from_db()
    assert (order.status, PerformedProcedureStep.objects.count()) == (OrderStatus.SCHEDULED, 0)
