"""Clinician order entry, "my orders" and an order's page with its history and cancelling, in the portal.

Gregory (clinician) orders for his patients; Wilhelm (technologist) runs the schedule; Marie (radiologist)
reads but does not order.
"""
import datetime

import pytest
from django.test import Client
from django.utils import timezone

from radiology.choices import AuditChannel, AuditEventCode, Role
from radiology.models import AuditEvent
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import PatientFactory, UserFactory
from tests.worklist.factories import ProcedureTypeFactory, make_order
from worklist import orders
from worklist.choices import OrderStatus, Priority
from worklist.models import Order


@pytest.fixture
def ct_head(db):
    return ProcedureTypeFactory(code="CTHEAD", name="CT HEAD WO CONTRAST", modality="CT", body_part="HEAD")


@pytest.fixture
def jane(db):
    return PatientFactory(mrn="MRN-JANE", family_name="Doe", given_name="Jane")


def order_form_data(patient, procedure, **changes):
    return {"patient": patient.pk, "procedure": procedure.pk, "priority": Priority.ROUTINE,
            "reason": "Sudden headache", **changes}


def referred_by(user, **options):
    return make_order(user=user, referring_physician=user, **options)


# --- Order entry --------------------------------------------------------------------------------------------

def test_the_order_form_offers_only_active_procedures(client, clinician, ct_head):
    ProcedureTypeFactory(code="OLDXR", name="XR SKULL RETIRED", modality="CR", active=False)
    client.force_login(clinician)
    body = client.get("/worklist/orders/new/").content.decode()
    assert "CT HEAD WO CONTRAST" in body and "XR SKULL RETIRED" not in body


def test_the_patient_search_lists_matching_patients_to_choose_from(client, clinician, jane):
    PatientFactory(mrn="MRN-OTHER", family_name="Smith", given_name="John")
    client.force_login(clinician)
    body = client.get("/worklist/orders/new/", {"q": "Doe, J"}).content.decode()
    assert f'name="patient" value="{jane.pk}"' in body and "MRN-JANE" in body and "MRN-OTHER" not in body


def test_a_clinician_places_an_order_as_its_referring_physician(client, clinician, jane, ct_head):
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(jane, ct_head, priority=Priority.STAT))
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/worklist/orders/{order.pk}/"
    assert (order.patient, order.procedure, order.priority, order.reason, order.referring_physician,
            order.status) == (jane, ct_head, Priority.STAT, "Sudden headache", clinician, OrderStatus.REQUESTED)
    first = order.status_changes.get()
    assert (first.channel, first.user, first.actor) == (AuditChannel.WEB, clinician, "gregory")


def test_the_new_order_page_confirms_with_the_accession_number(client, clinician, jane, ct_head):
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(jane, ct_head), follow=True)
    order = Order.objects.get()
    assert f"Order {order.accession_number} for CT HEAD WO CONTRAST is placed" in response.content.decode()


def test_a_preferred_date_is_kept_with_the_reason_for_exam(client, clinician, jane, ct_head):
    wish = timezone.localdate() + datetime.timedelta(days=3)
    client.force_login(clinician)
    client.post("/worklist/orders/new/", order_form_data(jane, ct_head, preferred_date=wish.isoformat()))
    assert Order.objects.get().reason == f"Sudden headache\nPreferred date: {wish:%Y-%m-%d}"


def test_a_preferred_date_in_the_past_is_a_form_error(client, clinician, jane, ct_head):
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(
        jane, ct_head, preferred_date=(timezone.localdate() - datetime.timedelta(days=1)).isoformat()))
    assert response.status_code == 400 and "The preferred date has passed." in response.content.decode()
    assert not Order.objects.exists()


def test_an_order_without_a_patient_is_a_form_error(client, clinician, ct_head):
    client.force_login(clinician)
    data = {"procedure": ct_head.pk, "priority": Priority.ROUTINE, "reason": "Headache"}
    response = client.post("/worklist/orders/new/", data)
    assert response.status_code == 400
    assert "Choose the patient: search by name or MRN, then pick one." in response.content.decode()
    assert not Order.objects.exists()


def test_an_order_without_a_reason_is_a_form_error(client, clinician, jane, ct_head):
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(jane, ct_head, reason=""))
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert not Order.objects.exists()


def test_an_inactive_procedure_cannot_be_ordered(client, clinician, jane, ct_head):
    ct_head.active = False
    ct_head.save()
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(jane, ct_head))
    assert response.status_code == 400
    assert "That procedure is not in the active catalogue." in response.content.decode()
    assert not Order.objects.exists()


