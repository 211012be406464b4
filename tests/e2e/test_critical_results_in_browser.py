"""A radiologist marks a finding critical; the ordering clinician, already on the portal, is told live, opens
the list of results to acknowledge and acknowledges; the radiologists' open list shows who acknowledged. Two
headless Chromium contexts against a running `serve`."""
import json

import pytest
from playwright.sync_api import expect

from tests.e2e.test_ris_in_browser import sign_in
from tests.platform_process import manage

pytestmark = pytest.mark.xdist_group("platform-process")

# Run inside the platform's `manage.py shell`: a case whose images arrived, ordered by the demo clinician, with
# the demo radiologist's draft report on it.
MAKE_DRAFT = """
import json
from django.contrib.auth import get_user_model
from radiology.choices import AuditChannel
from reporting import reports
from tests.worklist.factories import make_readable_order
users = get_user_model().objects
order = make_readable_order(referring_physician=users.get(username="clinician"))
report = reports.start_report(order, users.get(username="radiologist"), channel=AuditChannel.SYSTEM)
print(json.dumps({"report": report.pk, "accession": order.accession_number}))
"""


def test_a_critical_result_reaches_the_clinician_live_and_is_acknowledged(running_platform, page, browser):
    base_url = running_platform.base_url
    case = json.loads(manage(running_platform.env, "shell", "--no-imports", "-c", MAKE_DRAFT)
                      .stdout.strip().splitlines()[-1])

    # Gregory, the referring clinician, is on the portal.
    clinician = page
    sign_in(clinician, base_url, "clinician", "demo-clinician")
    expect(clinician.locator("#live-status")).to_have_text("live", timeout=10_000)

    # Marie marks a finding on her report critical.
    context = browser.new_context()
    radiologist = context.new_page()
    try:
        sign_in(radiologist, base_url, "radiologist", "demo-radiologist")
        radiologist.goto(f"{base_url}/reports/{case['report']}/critical/")
        radiologist.select_option("select[name=category]", label="Pneumothorax")
        radiologist.select_option("select[name=urgency]", label="Immediate (critical)")
        radiologist.fill("textarea[name=finding]", "Large right <b>tension</b> pneumothorax; chest drain now.")
        radiologist.click("form.critical-mark button[type=submit]")
        expect(radiologist.locator(".messages")).to_contain_text("waits for their acknowledgement")

        notice = clinician.locator("#notifications .notification.critical-result")
        expect(notice).to_contain_text(f"Critical result on {case['accession']}", timeout=10_000)

        clinician.click("nav >> text=Critical results")
        row = clinician.locator("table.critical-results tbody tr", has_text=case["accession"])
        expect(row.locator("td.finding")).to_have_text("Large right <b>tension</b> pneumothorax; chest drain now.")
        row.locator("button", has_text="Acknowledge").click()
        expect(clinician.locator(".messages")).to_contain_text(f"Acknowledged the critical result on "
                                                               f"{case['accession']}")
        expect(clinician.locator("table.critical-results tbody tr", has_text=case["accession"])).to_have_count(0)

        radiologist.goto(f"{base_url}/reports/critical/")
        open_row = radiologist.locator("table.critical-results tbody tr", has_text=case["accession"])
        expect(open_row.locator("td").first).to_have_text("acknowledged")
        expect(open_row).to_contain_text("by Gregory House")
    finally:
        context.close()
