"""Two radiologists on the reading worklist in headless Chromium against a running `serve`: a claim by one shows
on the other's page without a reload, and a study arriving over DICOM puts a new case on both pages."""
import pytest
from playwright.sync_api import expect
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from archive import status
from tests.archive.factories import make_dataset
from tests.platform_process import manage

pytestmark = pytest.mark.xdist_group("platform-process")

MODALITY_AET = "E2EREADCT"
# Generous: the shared platform runs beside other test processes on two cores. A live update normally takes
# well under a second; the test waits for it, it does not time it.
WAIT = 30_000
PIERRE_PASSWORD = "e2e-pierre-reads"
# Two orders of our own (not the demo's): images for the first arrive before the pages open, for the second while
# both radiologists are watching.
CASES = [("E2E-READ-1", "Reader^Rita", "E2ERD0001"), ("E2E-READ-2", "Arriving^Arno", "E2ERD0002")]

CREATE_ORDERS = """
import datetime
from radiology.choices import AuditChannel, Sex
from radiology.models import Patient
from worklist import orders
from worklist.choices import Priority
from worklist.models import Order, ProcedureType
procedure = ProcedureType.objects.get(code="CTCHESTWO")
for mrn, name, accession in {cases!r}:
    family, given = name.split("^")
    patient, _ = Patient.objects.get_or_create(mrn=mrn, issuer="", defaults={{
        "family_name": family, "given_name": given, "birth_date": datetime.date(1960, 1, 1), "sex": Sex.FEMALE}})
    if not Order.objects.filter(accession_number=accession).exists():
        orders.create_order(patient=patient, procedure=procedure, actor="e2e", channel=AuditChannel.SYSTEM,
                            accession_number=accession, priority=Priority.STAT)
"""


def store_images(platform, mrn, name, accession):
    """One CT image of the case sent by a modality over DICOM C-STORE to the platform's listener."""
    dataset = make_dataset(patient_id=mrn, patient_name=name, accession_number=accession, modality="CT",
                           body_part="CHEST", study_description="CT CHEST WO CONTRAST")
    ae = AE(ae_title=MODALITY_AET)
    ae.add_requested_context(CTImageStorage)
    association = ae.associate("127.0.0.1", int(platform.env["RADIOLOGY_DICOM_PORT"]), ae_title="RADIOLOGY")
    assert association.is_established, "the platform refused the association"
    try:
        answer = association.send_c_store(dataset)
    finally:
        association.release()
    assert getattr(answer, "Status", None) == status.SUCCESS


@pytest.fixture(scope="module")
def reading_cases(running_platform):
    """Pierre, a second radiologist; the modality registered; two STAT orders, the first with its images."""
    env = running_platform.env
    manage(env, "adduser", "pierre", "--role", "radiologist", "--password-stdin", stdin=PIERRE_PASSWORD + "\n")
    manage(env, "dicomnode", "add", "--name", "E2E reading CT", "--aet", MODALITY_AET, "--host", "127.0.0.1",
           "--port", "104")
    manage(env, "shell", "-c", CREATE_ORDERS.format(cases=CASES))
    store_images(running_platform, *CASES[0])
    return CASES


def sign_in(page, base_url, username, password):
    page.goto(base_url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator(".site-header .who")).to_be_visible(timeout=WAIT)


def open_worklist(browser, platform, username, password):
    page = browser.new_context().new_page()
    sign_in(page, platform.base_url, username, password)
    page.click("nav >> text=Reading worklist")
    expect(page.locator("h1")).to_contain_text("Reading worklist", timeout=WAIT)
    expect(page.locator("#reading-live")).to_have_text("live", timeout=WAIT)
    return page


def case_row(page, accession):
    return page.locator("#reading-worklist tbody tr", has_text=accession)


def test_a_claim_and_a_new_study_show_on_the_other_radiologists_page(running_platform, reading_cases, browser):
    marie = open_worklist(browser, running_platform, "radiologist", "demo-radiologist")
    pierre = open_worklist(browser, running_platform, "pierre", PIERRE_PASSWORD)
    try:
        _, _, first = reading_cases[0]
        expect(case_row(marie, first)).to_contain_text("STAT", timeout=WAIT)
        expect(case_row(pierre, first).locator(".claimed-by")).to_have_text("—", timeout=WAIT)
        pierre.evaluate("window.notReloaded = true")

        case_row(marie, first).locator("form.claim button").click()
        expect(marie.locator(".messages")).to_contain_text(f"You are reading order {first}", timeout=WAIT)
        expect(case_row(marie, first).locator("form.release button")).to_be_visible(timeout=WAIT)
        expect(marie.locator("#reading-live")).to_have_text("live", timeout=WAIT)  # her reloaded page

        # Pierre's page, not reloaded, shows the case taken and no longer offers to claim it.
        expect(case_row(pierre, first).locator(".claimed-by")).to_have_text("Marie Curie", timeout=WAIT)
        expect(case_row(pierre, first).locator("form.claim")).to_be_hidden(timeout=WAIT)
        expect(case_row(pierre, first).locator("form.release")).to_be_hidden(timeout=WAIT)

        mrn, name, second = reading_cases[1]
        expect(case_row(pierre, second)).to_have_count(0, timeout=WAIT)
        store_images(running_platform, mrn, name, second)
        for page in (pierre, marie):
            expect(case_row(page, second)).to_contain_text("Arriving, Arno", timeout=WAIT)
            expect(case_row(page, second).locator("form.claim button")).to_be_visible(timeout=WAIT)
        assert pierre.evaluate("window.notReloaded") is True
    finally:
        marie.context.close()
        pierre.context.close()
