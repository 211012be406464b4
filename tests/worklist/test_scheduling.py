"""Scheduling: a step booked on a station for the procedure's duration; no double booking."""
import datetime

import pytest
from django.utils import timezone

from radiology.choices import AuditChannel
from tests.worklist.factories import ProcedureTypeFactory, StationFactory, make_order
from worklist import orders
from worklist.choices import OrderStatus

pytestmark = pytest.mark.django_db

NINE = timezone.make_aware(datetime.datetime(2026, 12, 1, 9, 0))


def schedule(order, start, station):
    return orders.schedule_order(order, start=start, station=station, actor="tester", channel=AuditChannel.WEB)


@pytest.fixture
def scanner():
    return StationFactory(ae_title="CT_ROOM1", modality="CT")


@pytest.fixture
def ct_head():
    return ProcedureTypeFactory(code="CTHEAD", modality="CT", default_duration_minutes=20)


def test_a_step_lasts_the_procedures_default_duration(scanner, ct_head):
    order = schedule(make_order(procedure=ct_head), NINE, scanner)

    step = order.steps.get()
    assert (step.start, step.end, step.station_ae_title) == (NINE, NINE + datetime.timedelta(minutes=20), "CT_ROOM1")
    assert order.status == OrderStatus.SCHEDULED


def test_an_overlapping_booking_on_the_same_station_is_refused(scanner, ct_head):
    booked = schedule(make_order(procedure=ct_head), NINE, scanner)
    second = make_order(procedure=ct_head)

    with pytest.raises(orders.BookingConflict, match=f"booked .* for order {booked.accession_number}"):
        schedule(second, NINE + datetime.timedelta(minutes=10), scanner)
    second.refresh_from_db()
    assert second.status == OrderStatus.REQUESTED and not second.steps.exists()


def test_back_to_back_bookings_are_fine(scanner, ct_head):
    schedule(make_order(procedure=ct_head), NINE, scanner)

    order = schedule(make_order(procedure=ct_head), NINE + datetime.timedelta(minutes=20), scanner)

    assert order.status == OrderStatus.SCHEDULED


def test_a_cancelled_orders_slot_is_free_again(scanner, ct_head):
    booked = schedule(make_order(procedure=ct_head), NINE, scanner)
    orders.cancel_order(booked, reason="patient declined", actor="tester", channel=AuditChannel.WEB)

    assert schedule(make_order(procedure=ct_head), NINE, scanner).status == OrderStatus.SCHEDULED


def test_rescheduling_moves_the_step_instead_of_adding_one(scanner, ct_head):
    order = schedule(make_order(procedure=ct_head), NINE, scanner)

    order = schedule(order, NINE + datetime.timedelta(hours=2), scanner)

    assert order.steps.get().start == NINE + datetime.timedelta(hours=2)


def test_a_station_of_another_modality_is_refused(ct_head):
    mr = StationFactory(ae_title="MR_ROOM2", modality="MR")

    with pytest.raises(orders.OrderError, match="MR_ROOM2 is a MR station"):
        schedule(make_order(procedure=ct_head), NINE, mr)


def test_an_order_that_was_performed_cannot_be_rescheduled(scanner, ct_head):
    order = orders.change_status(schedule(make_order(procedure=ct_head), NINE, scanner), OrderStatus.IN_PROGRESS,
                                 actor="CT_ROOM1", channel=AuditChannel.DICOM)

    with pytest.raises(orders.IllegalTransition, match="only requested or scheduled"):
        schedule(order, NINE + datetime.timedelta(hours=1), scanner)
