"""/api/orders/: order entry, the order book with its filters, and the actions that move an order through its
states, each through worklist.orders; the rules' refusals come back as 409 with the reason."""
import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from radiology.choices import Role
from tests.factories import PatientFactory, UserFactory
from tests.worklist.factories import (
    ProcedureTypeFactory, StationFactory, make_order, make_readable_order, make_scheduled_order, token_client,
)
from worklist.choices import OrderStatus, Priority
from worklist.models import Order

pytestmark = pytest.mark.django_db

TOMORROW_9 = (timezone.now() + datetime.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def post(user, path, data=None):
    return token_client(user).post(path, data or {}, format="json")


# --- Who may see and do what ---------------------------------------------------------------------------------

def test_nothing_is_served_anonymously():
    make_order()
    assert APIClient().get("/api/orders/").status_code in (401, 403)


def test_an_account_without_a_role_is_refused():
    make_order()
    assert token_client(UserFactory()).get("/api/orders/").status_code == 403


def test_clinicians_see_only_the_orders_they_referred(clinician):
    mine = make_order(referring_physician=clinician)
    someone_elses = make_order(referring_physician=UserFactory(username="james", role=Role.CLINICIAN))
    client = token_client(clinician)

    listed = client.get("/api/orders/").json()["results"]

    assert [order["accession_number"] for order in listed] == [mine.accession_number]
    assert client.get(f"/api/orders/{someone_elses.pk}/").status_code == 404


def test_technologists_see_the_whole_order_book(technologist, clinician):
    make_order(referring_physician=clinician)
    make_order()
    assert len(token_client(technologist).get("/api/orders/").json()["results"]) == 2


def test_clinicians_and_radiologists_do_not_run_the_schedule(clinician, radiologist):
    order = make_order(referring_physician=clinician)

    assert post(clinician, f"/api/orders/{order.pk}/schedule/", {"start": TOMORROW_9.isoformat()}).status_code == 403
    assert post(radiologist, f"/api/orders/{order.pk}/cancel/", {"reason": "no"}).status_code == 403
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REQUESTED


# --- Order entry ---------------------------------------------------------------------------------------------

def test_a_clinician_orders_by_mrn_in_their_own_name(clinician):
    PatientFactory(mrn="P100")
    ProcedureTypeFactory(code="CTCHEST")
    other = UserFactory(username="james", role=Role.CLINICIAN)

    response = post(clinician, "/api/orders/", {"patient_mrn": "P100", "procedure": "CTCHEST", "priority": "S",
                                               "reason": "dyspnoea", "referring_physician": other.pk})

    assert response.status_code == 201
    order = response.json()
    assert (order["patient"]["mrn"], order["procedure"]["code"], order["priority"], order["reason"],
            order["status"], order["referring_physician"]) == (
        "P100", "CTCHEST", Priority.STAT, "dyspnoea", OrderStatus.REQUESTED, clinician.pk)
    assert order["accession_number"] and order["study_instance_uid"]
    assert [change["to_status"] for change in order["status_history"]] == [OrderStatus.REQUESTED]


def test_an_order_with_a_start_and_station_is_scheduled_at_once(technologist):
    patient = PatientFactory()
    station = StationFactory(ae_title="CT_ROOM1", modality="CT")
    ProcedureTypeFactory(code="CTCHEST", modality="CT", default_duration_minutes=20)

    response = post(technologist, "/api/orders/", {"patient": patient.pk, "procedure": "CTCHEST",
                                                   "start": TOMORROW_9.isoformat(), "station": station.ae_title})

    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["status"] == OrderStatus.SCHEDULED
    [step] = order["steps"]
    assert (step["station_ae_title"], step["modality"], step["status"]) == ("CT_ROOM1", "CT", "SCHEDULED")
    assert datetime.datetime.fromisoformat(step["end"]) - datetime.datetime.fromisoformat(step["start"]) == \
        datetime.timedelta(minutes=20)


def test_the_issuer_picks_the_patient_when_the_mrn_is_not_unique(technologist):
    PatientFactory(mrn="P1", issuer="HOSP_A")
    theirs = PatientFactory(mrn="P1", issuer="HOSP_B")
    ProcedureTypeFactory(code="CTCHEST")

    ambiguous = post(technologist, "/api/orders/", {"patient_mrn": "P1", "procedure": "CTCHEST"})
    precise = post(technologist, "/api/orders/", {"patient_mrn": "P1", "patient_issuer": "HOSP_B",
                                                  "procedure": "CTCHEST"})

    assert ambiguous.status_code == 400 and "issuer" in str(ambiguous.json())
    assert precise.status_code == 201 and precise.json()["patient"]["id"] == theirs.pk


@pytest.mark.parametrize("data, field", [
    ({"procedure": "CTCHEST"}, "patient"),
    ({"patient_mrn": "NOBODY", "procedure": "CTCHEST"}, "patient_mrn"),
    ({"patient_mrn": "P1", "procedure": "NOSUCH"}, "procedure"),
    ({"patient_mrn": "P1", "procedure": "CTCHEST", "priority": "X"}, "priority"),
    ({"patient_mrn": "P1", "procedure": "CTCHEST", "station": "CT_ROOM1"}, "start"),
])
def test_bad_order_entry_is_refused_field_by_field(technologist, data, field):
    PatientFactory(mrn="P1")
    ProcedureTypeFactory(code="CTCHEST")
    StationFactory(ae_title="CT_ROOM1")

    response = post(technologist, "/api/orders/", data)

    assert response.status_code == 400
    assert field in response.json()
    assert not Order.objects.exists()


def test_an_inactive_procedure_is_refused_by_the_order_rules(technologist):
    PatientFactory(mrn="P1")
    ProcedureTypeFactory(code="OLD", active=False)

    response = post(technologist, "/api/orders/", {"patient_mrn": "P1", "procedure": "OLD"})

    assert response.status_code == 409
    assert "not orderable" in response.json()["detail"]


def test_a_new_order_on_a_booked_station_is_refused_and_not_kept(technologist):
    station = StationFactory(ae_title="CT_ROOM1", modality="CT")
    make_scheduled_order(station=station, start=TOMORROW_9)
    PatientFactory(mrn="P1")
    ProcedureTypeFactory(code="CTCHEST", modality="CT")

    response = post(technologist, "/api/orders/", {"patient_mrn": "P1", "procedure": "CTCHEST",
                                                   "start": TOMORROW_9.isoformat(), "station": "CT_ROOM1"})

    assert response.status_code == 409
    assert "is booked" in response.json()["detail"]
    assert Order.objects.count() == 1


# --- Actions -------------------------------------------------------------------------------------------------

def test_an_order_is_scheduled_arrives_starts_and_completes(technologist):
    station = StationFactory(ae_title="CT_ROOM1", modality="CT")
    order = make_order(procedure=ProcedureTypeFactory(modality="CT"))
    path = f"/api/orders/{order.pk}"

    scheduled = post(technologist, f"{path}/schedule/", {"start": TOMORROW_9.isoformat(), "station": "CT_ROOM1"})
    statuses = [post(technologist, f"{path}/{action}/").json()["status"] for action in ("arrive", "start", "complete")]

    assert scheduled.status_code == 200
    assert scheduled.json()["steps"][0]["station_ae_title"] == station.ae_title
    assert statuses == [OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED]
    history = token_client(technologist).get(f"{path}/").json()["status_history"]
    assert [(change["from_status"], change["to_status"], change["channel"], change["actor"]) for change in history] \
        == [("", "requested", "web", "test"), ("requested", "scheduled", "api", "wilhelm"),
            ("scheduled", "arrived", "api", "wilhelm"), ("arrived", "in_progress", "api", "wilhelm"),
            ("in_progress", "completed", "api", "wilhelm")]
    stamps = [datetime.datetime.fromisoformat(change["at"]) for change in history]
    assert stamps == sorted(stamps)


def test_rescheduling_onto_a_booked_station_is_refused_with_the_clash(technologist):
    station = StationFactory(ae_title="CT_ROOM1", modality="CT")
    booked = make_scheduled_order(station=station, start=TOMORROW_9)
    order = make_order(procedure=ProcedureTypeFactory(modality="CT"))

    response = post(technologist, f"/api/orders/{order.pk}/schedule/",
                    {"start": (TOMORROW_9 + datetime.timedelta(minutes=10)).isoformat(), "station": "CT_ROOM1"})

    assert response.status_code == 409
    assert booked.accession_number in response.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REQUESTED


def test_scheduling_needs_a_start_time(technologist):
    order = make_order()
    response = post(technologist, f"/api/orders/{order.pk}/schedule/", {"station": "CT_ROOM1"})
    assert response.status_code == 400
    assert "start" in response.json()


def test_an_illegal_transition_is_refused_with_the_possible_ones(technologist):
    order = make_order()

    response = post(technologist, f"/api/orders/{order.pk}/start/")

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"order {order.accession_number} is requested; it cannot become in progress "
        "(possible: cancelled, completed (images available), scheduled)")


