"""A clinician orders a procedure and follows it live while a technologist books it and marks the patient
arrived, in two headless Chromium contexts against a running `serve`."""
import datetime

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.xdist_group("platform-process")

# A slot two days ahead at a time the demo schedule leaves free.
BOOKING_DAY = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=2)  # serve runs in UTC
BOOKING_START = f"{BOOKING_DAY:%Y-%m-%d}T16:45"
SCREENSHOT = "/tmp/ris-my-orders.png"


def sign_in(page, base_url, username, password):
    page.goto(base_url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_visible()


@pytest.fixture
def second_page(browser):
    """A browser context of its own: another person at another workstation."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


def place_order(page, base_url):
    """Gregory orders an urgent abdominal ultrasound for Jane Doe; returns its accession number."""
    sign_in(page, base_url, "clinician", "demo-clinician")
    page.click("nav >> text=New order")
    page.fill("input[name=q]", "Doe, Ja")
    page.click("form.patient-search button[type=submit]")
    patient = page.locator("fieldset.patients input[type=radio]")
    expect(patient).to_have_count(1)
    expect(page.locator("fieldset.patients")).to_contain_text("DEMO0001")
    patient.check()
    page.select_option("select[name=procedure]", label="US ABDOMEN COMPLETE (USABD)")
    page.check("input[name=priority][value=A]")
    page.fill("textarea[name=reason]", "Right upper quadrant pain <b>since Monday</b>")
    page.click("form.order-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("is placed (urgent)")
    expect(page.locator(".reason")).to_have_text("Right upper quadrant pain <b>since Monday</b>")
    accession = page.locator("dt:text-is('Accession number') + dd").inner_text().strip()
    assert accession
    return accession


def test_a_clinician_orders_and_sees_the_status_change_live(running_platform, page, second_page):
    base_url = running_platform.base_url
    accession = place_order(page, base_url)

    page.click("nav >> text=My orders")
    row = page.locator("table.orders tbody tr", has_text=accession)
    expect(row).to_contain_text("US ABDOMEN COMPLETE")
    expect(row).to_contain_text("Doe, Jane")
    expect(row.locator("td.status")).to_have_text("Requested")
    expect(page.locator("[data-live-orders]")).to_have_attribute("data-live", "on", timeout=10_000)
    # A mark that a reload would wipe: the status must change on this very page.
    page.evaluate("() => { window.stillTheSamePage = true; }")

    # Wilhelm, the technologist, books it from his schedule page.
    technologist = second_page
    sign_in(technologist, base_url, "technologist", "demo-technologist")
    technologist.click("nav >> text=Schedule")
    waiting = technologist.locator("table.requested-orders tbody tr", has_text=accession)
    waiting.locator("select[name=station]").select_option(label="Ultrasound 4")
    waiting.locator("input[name=start]").fill(BOOKING_START)
    waiting.locator("button", has_text="Schedule").click()
    expect(technologist.locator(".messages")).to_contain_text(f"Order {accession}")
    expect(technologist.locator(".messages")).to_contain_text("is booked on Ultrasound 4")

    expect(row.locator("td.status")).to_have_text("Scheduled", timeout=10_000)
    assert page.evaluate("() => window.stillTheSamePage === true")

    # The patient arrives on the day: Wilhelm marks it on that day's schedule of the station.
    technologist.select_option("form.schedule-filter select[name=station]", label="Ultrasound 4 (US_ROOM4, US)")
    technologist.fill("input[name=date]", f"{BOOKING_DAY:%Y-%m-%d}")
    technologist.click("form.schedule-filter button[type=submit]")
    step = technologist.locator("section.station tr", has_text=accession)
    expect(step).to_contain_text("16:45–17:15")
    step.locator("button", has_text="Arrived").click()
    expect(technologist.locator(".messages")).to_contain_text("is now arrived")

    expect(row.locator("td.status")).to_have_text("Arrived", timeout=10_000)
    assert page.evaluate("() => window.stillTheSamePage === true")
    expect(row).to_have_class("priority-A changed")
    page.screenshot(path=SCREENSHOT, full_page=True)
    technologist.screenshot(path="/tmp/ris-schedule.png", full_page=True)


def order_as_technologist(page, procedure):
    page.click("nav >> text=New order")
    page.fill("input[name=q]", "DEMO0002")
    page.click("form.patient-search button[type=submit]")
    page.locator("fieldset.patients input[type=radio]").check()
    page.select_option("select[name=procedure]", label=procedure)
    page.fill("textarea[name=reason]", "Follow-up")
    page.click("form.order-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("is placed")
    return page.locator("dt:text-is('Accession number') + dd").inner_text().strip()


def book_in_calendar(page, accession, start):
    option = page.locator("select[name=order] option", has_text=accession)
    page.select_option("select[name=order]", value=option.get_attribute("value"))
    page.fill("form.book-slot input[name=start]", start)
    page.click("form.book-slot button[type=submit]")


def test_the_station_calendar_refuses_a_double_booking(running_platform, page):
    sign_in(page, running_platform.base_url, "technologist", "demo-technologist")
    first = order_as_technologist(page, "CT CHEST WO CONTRAST (CTCHESTWO)")
    second = order_as_technologist(page, "CT HEAD WO CONTRAST (CTHEADWO)")

    page.click("nav >> text=Station calendar")
    page.select_option("form.calendar-filter select[name=station]", label="CT scanner 1 (CT_ROOM1, CT)")
    page.fill("input[name=week]", f"{BOOKING_DAY:%Y-%m-%d}")
    page.click("form.calendar-filter button[type=submit]")
    book_in_calendar(page, first, f"{BOOKING_DAY:%Y-%m-%d}T18:00")
    expect(page.locator(".messages")).to_contain_text(f"Order {first}")
    block = page.locator("td.booked", has_text=first)
    expect(block).to_contain_text("18:00–18:15")

    book_in_calendar(page, second, f"{BOOKING_DAY:%Y-%m-%d}T18:05")
    expect(page.locator(".messages li.error")).to_have_text(
        f"Not booked: CT scanner 1 is booked {BOOKING_DAY:%Y-%m-%d} 18:00–18:15 for order {first}.")
    expect(page.locator("td.booked", has_text=second)).to_have_count(0)
    page.screenshot(path="/tmp/ris-calendar.png", full_page=True)
