"""A station's week calendar: booked steps as blocks in a server-rendered grid, free slots to book into, and
double booking refused with the conflict."""
import datetime
import re

import pytest
from django.utils import timezone

from radiology.choices import AuditChannel
from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory, StationFactory, make_order
from worklist import orders
from worklist.choices import OrderStatus

# A Monday well ahead, so that its slots are always bookable whenever the suite runs.
MONDAY = datetime.date(2031, 5, 5)
WEDNESDAY = MONDAY + datetime.timedelta(days=2)


def at(day, hour, minute=0):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))


@pytest.fixture
def ct_room(db):
    return StationFactory(name="CT scanner 1", ae_title="CT_ROOM1", modality="CT")


@pytest.fixture
def ct_head(db):
    return ProcedureTypeFactory(code="CTHEAD", name="CT HEAD WO CONTRAST", modality="CT",
                                default_duration_minutes=30)


@pytest.fixture
def booked(ct_room, ct_head):
    """Jane Doe's CT head on Wednesday 10:00–10:30."""
    return make_order(patient=PatientFactory(family_name="Doe", given_name="Jane"), procedure=ct_head,
                      station=ct_room, start=at(WEDNESDAY, 10))


def week_of(client, station, day=MONDAY, **params):
    return client.get("/worklist/calendar/", {"station": station.pk, "week": day.isoformat(), **params})


def grid(response):
    """The week table alone (the booking form above it lists orders too)."""
    body = response.content.decode()
    return body[body.index('<table class="week"'):]


def book(client, station, order, start, day=MONDAY):
    return client.post(f"/worklist/calendar/?station={station.pk}&week={day.isoformat()}", {
        "station": station.pk, "order": order.pk, "start": start.strftime("%Y-%m-%dT%H:%M")}, follow=True)


def test_the_week_shows_a_booked_step_as_a_block_over_its_slots(client, technologist, booked):
    client.force_login(technologist)
    body = week_of(client, booked.steps.get().station).content.decode()
    block = re.search(r'<td class="booked" rowspan="(\d+)">(.*?)</td>', body, re.S)
    assert block and block.group(1) == "2"  # 30 minutes in 15-minute slots
    assert booked.accession_number in block.group(2) and "Doe, Jane" in block.group(2)
    assert "10:00–10:30" in block.group(2)


def test_the_week_starts_on_monday_whatever_day_is_asked(client, technologist, booked, ct_room):
    client.force_login(technologist)
    body = grid(week_of(client, ct_room, day=WEDNESDAY))
    assert "Mon 05 May" in body and "Sun 11 May" in body and booked.accession_number in body


def test_the_week_leaves_out_other_stations(client, technologist, booked):
    other = StationFactory(name="CT scanner 2", ae_title="CT_ROOM2", modality="CT")
    client.force_login(technologist)
    assert booked.accession_number not in grid(week_of(client, other))


