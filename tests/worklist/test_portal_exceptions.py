"""The exceptions page: studies that matched no order, listed for technologists, and linked to their order,
which gives the study the order's patient and accession number and moves the order to completed."""
import datetime
from pathlib import Path

import pytest
from django.urls import reverse
from pydicom import dcmread
from pydicom.uid import generate_uid

from archive.models import Instance, Study
from archive.storage import archive_storage
from radiology.choices import AuditChannel, Sex
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import PatientFactory
from tests.worklist.factories import make_readable_order, make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus
from worklist.models import UnmatchedStudy
from worklist.reconciliation import reconcile_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    return Path(settings.STORAGE_LOCATION)


@pytest.fixture
def patient(db):
    """Ida Lind, whose chest CT was sent under a mistyped Patient ID and without an accession number."""
    return PatientFactory(mrn="L-2002", family_name="Lind", given_name="Ida", birth_date=datetime.date(1975, 5, 6),
                          sex=Sex.FEMALE)


@pytest.fixture
def order(patient):
    return make_scheduled_order(patient=patient)


@pytest.fixture
def exception(db):
    study_uid = generate_uid()
    ingest_dataset(make_dataset(study_uid=study_uid, patient_id="L-2OO2", patient_name="Lind^Ida",
                                accession_number="", modality="CT", study_description="CT CHEST",
                                study_date="20261127", study_time="083000"))
    study = Study.objects.get(study_instance_uid=study_uid)
    reconcile_study(study, actor="CT_ROOM1")
    return UnmatchedStudy.objects.get(study=study)


def link(client, exception, order):
    return client.post(reverse("worklist:exception-link", args=[exception.pk]), {"order": order.pk, "q": "x"})


def test_technologists_see_each_unmatched_study_with_its_reason(client, technologist, exception):
    client.force_login(technologist)
    body = client.get(reverse("worklist:exceptions")).content.decode()
    for shown in ("Lind, Ida", "L-2OO2", "2026-11-27", "CT CHEST", "no accession number"):
        assert shown in body
    series = exception.study.series.get()
    study_page = reverse("archive:study-detail", args=[exception.study.pk])
    assert f'<a href="{study_page}"><img class="thumbnail" src="/studies/{exception.study.pk}/series/{series.pk}/' \
           f'thumbnail.png"' in body


def test_resolved_exceptions_are_not_listed(client, technologist, exception, order):
    client.force_login(technologist)
    link(client, exception, order)
    assert "L-2OO2" not in client.get(reverse("worklist:exceptions")).content.decode()


def test_received_text_is_shown_escaped(client, technologist, db):
    study = ingest_dataset(make_dataset(accession_number="", study_description="<b>CT</b>")).instance.series.study
    reconcile_study(study, actor="CT_ROOM1")
    client.force_login(technologist)
    body = client.get(reverse("worklist:exceptions")).content.decode()
    assert "<b>CT</b>" not in body and "&lt;b&gt;CT&lt;/b&gt;" in body


@pytest.mark.parametrize("persona", ["radiologist", "clinician"])
def test_other_roles_may_not_see_the_exceptions(client, persona, request, exception):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("worklist:exceptions")).status_code == 403
    assert client.get(reverse("worklist:exception-detail", args=[exception.pk])).status_code == 403


def test_administrators_see_the_exceptions(client, administrator, exception):
    client.force_login(administrator)
    assert client.get(reverse("worklist:exceptions")).status_code == 200


def test_the_nav_offers_the_exceptions_to_technologists_only(client, technologist, radiologist):
    client.force_login(technologist)
    assert reverse("worklist:exceptions") in client.get("/").content.decode()
    client.force_login(radiologist)
    assert reverse("worklist:exceptions") not in client.get("/").content.decode()


@pytest.mark.parametrize("query", ["{accession}", "L-2002", "lind", "Lind, I"])
def test_open_orders_are_found_by_accession_number_mrn_or_name(client, technologist, exception, order, query):
    client.force_login(technologist)
    response = client.get(reverse("worklist:exception-detail", args=[exception.pk]),
                          {"q": query.format(accession=order.accession_number)})
    assert list(response.context["orders"]) == [order]


