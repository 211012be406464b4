"""The report editor page (/reports/orders/<order id>/) and the report page clinicians read (/reports/<id>/)."""
import json

import pytest
from django.urls import reverse

from archive.models import Series, Study
from radiology.choices import AuditChannel, Role
from reporting import reports
from reporting.models import Macro, ReportTemplate
from tests.factories import PASSWORD, UserFactory
from tests.worklist.factories import make_readable_order

pytestmark = pytest.mark.django_db
WEB = AuditChannel.WEB


@pytest.fixture
def case(clinician):
    order = make_readable_order(reason="Fall <b>on</b> ice", referring_physician=clinician)
    ReportTemplate.objects.create(name="CT chest", procedure=order.procedure, sections=[
        {"key": "findings", "title": "Findings", "default_text": "The lungs are clear.", "fields": [
            {"key": "effusion", "label": "Pleural effusion", "type": "picklist",
             "options": ["none", "small", "large"], "default": "none"},
            {"key": "nodule", "label": "Largest nodule", "type": "number", "unit": "mm"},
            {"key": "prior_date", "label": "Prior study date", "type": "date"}]},
        {"key": "impression", "title": "Impression", "default_text": ""}])
    return order


@pytest.fixture
def draft(case, radiologist):
    return reports.start_report(case, radiologist, channel=WEB)


def editor_url(order):
    return reverse("reporting:editor", args=[order.pk])


def test_the_editor_shows_the_template_sections_and_fields(client, radiologist, draft, case):
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    assert 'data-section="findings"' in page and "The lungs are clear." in page
    assert '<select name="field-effusion" data-field="effusion">' in page
    assert '<option value="none" selected>none</option>' in page
    assert 'type="number" step="any" name="field-nodule"' in page and '<span class="unit">mm</span>' in page
    assert 'type="date" name="field-prior_date"' in page


def test_the_editor_carries_its_data_in_json_script_tags_not_inline_code(client, radiologist, draft, case):
    Macro.objects.create(name="normal", text="Normal </script><script>alert(1)</script> study.")
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    config = json.loads(page.split('id="report-editor-config" type="application/json">')[1].split("</script>")[0])
    assert config == {"reportId": draft.pk, "version": draft.version, "status": "draft", "editable": True,
                      "apiUrl": f"/api/reports/{draft.pk}/", "presencePath": f"/ws/reports/{draft.pk}/presence/"}
    assert "<script>alert(1)" not in page
    scripts = [chunk.split(">")[0] for chunk in page.split("<script")[1:]]
    assert all("src=" in tag or 'type="application/json"' in tag for tag in scripts)


def test_the_editor_shows_the_orders_clinical_information_escaped(client, radiologist, draft, case, clinician):
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    assert "Fall &lt;b&gt;on&lt;/b&gt; ice" in page
    assert clinician.get_full_name() in page
    assert case.get_priority_display() in page


def test_the_editor_offers_shared_macros_and_the_users_own_only(client, radiologist, draft, case):
    Macro.objects.create(name="normal chest", text="Normal chest.")
    Macro.objects.create(name="mine", text="My phrase.", owner=radiologist)
    Macro.objects.create(name="theirs", text="Not for Marie.", owner=UserFactory(username="pierre"))
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    macros = json.loads(page.split('id="report-macros" type="application/json">')[1].split("</script>")[0])
    assert [macro["name"] for macro in macros] == ["mine", "normal chest"]


def test_the_editor_shows_the_series_thumbnails_and_links_the_study(client, radiologist, draft, case):
    Series.objects.create(study=case.study, series_instance_uid="1.2.3.4.5", modality="CT",
                                   series_number=2, series_description="Lung 1mm")
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    assert reverse("archive:study-detail", args=[case.study.pk]) in page
    assert "Lung 1mm" in page
    assert "no image" in page  # the series has no instance yet


def test_the_editor_shows_the_prior_studies_with_their_signed_reports(client, radiologist, draft, case):
    prior_order = make_readable_order(patient=case.patient, procedure=case.procedure)
    Study.objects.filter(pk=prior_order.study_id).update(study_date="20240102", study_description="Old CT")
    prior = reports.start_report(prior_order, radiologist, channel=WEB)
    prior = reports.save_draft(prior, radiologist, version=prior.version, channel=WEB,
                               sections={"impression": "Granuloma, left lower lobe."})
    reports.sign(prior, radiologist, version=prior.version, password=PASSWORD, channel=WEB)
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    assert "Old CT" in page and "2024-01-02" in page
    assert "Granuloma, left lower lobe." in page