def test_a_merged_away_patient_cannot_be_ordered_for(client, clinician, jane, ct_head):
    survivor = PatientFactory()
    jane.merged_into = survivor
    jane.save()
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(jane, ct_head))
    assert response.status_code == 400 and "was merged; search again" in response.content.decode()
    assert not Order.objects.exists()


def test_a_refusal_of_the_order_service_is_shown_on_the_form(client, clinician, jane, ct_head, monkeypatch):
    def refuse(**kwargs):
        raise orders.OrderError("accession number 2026000001 is already used by another order")
    monkeypatch.setattr(orders, "create_order", refuse)
    client.force_login(clinician)
    response = client.post("/worklist/orders/new/", order_form_data(jane, ct_head))
    assert response.status_code == 400
    assert "accession number 2026000001 is already used by another order" in response.content.decode()


def test_technologists_may_order(client, technologist, jane, ct_head):
    client.force_login(technologist)
    client.post("/worklist/orders/new/", order_form_data(jane, ct_head))
    assert Order.objects.get().referring_physician == technologist


def test_administrators_may_order(client, administrator, jane, ct_head):
    client.force_login(administrator)
    client.post("/worklist/orders/new/", order_form_data(jane, ct_head))
    assert Order.objects.get().referring_physician == administrator


def test_radiologists_may_not_order(client, radiologist, jane, ct_head):
    client.force_login(radiologist)
    assert client.get("/worklist/orders/new/").status_code == 403
    assert client.post("/worklist/orders/new/", order_form_data(jane, ct_head)).status_code == 403
    assert not Order.objects.exists()


