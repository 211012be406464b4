"""The technologists' schedule page: the day's steps per station with Arrived / Start / Complete, and booking
requested orders. Refusals of the state machine or the station's calendar are messages that change nothing."""
import datetime

import pytest
from django.test import Client
from django.utils import timezone

from radiology.choices import AuditChannel
from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory, StationFactory, make_order
from worklist import orders
from worklist.choices import OrderStatus, Priority, StepStatus
from worklist.models import Order

# A day well ahead, so that bookings on it are never "in the past" whenever the suite runs.
DAY = datetime.date(2031, 5, 6)


def at(hour, minute=0, day=DAY):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))


@pytest.fixture
def ct_room(db):
    return StationFactory(name="CT scanner 1", ae_title="CT_ROOM1", modality="CT", location="Room 1")


@pytest.fixture
def mr_room(db):
    return StationFactory(name="MR scanner 2", ae_title="MR_ROOM2", modality="MR", location="Room 2")


@pytest.fixture
def ct_head(db):
    return ProcedureTypeFactory(code="CTHEAD", name="CT HEAD WO CONTRAST", modality="CT",
                                default_duration_minutes=20)


@pytest.fixture
def booked(ct_room, ct_head):
    """Jane Doe's CT head, booked on CT scanner 1 at 09:00 on DAY."""
    patient = PatientFactory(family_name="Doe", given_name="Jane", mrn="MRN-JANE")
    return make_order(patient=patient, procedure=ct_head, station=ct_room, start=at(9))


def status_of(order):
    order.refresh_from_db()
    return order.status


def act(client, order, to_status, **extra):
    return client.post(f"/worklist/orders/{order.pk}/status/", {"to_status": to_status, **extra}, follow=True)


def book(client, order, station, start, **extra):
    return client.post(f"/worklist/orders/{order.pk}/book/",
                       {"station": station.pk, "start": start.strftime("%Y-%m-%dT%H:%M"), **extra}, follow=True)


# --- The day's schedule -------------------------------------------------------------------------------------

def test_the_schedule_shows_each_step_with_patient_procedure_time_and_status(client, technologist, booked):
    client.force_login(technologist)
    body = client.get("/worklist/schedule/", {"date": DAY.isoformat()}).content.decode()
    for shown in ("CT scanner 1", "09:00–09:20", "Doe, Jane", "CT HEAD WO CONTRAST", booked.accession_number,
                  "Scheduled"):
        assert shown in body


def test_the_schedule_shows_today_by_default(client, technologist, ct_room, ct_head):
    today_order = make_order(procedure=ct_head, station=ct_room,
                             start=timezone.make_aware(datetime.datetime.combine(timezone.localdate(),
                                                                                 datetime.time(12))))
    other_day = make_order(procedure=ct_head, station=ct_room, start=at(9))
    client.force_login(technologist)
    body = client.get("/worklist/schedule/").content.decode()
    assert today_order.accession_number in body and other_day.accession_number not in body


def test_the_schedule_filters_by_station(client, technologist, booked, mr_room):
    mr_order = make_order(procedure=ProcedureTypeFactory(code="MRBRAIN", modality="MR"), station=mr_room,
                          start=at(10))
    client.force_login(technologist)
    body = client.get("/worklist/schedule/", {"date": DAY.isoformat(), "station": mr_room.pk}).content.decode()
    assert mr_order.accession_number in body and booked.accession_number not in body


def test_a_scheduled_step_offers_arrived_start_and_complete(client, technologist, booked):
    client.force_login(technologist)
    body = client.get("/worklist/schedule/", {"date": DAY.isoformat()}).content.decode()
    assert all(f'value="{status}"' in body for status in ("arrived", "in_progress", "completed"))


