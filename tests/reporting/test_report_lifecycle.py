"""The report lifecycle (reporting/reports.py): draft → preliminary → final, immutability, versions, addenda,
optimistic locking, and the order following the report."""
import pytest

from archive.models import Study
from radiology.choices import AuditChannel, Role
from radiology.step_up import StepUpFailed
from reporting import reports
from reporting.choices import ReportStatus
from reporting.models import ReportTemplate
from tests.factories import PASSWORD, UserFactory
from tests.worklist.factories import make_scheduled_order
from worklist import orders
from worklist.choices import OrderStatus

pytestmark = pytest.mark.django_db
WEB = AuditChannel.WEB


@pytest.fixture
def case():
    """An order whose images arrived: on the reading worklist."""
    order = make_scheduled_order(reason="Headache since a fall")
    order.study = Study.objects.create(study_instance_uid=order.study_instance_uid, patient=order.patient)
    order.save(update_fields=["study"])
    return orders.change_status(order, OrderStatus.COMPLETED, actor="CT01", channel=AuditChannel.DICOM)


@pytest.fixture
def draft(case, radiologist):
    report = reports.start_report(case, radiologist, channel=WEB)
    return reports.save_draft(report, radiologist, version=report.version, channel=WEB,
                              sections={"findings": "No bleed.", "impression": "Normal CT head."})


def test_starting_a_report_claims_the_case_and_fills_in_the_reason_for_exam(case, radiologist):
    report = reports.start_report(case, radiologist, channel=WEB)

    case.refresh_from_db()
    assert case.claimed_by == radiologist
    assert report.status == ReportStatus.DRAFT
    assert report.sections["clinical_information"] == "Headache since a fall"


def test_a_report_starts_from_the_template_of_the_procedure(case, radiologist):
    ReportTemplate.objects.create(name="CT head", procedure=case.procedure, sections=[
        {"key": "findings", "title": "Findings", "default_text": "The brain parenchyma is normal.",
         "fields": [{"key": "hemorrhage", "label": "Hemorrhage", "type": "picklist", "options": ["none", "present"],
                     "default": "none"}]}])

    report = reports.start_report(case, radiologist, channel=WEB)

    assert report.sections["findings"] == "The brain parenchyma is normal."
    assert report.fields == {"hemorrhage": "none"}


def test_a_case_held_by_a_colleague_cannot_be_reported(case, radiologist):
    colleague = UserFactory(username="pierre", role=Role.RADIOLOGIST)
    reports.start_report(case, colleague, channel=WEB)

    assert reports.start_report(case, radiologist, channel=WEB).author == colleague


def test_every_save_is_kept_as_a_version(draft, radiologist):
    reports.save_draft(draft, radiologist, version=draft.version, sections={"impression": "Normal."}, channel=WEB)

    assert list(draft.versions.values_list("version", flat=True)) == [1, 2, 3]
    assert draft.versions.get(version=2).sections["impression"] == "Normal CT head."


def test_a_save_from_an_older_version_is_refused(draft, radiologist):
    reports.save_draft(draft, radiologist, version=draft.version, sections={"impression": "A"}, channel=WEB)

    with pytest.raises(reports.ReportConflict, match="saved elsewhere"):
        reports.save_draft(draft, radiologist, version=draft.version, sections={"impression": "B"}, channel=WEB)
    draft.refresh_from_db()
    assert draft.sections["impression"] == "A"


def test_preliminary_moves_the_order_to_preliminary(draft, radiologist):
    report = reports.make_preliminary(draft, radiologist, version=draft.version, channel=WEB)

    assert report.status == ReportStatus.PRELIMINARY
    assert report.order.status == OrderStatus.PRELIMINARY


def test_signing_needs_the_password_again(draft, radiologist):
    with pytest.raises(StepUpFailed):
        reports.sign(draft, radiologist, version=draft.version, password="wrong", channel=WEB)

    draft.refresh_from_db()
    assert draft.status == ReportStatus.DRAFT


def test_signing_makes_the_report_and_the_order_final(draft, radiologist):
    report = reports.sign(draft, radiologist, version=draft.version, password=PASSWORD, channel=WEB)

    assert (report.status, report.signed_by) == (ReportStatus.FINAL, radiologist)
    report.order.refresh_from_db()
    assert report.order.status == OrderStatus.FINAL
    assert report.order.claimed_by is None


def test_a_final_report_never_changes(draft, radiologist):
    report = reports.sign(draft, radiologist, version=draft.version, password=PASSWORD, channel=WEB)

    with pytest.raises(reports.ReportLocked, match="corrections are addenda"):
        reports.save_draft(report, radiologist, version=report.version, sections={"impression": "X"}, channel=WEB)
    with pytest.raises(reports.ReportLocked):
        reports.mark_entered_in_error(report, radiologist, reason="wrong patient", channel=WEB)


def test_an_addendum_amends_a_final_report_and_keeps_the_original(draft, radiologist):
    report = reports.sign(draft, radiologist, version=draft.version, password=PASSWORD, channel=WEB)

    reports.add_addendum(report, radiologist, text="Small old infarct, left.", password=PASSWORD, channel=WEB)

    report.refresh_from_db()
    assert report.status == ReportStatus.AMENDED
    assert report.sections["impression"] == "Normal CT head."
    text = reports.full_text(report)
    assert text.index("Normal CT head.") < text.index("Small old infarct, left.")


def test_an_addendum_to_a_draft_is_refused(draft, radiologist):
    with pytest.raises(reports.ReportError, match="addenda are added to final reports"):
        reports.add_addendum(draft, radiologist, text="More.", password=PASSWORD, channel=WEB)


def test_an_empty_report_cannot_be_signed(case, radiologist):
    report = reports.start_report(case, radiologist, channel=WEB)
    report = reports.save_draft(report, radiologist, version=report.version, channel=WEB,
                                sections={"clinical_information": ""})

    with pytest.raises(reports.ReportError, match="empty"):
        reports.sign(report, radiologist, version=report.version, password=PASSWORD, channel=WEB)


def test_only_the_author_edits_a_draft(draft):
    colleague = UserFactory(username="pierre", role=Role.RADIOLOGIST)

    with pytest.raises(reports.ReportError, match="being written by"):
        reports.save_draft(draft, colleague, version=draft.version, sections={"impression": "X"}, channel=WEB)


def test_a_draft_entered_in_error_keeps_its_reason(draft, radiologist):
    report = reports.mark_entered_in_error(draft, radiologist, reason="dictated on the wrong patient", channel=WEB)

    assert (report.status, report.cancelled_reason) == (ReportStatus.ENTERED_IN_ERROR,
                                                        "dictated on the wrong patient")


def test_only_radiologists_write_reports(case, clinician):
    with pytest.raises(reports.ReportError, match="only radiologists"):
        reports.start_report(case, clinician, channel=WEB)


def test_the_report_text_carries_the_template_fields_under_their_section(case, radiologist):
    ReportTemplate.objects.create(name="CT chest", procedure=case.procedure, sections=[
        {"key": "findings", "title": "Findings", "default_text": "Lungs clear.",
         "fields": [{"key": "nodule", "label": "Largest nodule", "type": "number", "unit": "mm"}]}])
    report = reports.start_report(case, radiologist, channel=WEB)

    report = reports.save_draft(report, radiologist, version=report.version, fields={"nodule": 6}, channel=WEB)

    assert "FINDINGS:\nLungs clear.\nLargest nodule: 6 mm" in reports.full_text(report)
