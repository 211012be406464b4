"""A person signs in and finds a patient, in headless Chromium against a running `serve`."""
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.xdist_group("platform-process")


def sign_in(page, base_url, username, password):
    page.goto(base_url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_a_clinician_signs_in_and_finds_a_patient(running_platform, page):
    sign_in(page, running_platform.base_url, "clinician", "demo-clinician")
    expect(page.locator(".who")).to_contain_text("Referring clinician")
    page.fill("input[name=q]", "Doe, Ja")
    page.click("form.search button[type=submit]")
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Doe, Jane")
    expect(rows.first).to_contain_text("DEMO0001")


def test_the_page_connects_to_live_notifications(running_platform, page):
    sign_in(page, running_platform.base_url, "radiologist", "demo-radiologist")
    expect(page.locator("#live-status")).to_have_text("live", timeout=10_000)


def test_a_wrong_password_is_shown_on_the_form(running_platform, page):
    sign_in(page, running_platform.base_url, "clinician", "not-the-password")
    expect(page.locator(".form-error")).to_contain_text("correct username and password")


def test_an_administrator_reaches_the_admin_site(running_platform, page):
    sign_in(page, running_platform.base_url, "admin", "demo-admin")
    page.click("text=Administration")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.click("a[href='/admin/radiology/patient/']")
    expect(page.locator("#result_list")).to_contain_text("DEMO0003")