def test_cancelling_needs_a_reason_and_keeps_it(technologist):
    order = make_scheduled_order()
    path = f"/api/orders/{order.pk}/cancel/"

    without = post(technologist, path)
    cancelled = post(technologist, path, {"reason": "patient declined"})

    assert without.status_code == 400 and "reason" in without.json()
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == OrderStatus.CANCELLED
    assert body["status_history"][-1]["reason"] == "patient declined"
    assert body["steps"][0]["status"] == "DISCONTINUED"


def test_a_performed_order_cannot_be_cancelled(technologist):
    order = make_readable_order()
    response = post(technologist, f"/api/orders/{order.pk}/cancel/", {"reason": "too late"})
    assert response.status_code == 409
    assert "cannot become cancelled" in response.json()["detail"]


def test_an_order_shows_the_study_linked_to_it(technologist):
    waiting, readable = make_scheduled_order(), make_readable_order()
    client = token_client(technologist)

    assert client.get(f"/api/orders/{waiting.pk}/").json()["linked_study_instance_uid"] is None
    assert client.get(f"/api/orders/{readable.pk}/").json()["linked_study_instance_uid"] == \
        readable.study.study_instance_uid


def test_an_action_on_an_order_one_may_not_see_is_not_found(technologist):
    assert post(technologist, "/api/orders/999999/arrive/").status_code == 404


