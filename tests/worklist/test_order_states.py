"""The order state machine (worklist/orders.py): legal moves, refusals with reasons, history and audit."""
import pytest

from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from tests.worklist.factories import make_order, make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus, StepStatus

pytestmark = pytest.mark.django_db


def move(order, status, **options):
    return orders.change_status(order, status, actor="tester", channel=AuditChannel.WEB, **options)


def test_a_new_order_is_requested_with_its_first_history_entry():
    order = make_order()

    assert order.status == OrderStatus.REQUESTED
    assert list(order.status_changes.values_list("from_status", "to_status")) == [("", "requested")]


def test_an_order_with_a_start_time_is_scheduled_with_a_step():
    order = make_scheduled_order()

    assert order.status == OrderStatus.SCHEDULED
    step = order.steps.get()
    assert step.status == StepStatus.SCHEDULED
    assert step.modality == order.procedure.modality


def test_the_whole_scheduled_workflow_moves_in_order_and_keeps_each_time():
    order = make_scheduled_order()
    for status in (OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED, OrderStatus.PRELIMINARY,
                   OrderStatus.FINAL):
        order = move(order, status)

    assert [change.to_status for change in order.status_changes.all()] == [
        "requested", "scheduled", "arrived", "in_progress", "completed", "preliminary", "final"]
    times = [change.at for change in order.status_changes.all()]
    assert times == sorted(times)
    assert set(orders.turnaround(order)) == {"scheduled", "arrived", "in_progress", "completed", "preliminary",
                                             "final"}


def test_an_illegal_move_is_refused_with_the_moves_that_are_possible():
    order = make_scheduled_order()

    with pytest.raises(orders.IllegalTransition) as refusal:
        move(order, OrderStatus.FINAL)

    assert "is scheduled; it cannot become final report" in str(refusal.value)
    assert "arrived" in str(refusal.value)
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_a_final_order_cannot_be_cancelled():
    order = make_scheduled_order()
    for status in (OrderStatus.COMPLETED, OrderStatus.FINAL):
        order = move(order, status)

    with pytest.raises(orders.IllegalTransition, match="possible: none"):
        orders.cancel_order(order, reason="wrong patient", actor="tester", channel=AuditChannel.WEB)


def test_an_order_in_progress_is_discontinued_not_cancelled():
    order = move(make_scheduled_order(), OrderStatus.IN_PROGRESS)

    with pytest.raises(orders.IllegalTransition):
        orders.cancel_order(order, reason="patient left", actor="tester", channel=AuditChannel.WEB)
    assert move(order, OrderStatus.DISCONTINUED).status == OrderStatus.DISCONTINUED


def test_cancelling_keeps_the_reason_and_discontinues_the_steps():
    order = orders.cancel_order(make_scheduled_order(), reason="patient declined", actor="tester",
                                channel=AuditChannel.WEB)

    assert order.status == OrderStatus.CANCELLED
    assert order.status_changes.last().reason == "patient declined"
    assert order.steps.get().status == StepStatus.DISCONTINUED


def test_each_transition_is_an_order_record_audit_event():
    order = move(make_scheduled_order(), OrderStatus.ARRIVED)

    events = AuditEvent.objects.filter(code=AuditEventCode.ORDER_RECORD, object_id=order.accession_number)
    assert [event.detail.get("status") for event in events.order_by("pk")] == ["requested", "scheduled", "arrived"]
    assert events.filter(patient=order.patient).count() == 3


def test_completion_records_when_images_became_available():
    order = move(make_scheduled_order(), OrderStatus.COMPLETED)

    assert order.images_available_at == order.status_changed_at


def test_changing_what_was_ordered_is_refused_once_the_procedure_started():
    order = move(make_scheduled_order(), OrderStatus.IN_PROGRESS)

    with pytest.raises(orders.IllegalTransition, match="can no longer be changed"):
        orders.update_order(order, actor="tester", channel=AuditChannel.HL7, reason="other reason")