def test_the_week_leaves_out_cancelled_bookings(client, technologist, booked, ct_room):
    orders.cancel_order(booked, reason="Declined", actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    assert booked.accession_number not in grid(week_of(client, ct_room))


def test_a_step_outside_the_usual_hours_widens_the_day(client, technologist, ct_room, ct_head):
    late = make_order(procedure=ct_head, station=ct_room, start=at(WEDNESDAY, 21, 15))
    client.force_login(technologist)
    body = grid(week_of(client, ct_room))
    assert late.accession_number in body and "<th class=\"time\">21:00</th>" in body


def test_free_slots_link_to_the_booking_form_with_their_start(client, technologist, ct_room):
    client.force_login(technologist)
    body = week_of(client, ct_room).content.decode()
    assert f"start={WEDNESDAY:%Y-%m-%d}T09:15#book" in body


def test_a_slot_link_fills_in_the_start_time(client, technologist, ct_room):
    client.force_login(technologist)
    body = week_of(client, ct_room, start=f"{WEDNESDAY:%Y-%m-%d}T09:15").content.decode()
    assert f'name="start" value="{WEDNESDAY:%Y-%m-%d}T09:15"' in body


def test_the_booking_form_offers_the_stations_open_orders(client, technologist, ct_room, ct_head):
    waiting = make_order(procedure=ct_head)
    mr_order = make_order(procedure=ProcedureTypeFactory(code="MRKNEE", modality="MR"))
    client.force_login(technologist)
    body = week_of(client, ct_room).content.decode()
    assert f'<option value="{waiting.pk}">' in body and f'<option value="{mr_order.pk}">' not in body


def test_booking_into_a_free_slot_schedules_the_order(client, technologist, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, ct_room, order, at(WEDNESDAY, 11))
    order.refresh_from_db()
    step = order.steps.get()
    assert order.status == OrderStatus.SCHEDULED and (step.station, step.start) == (ct_room, at(WEDNESDAY, 11))
    assert response.redirect_chain[-1][0] == f"/worklist/calendar/?station={ct_room.pk}&week={MONDAY.isoformat()}"
    assert order.accession_number in re.search(r'<td class="booked".*?</td>', response.content.decode(),
                                               re.S).group(0)


def test_double_booking_is_refused_with_the_conflict(client, technologist, booked, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, ct_room, order, at(WEDNESDAY, 10, 15))
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED and not order.steps.exists()
    assert (f"Not booked: CT scanner 1 is booked {WEDNESDAY:%Y-%m-%d} 10:00–10:30 for order "
            f"{booked.accession_number}" in response.content.decode())


def test_moving_a_booking_to_a_free_slot_rebooks_its_step(client, technologist, booked, ct_room):
    client.force_login(technologist)
    book(client, ct_room, booked, at(WEDNESDAY, 15))
    step = booked.steps.get()
    assert step.start == at(WEDNESDAY, 15)


def test_an_order_of_another_modality_is_a_form_error(client, technologist, ct_room):
    mr_order = make_order(procedure=ProcedureTypeFactory(code="MRKNEE", modality="MR"))
    client.force_login(technologist)
    response = book(client, ct_room, mr_order, at(WEDNESDAY, 11))
    assert response.status_code == 400 and "can no longer be booked here" in response.content.decode()
    mr_order.refresh_from_db()
    assert mr_order.status == OrderStatus.REQUESTED


def test_booking_without_an_order_is_a_form_error(client, technologist, ct_room):
    client.force_login(technologist)
    response = client.post(f"/worklist/calendar/?station={ct_room.pk}&week={MONDAY.isoformat()}", {
        "station": ct_room.pk, "start": f"{WEDNESDAY:%Y-%m-%d}T11:00"})
    assert response.status_code == 400 and "Choose the order to book." in response.content.decode()


def test_the_calendar_defaults_to_the_first_station_and_this_week(client, technologist, ct_room):
    client.force_login(technologist)
    body = client.get("/worklist/calendar/").content.decode()
    monday = timezone.localdate() - datetime.timedelta(days=timezone.localdate().weekday())
    assert "CT scanner 1" in body and f'week={monday.isoformat()}' in body


def test_clinicians_may_not_open_the_calendar(client, clinician, ct_room):
    client.force_login(clinician)
    assert week_of(client, ct_room).status_code == 403


def test_radiologists_may_not_book(client, radiologist, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(radiologist)
    assert client.post(f"/worklist/calendar/?station={ct_room.pk}", {
        "station": ct_room.pk, "order": order.pk, "start": f"{WEDNESDAY:%Y-%m-%d}T11:00"}).status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_past_slots_cannot_be_booked(client, technologist, ct_room):
    client.force_login(technologist)
    body = grid(week_of(client, ct_room, day=datetime.date(2020, 1, 6)))
    assert '<td class="past">' in body and "#book" not in body


def test_a_refused_booking_keeps_its_start_time_in_the_form(client, technologist, booked, ct_room, ct_head):
    order = make_order(procedure=ct_head)
    client.force_login(technologist)
    response = book(client, ct_room, order, at(WEDNESDAY, 10, 15))
    assert f'name="start" value="{WEDNESDAY:%Y-%m-%d}T10:15"' in response.content.decode()
