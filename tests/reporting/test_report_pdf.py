"""The PDF of a signed report (reporting/pdf.py): header with patient and order, the sections, addenda and the
signature block, served to whoever may read the report."""
import datetime
import io

import pytest
from pypdf import PdfReader

from radiology.choices import AuditChannel, AuditEventCode, Role
from radiology.models import AuditEvent
from reporting import pdf, reports
from tests.factories import PASSWORD, PatientFactory, UserFactory
from tests.worklist.factories import ProcedureTypeFactory, make_readable_order

pytestmark = pytest.mark.django_db
WEB = AuditChannel.WEB


@pytest.fixture
def signed_report(radiologist, clinician):
    """Marie's signed report on a CT chest that Gregory ordered for Ada Lovelace."""
    radiologist.first_name, radiologist.last_name = "Marie", "Curie"
    radiologist.save()
    patient = PatientFactory(family_name="Lovelace", given_name="Ada", mrn="MRN-PDF-1",
                             birth_date=datetime.date(1815, 12, 10))
    order = make_readable_order(patient=patient, procedure=ProcedureTypeFactory(code="CTCHEST", name="CT CHEST"),
                                referring_physician=clinician)
    report = reports.start_report(order, radiologist, channel=WEB)
    report = reports.save_draft(report, radiologist, version=report.version, channel=WEB, sections={
        "findings": "Small right pleural effusion.\nNo pneumothorax.",
        "impression": "Right pleural effusion <not> malignant-looking & stable."})
    return reports.sign(report, radiologist, version=report.version, password=PASSWORD, channel=WEB)


def pdf_text(document):
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


def test_the_pdf_has_the_patient_order_sections_and_signature(signed_report):
    text = pdf_text(pdf.render_report_pdf(signed_report))

    for expected in ("Lovelace, Ada", "MRN-PDF-1", "1815-12-10", signed_report.order.accession_number, "CT CHEST",
                     "FINDINGS", "Small right pleural effusion.", "No pneumothorax.", "IMPRESSION",
                     "Right pleural effusion <not> malignant-looking & stable.",
                     "Electronically signed by Marie Curie"):
        assert expected in text


def test_the_pdf_of_an_amended_report_keeps_the_original_and_adds_the_addendum(signed_report, radiologist):
    reports.add_addendum(signed_report, radiologist, text="Comparison with the prior shows no change.",
                         password=PASSWORD, channel=WEB)
    signed_report.refresh_from_db()

    text = pdf_text(pdf.render_report_pdf(signed_report))

    assert "Final, amended" in text
    assert "Small right pleural effusion." in text
    assert text.index("Small right pleural effusion.") < text.index("Comparison with the prior shows no change.")


def test_a_draft_has_no_pdf(radiologist):
    order = make_readable_order()
    draft = reports.start_report(order, radiologist, channel=WEB)

    with pytest.raises(pdf.NotSigned):
        pdf.render_report_pdf(draft)


def test_the_referring_clinician_downloads_the_pdf_and_the_download_is_audited(signed_report, clinician, client):
    client.force_login(clinician)

    response = client.get(f"/reports/{signed_report.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "Lovelace, Ada" in pdf_text(response.content)
    assert AuditEvent.objects.filter(code=AuditEventCode.EXPORT, user=clinician, object_type="report",
                                     object_id=signed_report.order.accession_number).exists()


def test_another_clinician_gets_no_pdf(signed_report, client):
    client.force_login(UserFactory(username="house", role=Role.CLINICIAN))

    assert client.get(f"/reports/{signed_report.pk}/pdf/").status_code == 404


def test_without_the_system_libraries_the_pdf_url_says_what_to_install(signed_report, clinician, client,
                                                                        monkeypatch):
    def missing(report):
        raise pdf.PdfUnavailable(f"PDF rendering needs the system libraries {pdf.SYSTEM_LIBRARIES}")
    monkeypatch.setattr(pdf, "render_report_pdf", missing)
    client.force_login(clinician)

    response = client.get(f"/reports/{signed_report.pk}/pdf/")

    assert response.status_code == 503
    assert "libpango-1.0-0" in response.content.decode()
