"""A radiologist writes and signs a report in the editor, in headless Chromium against a running `serve`:
the template's sections and fields, autosave (a reload shows the text), a macro by ".name" then Tab, signing with
the password again, and the final report read-only."""
import json
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.archive.factories import bundled_file_path
from tests.e2e.test_studies_in_browser import sign_in
from tests.platform_process import manage

pytestmark = pytest.mark.xdist_group("platform-process")

MRRT_TEMPLATE = Path(__file__).resolve().parent.parent / "reporting" / "fixtures" / "ct_chest_radreport.html"
PATIENT_ID = "E2E-REPORT"

# Run inside the platform's `manage.py shell`: an order for a patient of its own, through the order services.
MAKE_ORDER = f"""
import datetime, json
from radiology.choices import AuditChannel
from radiology.models import Patient
from worklist import orders
from reporting.models import Macro
from worklist.models import ProcedureType
Macro.objects.get_or_create(name="fleischner", owner=None, defaults={{
    "text": "Follow-up CT in 3 months (Fleischner Society)."}})
patient, _ = Patient.objects.get_or_create(mrn="{PATIENT_ID}", issuer="", defaults={{
    "family_name": "Reporter", "given_name": "Rita", "birth_date": datetime.date(1980, 2, 3), "sex": "F"}})
order = orders.create_order(patient=patient, procedure=ProcedureType.objects.get(code="CTCHESTWO"),
                            reason="Persistent cough", actor="e2e", channel=AuditChannel.SYSTEM)
print(json.dumps({{"id": order.pk, "accession": order.accession_number, "study": order.study_instance_uid}}))
"""


@pytest.fixture(scope="module")
def new_case(running_platform, tmp_path_factory):
    """Makes a CT chest order whose images arrived (pydicom's CT_small.dcm under the order's accession number and
    Study Instance UID, so the archive reconciles it); the RadReport-shaped CT chest template is imported first."""
    result = manage(running_platform.env, "import_mrrt", "--procedure", "CTCHESTWO", "--replace",
                    str(MRRT_TEMPLATE))
    assert "1 imported" in result.stdout, result.stdout + result.stderr

    def make():
        order = json.loads(manage(running_platform.env, "shell", "-c", MAKE_ORDER).stdout.strip().splitlines()[-1])
        folder = tmp_path_factory.mktemp("e2e-report")
        dataset = dcmread(bundled_file_path("CT_small.dcm"))
        dataset.StudyInstanceUID = order["study"]
        dataset.AccessionNumber = order["accession"]
        dataset.SeriesInstanceUID = generate_uid()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.PatientID = PATIENT_ID
        dataset.PatientName = "Reporter^Rita"
        dataset.PatientBirthDate = "19800203"
        dataset.PatientSex = "F"
        dataset.save_as(folder / "ct.dcm", enforce_file_format=True)
        imported = manage(running_platform.env, "import_dicom", "--quiet", str(folder))
        assert "1 stored" in imported.stdout, imported.stdout + imported.stderr
        return order
    return make


def test_a_radiologist_writes_autosaves_and_signs_a_report(running_platform, new_case, page):
    case = new_case()
    sign_in(page, running_platform.base_url, "radiologist", "demo-radiologist")
    page.goto(f"{running_platform.base_url}/reports/orders/{case['id']}/")
    expect(page.locator(".case-info .reason")).to_have_text("Persistent cough")
    page.click("text=Start the report")

    findings = page.locator("textarea[data-section=findings]")
    expect(findings).to_have_value("The lungs are clear.")
    expect(page.locator("img.thumbnail")).to_have_count(1)
    findings.fill("")
    findings.type("Spiculated nodule in the right upper lobe.")
    page.select_option("select[data-field=pleural_effusion]", "small")
    expect(page.locator("#save-state")).to_contain_text("Saved", timeout=15_000)

    page.reload()
    expect(findings).to_have_value("Spiculated nodule in the right upper lobe.")
    expect(page.locator("select[data-field=pleural_effusion]")).to_have_value("small")

    impression = page.locator("textarea[data-section=impression]")
    impression.fill("")
    impression.type("Suspicious nodule. .fleischner")
    page.keyboard.press("Tab")
    expect(impression).to_have_value("Suspicious nodule. Follow-up CT in 3 months (Fleischner Society).")

    page.keyboard.press("Control+Enter")
    expect(page.locator("#sign-dialog")).to_be_visible()
    page.fill("#sign-password", "wrong-password")
    page.click("#sign-confirm")
    expect(page.locator("#sign-error")).to_contain_text("password")
    page.fill("#sign-password", "demo-radiologist")
    page.click("#sign-confirm")

    expect(page.locator("#report-status")).to_have_text("Final", timeout=15_000)
    expect(page.locator(".report-text")).to_contain_text("Spiculated nodule in the right upper lobe.")
    expect(page.locator(".report-text")).to_contain_text("small")
    expect(page.locator(".report-text")).to_contain_text("Follow-up CT in 3 months")
    expect(page.locator("textarea[data-section]")).to_have_count(0)
    expect(page.locator(".addendum-form")).to_contain_text("Add addendum")
    expect(page.locator(".signature")).to_contain_text("Signed by Marie Curie")


def test_a_second_window_sees_presence_and_its_stale_save_is_refused(running_platform, new_case, page):
    case = new_case()
    sign_in(page, running_platform.base_url, "radiologist", "demo-radiologist")
    editor_url = f"{running_platform.base_url}/reports/orders/{case['id']}/"
    page.goto(editor_url)
    page.click("text=Start the report")
    second = page.context.new_page()
    second.goto(editor_url)
    expect(page.locator("#presence")).to_have_text("You have it open in another window", timeout=15_000)

    page.locator("textarea[data-section=findings]").fill("Written in the first window.")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_contain_text("Saved", timeout=15_000)
    second.locator("textarea[data-section=findings]").fill("Written in the second window.")
    second.keyboard.press("Control+s")

    expect(second.locator("#save-state")).to_contain_text("Saved elsewhere", timeout=15_000)
    expect(second.locator("#report-editor")).to_have_class("report-editor stale")
    page.reload()
    expect(page.locator("textarea[data-section=findings]")).to_have_value("Written in the first window.")