def test_a_step_in_progress_offers_only_complete(client, technologist, booked):
    orders.change_status(booked, OrderStatus.IN_PROGRESS, actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    body = client.get("/worklist/schedule/", {"date": DAY.isoformat()}).content.decode()
    assert 'value="completed"' in body and 'value="arrived"' not in body and 'value="in_progress"' not in body


def test_cancelled_orders_leave_the_schedule(client, technologist, booked):
    orders.cancel_order(booked, reason="Declined", actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    body = client.get("/worklist/schedule/", {"date": DAY.isoformat()}).content.decode()
    assert booked.accession_number not in body


def test_requested_orders_wait_for_booking_stat_first(client, technologist, ct_head, ct_room):
    routine = make_order(procedure=ct_head, priority=Priority.ROUTINE)
    stat = make_order(procedure=ct_head, priority=Priority.STAT)
    client.force_login(technologist)
    body = client.get("/worklist/schedule/").content.decode()
    assert body.index(stat.accession_number) < body.index(routine.accession_number)
    assert f'action="/worklist/orders/{stat.pk}/book/"' in body


def test_a_requested_order_is_offered_only_stations_of_its_modality(client, technologist, ct_head, ct_room,
                                                                     mr_room):
    make_order(procedure=ct_head)
    client.force_login(technologist)
    body = client.get("/worklist/schedule/").content.decode()
    requested = body[body.index("requested-orders"):]
    assert "CT scanner 1" in requested and "MR scanner 2" not in requested


def test_hl7_text_on_the_schedule_is_escaped(client, technologist, ct_room, ct_head):
    make_order(patient=PatientFactory(family_name="<b>Bold</b>"), procedure=ct_head, station=ct_room,
               start=at(11), reason="<img src=x onerror=alert(1)>")
    client.force_login(technologist)
    body = client.get("/worklist/schedule/", {"date": DAY.isoformat()}).content.decode()
    assert "<b>Bold</b>" not in body and "&lt;b&gt;Bold&lt;/b&gt;" in body


# --- Step actions -------------------------------------------------------------------------------------------

def test_arrived_marks_the_patient_arrived(client, technologist, booked):
    client.force_login(technologist)
    response = act(client, booked, "arrived")
    assert status_of(booked) == OrderStatus.ARRIVED
    assert booked.steps.get().status == StepStatus.ARRIVED
    assert "is now arrived." in response.content.decode()


def test_start_puts_the_order_in_progress(client, technologist, booked):
    client.force_login(technologist)
    act(client, booked, "in_progress")
    assert status_of(booked) == OrderStatus.IN_PROGRESS


def test_complete_makes_the_images_available(client, technologist, booked):
    orders.change_status(booked, OrderStatus.IN_PROGRESS, actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    act(client, booked, "completed")
    assert status_of(booked) == OrderStatus.COMPLETED


def test_the_action_is_recorded_as_the_technologists(client, technologist, booked):
    client.force_login(technologist)
    act(client, booked, "arrived")
    change = booked.status_changes.last()
    assert (change.user, change.actor, change.channel) == (technologist, "wilhelm", AuditChannel.WEB)


def test_an_illegal_transition_is_a_message_and_changes_nothing(client, technologist, booked):
    orders.change_status(booked, OrderStatus.IN_PROGRESS, actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    response = act(client, booked, "arrived")
    assert status_of(booked) == OrderStatus.IN_PROGRESS
    assert (f"Nothing changed: order {booked.accession_number} is in progress; it cannot become arrived"
            in response.content.decode())


def test_an_unknown_action_is_refused(client, technologist, booked):
    client.force_login(technologist)
    response = act(client, booked, "final")
    assert status_of(booked) == OrderStatus.SCHEDULED
    assert "Unknown action: choose Arrived, Start or Complete." in response.content.decode()


def test_the_action_returns_to_the_page_it_came_from(client, technologist, booked):
    client.force_login(technologist)
    back = f"/worklist/schedule/?date={DAY.isoformat()}"
    response = client.post(f"/worklist/orders/{booked.pk}/status/", {"to_status": "arrived", "next": back})
    assert response["Location"] == back


def test_the_action_never_returns_to_another_site(client, technologist, booked):
    client.force_login(technologist)
    response = client.post(f"/worklist/orders/{booked.pk}/status/",
                           {"to_status": "arrived", "next": "https://evil.example/"})
    assert response["Location"] == "/worklist/schedule/"


def test_step_actions_need_the_csrf_token(technologist, booked):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(technologist)
    assert browser.post(f"/worklist/orders/{booked.pk}/status/", {"to_status": "arrived"}).status_code == 403
    assert status_of(booked) == OrderStatus.SCHEDULED


def test_step_actions_need_a_post(client, technologist, booked):
    client.force_login(technologist)
    assert client.get(f"/worklist/orders/{booked.pk}/status/", {"to_status": "arrived"}).status_code == 405


# --- Booking requested orders -------------------------------------------------------------------------------

def test_schedule_books_a_requested_order_on_a_station(client, technologist, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, order, ct_room, at(14, 15))
    step = order.steps.get()
    assert status_of(order) == OrderStatus.SCHEDULED
    assert (step.station, step.start, step.end) == (ct_room, at(14, 15), at(14, 35))
    assert f"is booked on CT scanner 1 at {DAY:%Y-%m-%d} 14:15" in response.content.decode()


def test_double_booking_is_refused_with_the_conflict(client, technologist, booked, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, order, ct_room, at(9, 10))
    assert status_of(order) == OrderStatus.REQUESTED and not order.steps.exists()
    assert (f"Not booked: CT scanner 1 is booked {DAY:%Y-%m-%d} 09:00–09:20 for order {booked.accession_number}"
            in response.content.decode())


def test_a_station_of_another_modality_is_refused(client, technologist, mr_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, order, mr_room, at(9))
    assert status_of(order) == OrderStatus.REQUESTED
    assert "station MR_ROOM2 is a MR station; CT HEAD WO CONTRAST needs CT" in response.content.decode()


def test_a_start_in_the_past_is_refused(client, technologist, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, order, ct_room, at(9, day=datetime.date(2020, 1, 6)))
    assert status_of(order) == OrderStatus.REQUESTED
    assert "That start time has passed" in response.content.decode()


def test_a_cancelled_order_cannot_be_booked(client, technologist, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    orders.cancel_order(order, reason="Declined", actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    response = book(client, order, ct_room, at(9))
    assert status_of(order) == OrderStatus.CANCELLED and not order.steps.exists()
    assert "only requested or scheduled orders can be (re)scheduled" in response.content.decode()


# --- Who may ------------------------------------------------------------------------------------------------

def test_clinicians_may_not_see_the_schedule(client, clinician, db):
    client.force_login(clinician)
    assert client.get("/worklist/schedule/").status_code == 403


def test_radiologists_may_not_run_the_schedule(client, radiologist, booked):
    client.force_login(radiologist)
    assert client.get("/worklist/schedule/").status_code == 403
    assert client.post(f"/worklist/orders/{booked.pk}/status/", {"to_status": "arrived"}).status_code == 403
    assert status_of(booked) == OrderStatus.SCHEDULED


def test_clinicians_may_not_book(client, clinician, ct_room, ct_head):
    order = make_order(procedure=ct_head, referring_physician=clinician)
    client.force_login(clinician)
    response = client.post(f"/worklist/orders/{order.pk}/book/",
                           {"station": ct_room.pk, "start": "2031-05-06T09:00"})
    assert response.status_code == 403
    assert status_of(order) == OrderStatus.REQUESTED


def test_administrators_run_the_schedule(client, administrator, booked):
    client.force_login(administrator)
    act(client, booked, "arrived")
    assert status_of(booked) == OrderStatus.ARRIVED


def test_the_schedule_needs_a_signed_in_user(client, db):
    response = client.get("/worklist/schedule/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_unknown_order_is_not_found(client, technologist, db):
    client.force_login(technologist)
    assert client.post("/worklist/orders/999999/status/", {"to_status": "arrived"}).status_code == 404
    assert not Order.objects.exists()


def test_the_schedule_costs_the_same_queries_for_one_step_or_many(client, technologist, ct_room, ct_head):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_order(procedure=ct_head, station=ct_room, start=at(8))
    make_order(procedure=ct_head)
    client.force_login(technologist)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            client.get("/worklist/schedule/", {"date": DAY.isoformat()})
        return len(captured)

    one = queries()
    for hour in range(9, 14):
        make_order(procedure=ct_head, station=ct_room, start=at(hour))
        make_order(procedure=ct_head)
    assert queries() == one
