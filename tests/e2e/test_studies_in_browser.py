"""A radiologist finds a study and sees its series thumbnails, in headless Chromium against a running `serve`."""
import pytest
from playwright.sync_api import expect
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.archive.factories import bundled_file_path
from tests.platform_process import manage

pytestmark = pytest.mark.xdist_group("platform-process")

PATIENT_ID = "E2E-STUDIES"


@pytest.fixture(scope="module")
def archived_study(running_platform, tmp_path_factory):
    """A CT and an MR series of one study (pydicom's CT_small.dcm and MR_small.dcm with fresh UIDs), imported
    into the running platform's archive."""
    folder = tmp_path_factory.mktemp("e2e-study")
    study_uid = generate_uid()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        dataset = dcmread(bundled_file_path(name))
        dataset.StudyInstanceUID = study_uid
        dataset.SeriesInstanceUID = generate_uid()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.PatientID = PATIENT_ID
        dataset.PatientName = "Browser^Barbara"
        dataset.StudyDescription = "CT and MR for the browser test"
        dataset.save_as(folder / name, enforce_file_format=True)
    result = manage(running_platform.env, "import_dicom", "--quiet", str(folder))
    assert "2 stored" in result.stdout, result.stdout + result.stderr
    return study_uid


def sign_in(page, base_url, username, password):
    page.goto(base_url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_a_radiologist_finds_a_study_and_sees_its_thumbnails(running_platform, archived_study, page):
    sign_in(page, running_platform.base_url, "radiologist", "demo-radiologist")
    page.click("nav >> text=Studies")
    page.fill("input[name=patient_name]", "browser^b")
    page.click("form.study-search button[type=submit]")
    rows = page.locator("table.studies tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(PATIENT_ID)
    expect(rows.first).to_contain_text("CT, MR")

    rows.first.locator("a").click()
    expect(page.locator("h1")).to_contain_text("Browser, Barbara")
    expect(page.locator(".uid").first).to_have_text(archived_study)
    thumbnails = page.locator("img.thumbnail")
    expect(thumbnails).to_have_count(2)
    for index in range(2):
        thumbnails.nth(index).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumbnail')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=15_000)
    assert thumbnails.first.evaluate("image => image.naturalWidth") == 128