def test_cancelled_orders_and_orders_with_images_are_not_offered(client, technologist, exception, patient):
    orders.cancel_order(make_scheduled_order(patient=patient), reason="duplicate", actor="t",
                        channel=AuditChannel.WEB)
    make_readable_order(patient=patient)
    client.force_login(technologist)
    response = client.get(reverse("worklist:exception-detail", args=[exception.pk]), {"q": "L-2002"})
    assert list(response.context["orders"]) == []
    assert "No open order without images matches" in response.content.decode()


def test_linking_gives_the_study_the_orders_patient_and_accession_number(client, technologist, exception, order,
                                                                          patient):
    client.force_login(technologist)
    response = link(client, exception, order)
    assert response.status_code == 302 and response.url == reverse("worklist:exceptions")
    study = Study.objects.get(pk=exception.study.pk)
    assert (study.patient, study.dicom_patient_id, study.patient_name, study.accession_number) == (
        patient, "L-2002", "Lind^Ida", order.accession_number)
    instance = Instance.objects.get(series__study=study)
    with archive_storage().open(instance.storage_key) as handle:
        stored = dcmread(handle, stop_before_pixels=True)
    assert (stored.PatientID, stored.AccessionNumber) == ("L-2002", order.accession_number)


def test_linking_completes_the_order_with_the_study(client, technologist, exception, order):
    client.force_login(technologist)
    link(client, exception, order)
    order.refresh_from_db()
    assert (order.study_id, order.status) == (exception.study.pk, OrderStatus.COMPLETED)
    assert order.status_changes.last().user == technologist


def test_linking_keeps_the_exception_as_resolved_by_whom_to_which_order(client, technologist, exception, order):
    client.force_login(technologist)
    link(client, exception, order)
    exception.refresh_from_db()
    assert exception.resolved_at is not None
    assert (exception.resolved_by, exception.order) == (technologist, order)


def test_linking_says_what_was_done(client, technologist, exception, order):
    client.force_login(technologist)
    body = client.post(reverse("worklist:exception-link", args=[exception.pk]), {"order": order.pk},
                       follow=True).content.decode()
    assert f"The study is now order {order.accession_number} of Lind, Ida (L-2002)" in body


def test_a_cancelled_order_is_refused_on_the_page_and_nothing_changes(client, technologist, exception, order,
                                                                      archive_folder):
    files = sorted(archive_folder.rglob("*.dcm"))
    orders.cancel_order(order, reason="patient left", actor="t", channel=AuditChannel.WEB)
    client.force_login(technologist)
    response = link(client, exception, order)
    assert response.status_code == 409
    assert (f"Not linked: order {order.accession_number} is cancelled; images can no longer be linked to it"
            in response.content.decode())
    assert Study.objects.get(pk=exception.study.pk).dicom_patient_id == "L-2OO2"
    assert sorted(archive_folder.rglob("*.dcm")) == files
    exception.refresh_from_db()
    assert exception.resolved_at is None


def test_an_order_that_already_has_a_study_is_refused(client, technologist, exception, patient):
    order = make_readable_order(patient=patient)
    client.force_login(technologist)
    response = link(client, exception, order)
    assert response.status_code == 409
    assert f"already has the images of study {order.study.study_instance_uid}" in response.content.decode()
    assert Study.objects.get(pk=exception.study.pk).accession_number == ""


def test_no_order_chosen_is_a_form_error(client, technologist, exception):
    client.force_login(technologist)
    response = client.post(reverse("worklist:exception-link", args=[exception.pk]), {"order": ""})
    assert response.status_code == 400
    assert "Choose the order to link the study to." in response.content.decode()


def test_radiologists_may_not_link(client, radiologist, exception, order):
    client.force_login(radiologist)
    assert link(client, exception, order).status_code == 403
    assert Study.objects.get(pk=exception.study.pk).accession_number == ""


def test_linking_needs_a_post(client, technologist, exception):
    client.force_login(technologist)
    assert client.get(reverse("worklist:exception-link", args=[exception.pk])).status_code == 405