# --- The order book: filters and pagination ------------------------------------------------------------------

def accessions(user, **params):
    response = token_client(user).get("/api/orders/", params)
    assert response.status_code == 200, response.json()
    return {order["accession_number"] for order in response.json()["results"]}


def test_filters_by_status_priority_mrn_and_accession_number(technologist):
    requested = make_order(patient=PatientFactory(mrn="P1"), priority=Priority.STAT)
    scheduled = make_scheduled_order(patient=PatientFactory(mrn="P2"))

    assert accessions(technologist, status="scheduled") == {scheduled.accession_number}
    assert accessions(technologist, status=["scheduled", "requested"]) == {requested.accession_number,
                                                                           scheduled.accession_number}
    assert accessions(technologist, priority="S") == {requested.accession_number}
    assert accessions(technologist, patient_mrn="P2") == {scheduled.accession_number}
    assert accessions(technologist, accession_number=requested.accession_number) == {requested.accession_number}


def test_filters_by_modality_and_referring_physician(technologist, clinician):
    ct = make_order(procedure=ProcedureTypeFactory(modality="CT"), referring_physician=clinician)
    mr = make_order(procedure=ProcedureTypeFactory(modality="MR"))

    assert accessions(technologist, modality="MR") == {mr.accession_number}
    assert accessions(technologist, referring_physician=clinician.pk) == {ct.accession_number}


def test_filters_by_scheduled_date_range(technologist):
    station = StationFactory(modality="CT")
    day = TOMORROW_9
    on_day = make_scheduled_order(station=station, start=day)
    make_scheduled_order(station=station, start=day + datetime.timedelta(days=2))
    make_order()  # not scheduled

    local_day = timezone.localtime(day).date()
    assert accessions(technologist, scheduled_date_after=local_day, scheduled_date_before=local_day) == {
        on_day.accession_number}
    assert accessions(technologist, scheduled_after=(day - datetime.timedelta(hours=1)).isoformat(),
                      scheduled_before=(day + datetime.timedelta(days=1)).isoformat()) == {on_day.accession_number}


def test_a_bad_filter_value_is_a_400(technologist):
    response = token_client(technologist).get("/api/orders/", {"status": "lost"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_the_order_book_is_paged_by_cursor_newest_first(technologist):
    created = [make_order().accession_number for _ in range(5)]
    client = token_client(technologist)

    seen, url, pages = [], "/api/orders/?page_size=2", 0
    while url:
        page = client.get(url).json()
        assert "count" not in page  # a cursor page does not count the whole table
        seen += [order["accession_number"] for order in page["results"]]
        url, pages = page["next"], pages + 1
        if url:
            assert "cursor" in parse_qs(urlsplit(url).query)

    assert (seen, pages) == (list(reversed(created)), 3)


def test_listing_costs_the_same_queries_for_few_or_many_orders(technologist):
    client = token_client(technologist)
    make_scheduled_order()
    with CaptureQueriesContext(connection) as few:
        client.get("/api/orders/")
    for _ in range(4):
        make_scheduled_order()
    with CaptureQueriesContext(connection) as many:
        client.get("/api/orders/")

    assert len(many) == len(few)
