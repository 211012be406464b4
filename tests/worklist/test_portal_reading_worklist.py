"""The reading worklist page: Marie and Pierre, radiologists, see the cases whose images are in, STAT first, filter
them, claim one and give it back; a case held by one of them cannot be taken by the other."""
import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from radiology.choices import AuditChannel, Role
from tests.factories import PASSWORD, PatientFactory, UserFactory
from tests.worklist.factories import ProcedureTypeFactory, make_readable_order, make_scheduled_order
from worklist import reading
from worklist.choices import Priority
from worklist.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def pierre(db):
    """Pierre, a second radiologist."""
    return UserFactory(username="pierre", first_name="Pierre", last_name="Curie", role=Role.RADIOLOGIST)


@pytest.fixture
def head_ct(db):
    return make_readable_order(
        procedure=ProcedureTypeFactory(code="CTHEAD", name="CT HEAD", modality="CT", body_part="HEAD",
                                       subspecialty="neuro"),
        patient=PatientFactory(mrn="H-1", family_name="Head", given_name="Hana"), priority=Priority.ROUTINE)


@pytest.fixture
def chest_xray(db):
    return make_readable_order(
        procedure=ProcedureTypeFactory(code="CRCHEST", name="XR CHEST", modality="CR", body_part="CHEST",
                                       subspecialty="chest"),
        patient=PatientFactory(mrn="C-1", family_name="Chest", given_name="Carl"), priority=Priority.STAT)


def worklist_page(client, **filters):
    return client.get(reverse("worklist:reading"), filters)


def listed(response):
    return [order.accession_number for order in response.context["cases"]]


def claim(client, order, **data):
    return client.post(reverse("worklist:reading-claim", args=[order.pk]), data)


def release(client, order, **data):
    return client.post(reverse("worklist:reading-release", args=[order.pk]), data)


def test_cases_are_listed_stat_first(client, radiologist, head_ct, chest_xray):
    client.force_login(radiologist)
    assert listed(worklist_page(client)) == [chest_xray.accession_number, head_ct.accession_number]


def test_orders_without_images_are_not_listed(client, radiologist, head_ct):
    waiting = make_scheduled_order()
    client.force_login(radiologist)
    assert waiting.accession_number not in listed(worklist_page(client))


def test_each_row_shows_the_case(client, radiologist, chest_xray):
    client.force_login(radiologist)
    body = worklist_page(client).content.decode()
    for shown in ('<span class="badge priority-badge priority-S">STAT</span>', "Chest, Carl", "C-1", "XR CHEST",
                  chest_xray.accession_number, chest_xray.images_available_at.strftime("%Y-%m-%d"),
                  f'href="{reverse("archive:study-detail", args=[chest_xray.study_id])}"'):
        assert shown in body


@pytest.mark.parametrize("filters", [{"modality": "CT"}, {"body_part": "HEAD"}, {"subspecialty": "neuro"}])
def test_filters_keep_the_matching_cases(client, radiologist, head_ct, chest_xray, filters):
    client.force_login(radiologist)
    assert listed(worklist_page(client, **filters)) == [head_ct.accession_number]


def test_a_filter_value_outside_the_catalogue_is_a_form_error(client, radiologist, head_ct):
    client.force_login(radiologist)
    response = worklist_page(client, modality="<XX>")
    assert "Select a valid choice" in response.content.decode()
    assert "&lt;XX&gt;" in response.content.decode()


def test_mine_and_unclaimed(client, radiologist, head_ct, chest_xray):
    reading.claim(head_ct, radiologist, channel=AuditChannel.WEB)
    client.force_login(radiologist)
    assert listed(worklist_page(client, show="mine")) == [head_ct.accession_number]
    assert listed(worklist_page(client, show="unclaimed")) == [chest_xray.accession_number]


def test_a_radiologist_claims_a_case(client, radiologist, head_ct):
    client.force_login(radiologist)
    response = claim(client, head_ct, next=reverse("worklist:reading") + "?modality=CT")
    assert response.status_code == 302 and response.url == reverse("worklist:reading") + "?modality=CT"
    head_ct.refresh_from_db()
    assert head_ct.claimed_by == radiologist
    body = client.get(response.url).content.decode()
    assert f"You are reading order {head_ct.accession_number}" in body


def test_a_claimed_case_shows_its_holder_and_release_instead_of_claim(client, radiologist, pierre, head_ct):
    reading.claim(head_ct, pierre, channel=AuditChannel.WEB)
    client.force_login(radiologist)
    body = worklist_page(client).content.decode()
    assert '<td class="claimed-by">Pierre Curie</td>' in body
    assert 'class="inline claim" hidden' in body and 'class="inline release" hidden' in body
    client.force_login(pierre)
    body = worklist_page(client).content.decode()
    assert 'class="inline claim" hidden' in body and 'class="inline release">' in body