def test_order_entry_needs_a_signed_in_user(client, db):
    response = client.get("/worklist/orders/new/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_order_entry_refuses_a_post_without_its_csrf_token(clinician, jane, ct_head):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician)
    assert browser.post("/worklist/orders/new/", order_form_data(jane, ct_head)).status_code == 403
    assert not Order.objects.exists()


# --- My orders ----------------------------------------------------------------------------------------------

def test_my_orders_lists_the_clinicians_orders_with_their_state(client, clinician, jane, ct_head):
    order = referred_by(clinician, patient=jane, procedure=ct_head, priority=Priority.URGENT)
    client.force_login(clinician)
    body = client.get("/worklist/orders/").content.decode()
    for shown in (order.accession_number, "Doe, Jane", "CT HEAD WO CONTRAST", "Urgent", "Requested"):
        assert shown in body


def test_my_orders_leaves_out_other_clinicians_orders(client, clinician, jane):
    colleague = UserFactory(username="lisa", role=Role.CLINICIAN)
    theirs = referred_by(colleague, patient=jane)
    client.force_login(clinician)
    assert theirs.accession_number not in client.get("/worklist/orders/").content.decode()


def test_my_orders_shows_the_scheduled_time(client, clinician):
    start = timezone.make_aware(datetime.datetime(2031, 3, 4, 9, 30))
    referred_by(clinician, start=start)
    client.force_login(clinician)
    assert "2031-03-04 09:30" in client.get("/worklist/orders/").content.decode()


def test_my_orders_links_to_the_study_once_images_are_linked(client, clinician):
    order = referred_by(clinician)
    study = ingest_dataset(make_dataset()).instance.series.study
    Order.objects.filter(pk=order.pk).update(study=study)
    client.force_login(clinician)
    assert f'href="/studies/{study.pk}/"' in client.get("/worklist/orders/").content.decode()


def test_my_orders_marks_each_status_cell_for_live_updates(client, clinician):
    order = referred_by(clinician)
    client.force_login(clinician)
    body = client.get("/worklist/orders/").content.decode()
    assert f'data-order-id="{order.pk}"' in body and "data-live-status" in body
    assert "js/worklist-live" in body and "<script>" not in body


def test_patient_text_is_escaped_on_my_orders(client, clinician):
    referred_by(clinician, patient=PatientFactory(family_name="<script>alert(1)</script>"))
    client.force_login(clinician)
    body = client.get("/worklist/orders/").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body


def test_radiologists_have_no_orders_of_their_own(client, radiologist, clinician):
    referred_by(clinician)
    client.force_login(radiologist)
    assert "You have not ordered anything yet." in client.get("/worklist/orders/").content.decode()


# --- An order's page ----------------------------------------------------------------------------------------

def test_the_order_page_shows_the_status_history(client, clinician, technologist):
    order = referred_by(clinician)
    orders.cancel_order(order, reason="Patient declined", actor="wilhelm", channel=AuditChannel.WEB,
                        user=technologist)
    client.force_login(clinician)
    body = client.get(f"/worklist/orders/{order.pk}/").content.decode()
    assert "Requested" in body and "Cancelled" in body and "Patient declined" in body and "wilhelm" in body


def test_viewing_an_order_is_audited(client, clinician):
    order = referred_by(clinician)
    client.force_login(clinician)
    client.get(f"/worklist/orders/{order.pk}/")
    assert AuditEvent.objects.filter(code=AuditEventCode.ORDER_RECORD, action="R", user=clinician,
                                     object_id=order.accession_number).exists()


def test_a_clinician_cannot_open_another_clinicians_order(client, clinician):
    colleague = UserFactory(username="lisa", role=Role.CLINICIAN)
    theirs = referred_by(colleague)
    client.force_login(clinician)
    assert client.get(f"/worklist/orders/{theirs.pk}/").status_code == 404


def test_a_technologist_opens_any_order(client, technologist, clinician):
    order = referred_by(clinician)
    client.force_login(technologist)
    assert order.accession_number in client.get(f"/worklist/orders/{order.pk}/").content.decode()


def test_the_referring_clinician_is_offered_cancelling(client, clinician):
    order = referred_by(clinician)
    client.force_login(clinician)
    assert f'action="/worklist/orders/{order.pk}/cancel/"' in client.get(
        f"/worklist/orders/{order.pk}/").content.decode()


def test_a_performed_order_offers_no_cancelling(client, clinician):
    order = referred_by(clinician)
    orders.change_status(order, OrderStatus.COMPLETED, actor="test", channel=AuditChannel.SYSTEM)
    client.force_login(clinician)
    assert "/cancel/" not in client.get(f"/worklist/orders/{order.pk}/").content.decode()


# --- Cancelling ---------------------------------------------------------------------------------------------

def test_the_referring_clinician_cancels_with_a_reason(client, clinician):
    order = referred_by(clinician)
    client.force_login(clinician)
    response = client.post(f"/worklist/orders/{order.pk}/cancel/", {"reason": "Ordered twice"}, follow=True)
    order.refresh_from_db()
    last = order.status_changes.last()
    assert order.status == OrderStatus.CANCELLED
    assert (last.reason, last.user, last.channel) == ("Ordered twice", clinician, AuditChannel.WEB)
    assert f"Order {order.accession_number} is cancelled." in response.content.decode()


def test_cancelling_without_a_reason_is_a_form_error(client, clinician):
    order = referred_by(clinician)
    client.force_login(clinician)
    response = client.post(f"/worklist/orders/{order.pk}/cancel/", {"reason": ""})
    assert response.status_code == 400 and "Say why the order is cancelled." in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_an_order_in_progress_cannot_be_cancelled(client, clinician):
    order = referred_by(clinician, station=None, start=timezone.now())
    orders.change_status(order, OrderStatus.IN_PROGRESS, actor="CT1", channel=AuditChannel.DICOM)
    client.force_login(clinician)
    response = client.post(f"/worklist/orders/{order.pk}/cancel/", {"reason": "Too late"}, follow=True)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
    assert "is in progress; it can no longer be cancelled." in response.content.decode()


def test_a_technologist_cancels_a_clinicians_order(client, technologist, clinician):
    order = referred_by(clinician)
    client.force_login(technologist)
    client.post(f"/worklist/orders/{order.pk}/cancel/", {"reason": "Contrast allergy"})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_another_clinician_cannot_cancel(client, clinician):
    colleague = UserFactory(username="lisa", role=Role.CLINICIAN)
    theirs = referred_by(colleague)
    client.force_login(clinician)
    assert client.post(f"/worklist/orders/{theirs.pk}/cancel/", {"reason": "Mine now"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == OrderStatus.REQUESTED


def test_a_radiologist_cannot_cancel(client, radiologist, clinician):
    order = referred_by(clinician)
    client.force_login(radiologist)
    assert client.post(f"/worklist/orders/{order.pk}/cancel/", {"reason": "Not indicated"}).status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_cancelling_needs_a_post(client, clinician):
    order = referred_by(clinician)
    client.force_login(clinician)
    assert client.get(f"/worklist/orders/{order.pk}/cancel/").status_code == 405