def test_an_order_without_a_report_offers_to_start_one(client, radiologist, case):
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()
    response = client.post(reverse("reporting:start", args=[case.pk]))

    assert "Start the report" in page
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.report.author == radiologist and case.claimed_by == radiologist


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.TECHNOLOGIST])
def test_the_editor_is_refused_to_other_roles(client, draft, case, role):
    client.force_login(UserFactory(username="someone", role=role))

    assert client.get(editor_url(case)).status_code == 403
    assert client.post(reverse("reporting:start", args=[case.pk])).status_code == 403


def test_a_signed_report_is_read_only_with_its_addenda_and_an_addendum_form(client, radiologist, draft, case):
    draft = reports.save_draft(draft, radiologist, version=draft.version, channel=WEB,
                               sections={"impression": "No pneumothorax."})
    signed = reports.sign(draft, radiologist, version=draft.version, password=PASSWORD, channel=WEB)
    reports.add_addendum(signed, radiologist, text="Reviewed <again>.", password=PASSWORD, channel=WEB)
    client.force_login(radiologist)

    page = client.get(editor_url(case)).content.decode()

    assert "<textarea" not in page.split('class="card addendum-form"')[0]
    assert "No pneumothorax." in page and "Reviewed &lt;again&gt;." in page
    assert "Add addendum" in page
    assert reverse("reporting:report-pdf", args=[signed.pk]) in page


def test_an_addendum_with_a_wrong_password_is_refused_on_the_page(client, radiologist, draft):
    draft = reports.save_draft(draft, radiologist, version=draft.version, channel=WEB,
                               sections={"impression": "No pneumothorax."})
    signed = reports.sign(draft, radiologist, version=draft.version, password=PASSWORD, channel=WEB)
    client.force_login(radiologist)
    url = reverse("reporting:addendum-create", args=[signed.pk])

    refused = client.post(url, {"text": "Small effusion.", "password": "guess"})
    accepted = client.post(url, {"text": "Small effusion.", "password": PASSWORD})

    assert refused.status_code == 400
    assert "password" in refused.content.decode() and "Small effusion." in refused.content.decode()
    assert accepted.status_code == 302
    assert list(signed.addenda.values_list("text", flat=True)) == ["Small effusion."]


def test_each_version_is_viewable(client, radiologist, draft):
    reports.save_draft(draft, radiologist, version=draft.version, channel=WEB, sections={"impression": "First."})
    draft.refresh_from_db()
    reports.save_draft(draft, radiologist, version=draft.version, channel=WEB, sections={"impression": "Second."})
    client.force_login(radiologist)

    page = client.get(reverse("reporting:version", args=[draft.pk, 2])).content.decode()

    assert "First." in page and "Second." not in page


def test_the_clinician_reads_a_preliminary_report_marked_so(client, clinician, radiologist, draft):
    draft = reports.save_draft(draft, radiologist, version=draft.version, channel=WEB,
                               sections={"impression": "Probable pneumonia."})
    reports.make_preliminary(draft, radiologist, version=draft.version, channel=WEB)
    client.force_login(clinician)

    page = client.get(reverse("reporting:report", args=[draft.pk])).content.decode()

    assert "PRELIMINARY" in page and "Probable pneumonia." in page


def test_the_clinician_reads_the_final_report_with_its_addenda(client, clinician, radiologist, draft):
    draft = reports.save_draft(draft, radiologist, version=draft.version, channel=WEB,
                               sections={"impression": "Pneumonia."})
    signed = reports.sign(draft, radiologist, version=draft.version, password=PASSWORD, channel=WEB)
    reports.add_addendum(signed, radiologist, text="Follow-up in six weeks.", password=PASSWORD, channel=WEB)
    client.force_login(clinician)

    page = client.get(reverse("reporting:report", args=[draft.pk])).content.decode()

    assert "PRELIMINARY" not in page
    assert reverse("reporting:report-pdf", args=[signed.pk]) in page
    assert page.index("Pneumonia.") < page.index("Follow-up in six weeks.")


def test_a_clinician_does_not_see_a_draft(client, clinician, draft):
    client.force_login(clinician)

    assert client.get(reverse("reporting:report", args=[draft.pk])).status_code == 404


def test_a_clinician_does_not_see_another_clinicians_report(client, radiologist, draft):
    other = UserFactory(username="james", role=Role.CLINICIAN)
    client.force_login(other)
    draft = reports.save_draft(draft, radiologist, version=draft.version, channel=WEB, sections={"impression": "X"})
    reports.make_preliminary(draft, radiologist, version=draft.version, channel=WEB)

    assert client.get(reverse("reporting:report", args=[draft.pk])).status_code == 404