def test_a_case_held_by_another_radiologist_is_refused_with_the_reason(client, radiologist, pierre, head_ct):
    reading.claim(head_ct, pierre, channel=AuditChannel.WEB)
    client.force_login(radiologist)
    claim(client, head_ct)
    body = worklist_page(client).content.decode()
    assert f"Not claimed: order {head_ct.accession_number} is already claimed by Pierre Curie." in body
    head_ct.refresh_from_db()
    assert head_ct.claimed_by == pierre


def test_the_holder_releases_a_case(client, radiologist, head_ct):
    reading.claim(head_ct, radiologist, channel=AuditChannel.WEB)
    client.force_login(radiologist)
    release(client, head_ct)
    head_ct.refresh_from_db()
    assert head_ct.claimed_by is None
    assert f"Order {head_ct.accession_number} is back on the list." in worklist_page(client).content.decode()


def test_another_radiologists_case_cannot_be_released(client, radiologist, pierre, head_ct):
    reading.claim(head_ct, pierre, channel=AuditChannel.WEB)
    client.force_login(radiologist)
    release(client, head_ct)
    head_ct.refresh_from_db()
    assert head_ct.claimed_by == pierre
    assert "Not released: order" in worklist_page(client).content.decode()


def test_an_administrator_views_the_list_and_releases_anyones_case(client, administrator, pierre, head_ct):
    reading.claim(head_ct, pierre, channel=AuditChannel.WEB)
    client.force_login(administrator)
    assert listed(worklist_page(client)) == [head_ct.accession_number]
    release(client, head_ct)
    head_ct.refresh_from_db()
    assert head_ct.claimed_by is None


def test_an_administrator_does_not_claim(client, administrator, head_ct):
    client.force_login(administrator)
    claim(client, head_ct)
    assert "Not claimed: only radiologists claim cases." in worklist_page(client).content.decode()
    assert Order.objects.get(pk=head_ct.pk).claimed_by is None


@pytest.mark.parametrize("persona", ["technologist", "clinician"])
def test_other_roles_may_not_open_the_worklist_or_claim(client, request, persona, head_ct):
    client.force_login(request.getfixturevalue(persona))
    assert worklist_page(client).status_code == 403
    assert client.get(reverse("worklist:reading-rows")).status_code == 403
    assert claim(client, head_ct).status_code == 403


def test_signed_out_users_are_sent_to_sign_in(client, head_ct):
    response = worklist_page(client)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_claiming_needs_the_csrf_token(radiologist, head_ct):
    browser = Client(enforce_csrf_checks=True)
    browser.login(username=radiologist.username, password=PASSWORD)
    assert claim(browser, head_ct).status_code == 403
    assert Order.objects.get(pk=head_ct.pk).claimed_by is None


def test_claiming_needs_a_post(client, radiologist, head_ct):
    client.force_login(radiologist)
    assert client.get(reverse("worklist:reading-claim", args=[head_ct.pk])).status_code == 405


def test_an_address_elsewhere_is_not_followed_after_a_claim(client, radiologist, head_ct):
    client.force_login(radiologist)
    response = claim(client, head_ct, next="https://evil.example/")
    assert response.url == reverse("worklist:reading")


def test_the_rows_alone_are_served_for_live_refreshes(client, radiologist, head_ct, chest_xray):
    client.force_login(radiologist)
    response = client.get(reverse("worklist:reading-rows"), {"modality": "CR"})
    body = response.content.decode()
    assert body.lstrip().startswith("<tr") and "<html" not in body
    assert f'id="case-{chest_xray.pk}"' in body and f'id="case-{head_ct.pk}"' not in body
    assert f'value="{reverse("worklist:reading")}?modality=CR"' in body


def test_cases_of_another_group_are_not_shown(client, radiologist, head_ct):
    neuro = Group.objects.create(name="neuroradiology")
    Order.objects.filter(pk=head_ct.pk).update(assigned_group=neuro)
    client.force_login(radiologist)
    assert listed(worklist_page(client)) == []
    radiologist.groups.add(neuro)
    assert listed(worklist_page(client)) == [head_ct.accession_number]


def test_patient_names_are_escaped(client, radiologist):
    make_readable_order(patient=PatientFactory(family_name="<i>Evil</i>"))
    client.force_login(radiologist)
    body = worklist_page(client).content.decode()
    assert "<i>Evil</i>" not in body and "&lt;i&gt;Evil&lt;/i&gt;" in body


def test_radiologists_find_the_worklist_in_the_nav(client, radiologist):
    client.force_login(radiologist)
    assert f'href="{reverse("worklist:reading")}"' in client.get("/").content.decode()


def test_the_page_loads_its_live_script_and_no_inline_script(client, radiologist, head_ct):
    client.force_login(radiologist)
    body = worklist_page(client).content.decode()
    assert '<script src="/static/js/reading-worklist.js" defer></script>' in body
    assert "<script>" not in body
