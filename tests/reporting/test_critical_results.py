"""Critical results (reporting/critical.py): marked by the radiologist, the ordering clinician notified live and by
e-mail, acknowledged (who, when), escalated to the configured contact when not acknowledged in time, listed for
radiologists and administrators until closed; every step audited."""
import datetime
from unittest import mock

import pytest
from radiology.celery import app as celery_app
from radiology.choices import AuditChannel, AuditEventCode, Role
from radiology.models import AuditEvent
from reporting import critical, critical_tasks, reports
from reporting.models import CriticalCategory, CriticalResult, CriticalUrgency
from tests.factories import UserFactory
from tests.worklist.factories import make_readable_order

pytestmark = pytest.mark.django_db
WEB = AuditChannel.WEB


@pytest.fixture
def live(monkeypatch):
    """The live notifications sent, as (user, kind, message)."""
    sent = []
    monkeypatch.setattr(critical, "notify_user",
                        lambda user, kind, message, **fields: sent.append((user, kind, message)))
    return sent


@pytest.fixture
def report(radiologist, clinician):
    """Marie's draft on an order Gregory placed."""
    order = make_readable_order(referring_physician=clinician)
    return reports.start_report(order, radiologist, channel=WEB)


@pytest.fixture
def escalation(settings):
    settings.CRITICAL_ESCALATION_MINUTES = 30
    settings.CRITICAL_ESCALATION_EMAIL = "oncall-radiology@hospital.test"


def mark(report, radiologist, **options):
    return critical.mark_critical(report, radiologist, channel=WEB, **{
        "category": CriticalCategory.PNEUMOTHORAX, "urgency": CriticalUrgency.IMMEDIATE,
        "finding": "Large right tension pneumothorax; chest drain now.", **options})


def audited(result, what):
    return AuditEvent.objects.filter(code=AuditEventCode.PROCEDURE_RECORD, object_type="critical-result",
                                     object_id=str(result.pk), detail__what=what).exists()


def test_marking_a_finding_critical_notifies_the_ordering_clinician_live_and_by_email(
        report, radiologist, clinician, live, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = mark(report, radiologist)

    assert result.clinician == clinician and result.notified_at is not None
    assert [(user, kind) for user, kind, _ in live] == [(clinician, "critical-result")]
    assert mailoutbox[0].to == [clinician.email]
    assert report.order.accession_number in mailoutbox[0].subject
    # The e-mail leaves the platform's access control: it carries no patient name and no finding.
    assert report.order.patient.family_name not in mailoutbox[0].body
    assert "tension pneumothorax" not in mailoutbox[0].body
    assert audited(result, "marked") and audited(result, "clinician notified")


def test_only_radiologists_mark_critical_results(report, clinician):
    with pytest.raises(critical.CriticalResultError, match="only radiologists"):
        mark(report, clinician)


def test_a_critical_result_needs_a_known_category_and_the_finding(report, radiologist):
    with pytest.raises(critical.CriticalResultError, match="unknown category"):
        mark(report, radiologist, category="bad news")
    with pytest.raises(critical.CriticalResultError, match="say what the finding is"):
        mark(report, radiologist, finding="  ")
    assert not CriticalResult.objects.exists()


def test_the_clinician_acknowledges_and_who_and_when_are_recorded(report, radiologist, clinician, live):
    result = mark(report, radiologist)

    critical.acknowledge(result, clinician, channel=WEB)

    result.refresh_from_db()
    assert result.acknowledged_by == clinician and result.acknowledged_at is not None
    assert (radiologist, "critical-result-acknowledged") in [(user, kind) for user, kind, _ in live]
    assert audited(result, "acknowledged")


def test_only_the_notified_clinician_acknowledges(report, radiologist, live):
    result = mark(report, radiologist)

    with pytest.raises(critical.CriticalResultError, match="only the clinician who was notified"):
        critical.acknowledge(result, UserFactory(username="house", role=Role.CLINICIAN), channel=WEB)


def test_unacknowledged_after_the_configured_time_it_escalates_to_the_contact(
        report, radiologist, administrator, escalation, live, mailoutbox, django_capture_on_commit_callbacks):
    result = mark(report, radiologist)
    mailoutbox.clear()

    assert critical.escalate_overdue(now=result.notified_at + datetime.timedelta(minutes=29)) == []
    with django_capture_on_commit_callbacks(execute=True):
        escalated = critical.escalate_overdue(now=result.notified_at + datetime.timedelta(minutes=31))

    assert escalated == [result]
    result.refresh_from_db()
    assert result.escalation_contact == "oncall-radiology@hospital.test"
    assert result.escalated_at == result.notified_at + datetime.timedelta(minutes=31)
    assert mailoutbox[0].to == ["oncall-radiology@hospital.test"] and "ESCALATED" in mailoutbox[0].subject
    told = {(user, kind) for user, kind, _ in live}
    assert {(radiologist, "critical-result-escalated"), (administrator, "critical-result-escalated")} <= told
    assert audited(result, "escalated")


def test_an_escalation_happens_once(report, radiologist, escalation, live):
    result = mark(report, radiologist)
    later = result.notified_at + datetime.timedelta(hours=1)

    assert critical.escalate_overdue(now=later) == [result]
    assert critical.escalate_overdue(now=later + datetime.timedelta(hours=1)) == []


def test_an_acknowledged_result_is_not_escalated(report, radiologist, clinician, escalation, live):
    result = mark(report, radiologist)
    critical.acknowledge(result, clinician, channel=WEB)

    assert critical.escalate_overdue(now=result.notified_at + datetime.timedelta(hours=1)) == []


def test_the_periodic_task_escalates_when_the_clock_has_moved_on(report, radiologist, escalation, live):
    result = mark(report, radiologist)
    an_hour_later = result.notified_at + datetime.timedelta(hours=1)

    with mock.patch("django.utils.timezone.now", return_value=an_hour_later):
        critical_tasks.escalate_overdue_critical_results()

    result.refresh_from_db()
    assert result.escalated_at == an_hour_later


def test_the_escalation_runs_on_the_beat_schedule():
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}

    assert "reporting.critical_tasks.escalate_overdue_critical_results" in scheduled
    assert "reporting.critical_tasks.escalate_overdue_critical_results" in celery_app.tasks


def test_a_referring_physician_without_an_account_means_escalation_at_once(radiologist, escalation, live):
    order = make_readable_order(referring_physician_name="Grey^Meredith")
    report = reports.start_report(order, radiologist, channel=WEB)

    result = mark(report, radiologist)

    assert result.clinician is None and result.escalated_at is not None
    assert result.clinician_name == "Grey Meredith"


def test_a_result_stays_on_the_open_list_until_closed(report, radiologist, clinician, live):
    result = mark(report, radiologist)
    critical.acknowledge(result, clinician, channel=WEB)
    assert critical.open_results() == [result]

    critical.close(result, radiologist, channel=WEB)

    assert critical.open_results() == []
    assert audited(result, "closed")


def test_an_unacknowledged_result_is_closed_only_with_a_note_of_how_it_was_communicated(report, radiologist, live):
    result = mark(report, radiologist)

    with pytest.raises(critical.CriticalResultError, match="say how the finding was communicated"):
        critical.close(result, radiologist, channel=WEB)
    critical.close(result, radiologist, note="Told Dr Morales by phone at 14:05", channel=WEB)

    result.refresh_from_db()
    assert result.closed_at is not None and result.closing_note == "Told Dr Morales by phone at 14:05"


# The pages ------------------------------------------------------------------------------------------------

def test_the_clinician_sees_and_acknowledges_their_critical_results_in_the_portal(report, radiologist, clinician,
                                                                                   live, client):
    result = mark(report, radiologist)
    client.force_login(clinician)

    page = client.get("/reports/critical/mine/")
    assert page.status_code == 200 and "Large right tension pneumothorax" in page.content.decode()

    response = client.post(f"/reports/critical/{result.pk}/acknowledge/")

    assert response.status_code == 302
    result.refresh_from_db()
    assert result.acknowledged_by == clinician
    assert "Large right tension pneumothorax" not in client.get("/reports/critical/mine/").content.decode()


def test_the_radiologist_marks_a_finding_critical_from_the_form(report, radiologist, clinician, live, client):
    client.force_login(radiologist)

    response = client.post(f"/reports/{report.pk}/critical/", {
        "category": CriticalCategory.PULMONARY_EMBOLISM, "urgency": CriticalUrgency.URGENT,
        "finding": "Segmental <b>PE</b> on the right."})

    assert response.status_code == 302
    result = CriticalResult.objects.get()
    assert (result.category, result.clinician) == (CriticalCategory.PULMONARY_EMBOLISM, clinician)
    page = client.get("/reports/critical/").content.decode()
    assert report.order.accession_number in page and "Pulmonary embolism" in page


def test_the_finding_is_shown_escaped(report, radiologist, clinician, live, client):
    mark(report, radiologist, finding="Segmental <script>alert(1)</script> PE")
    client.force_login(clinician)

    page = client.get("/reports/critical/mine/").content.decode()

    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_the_open_list_is_for_radiologists_and_administrators(clinician, client):
    client.force_login(clinician)

    assert client.get("/reports/critical/").status_code == 403


def test_clinicians_cannot_mark_critical_results(report, clinician, client):
    client.force_login(clinician)

    assert client.post(f"/reports/{report.pk}/critical/", {"category": "pneumothorax", "urgency": "immediate",
                                                           "finding": "x"}).status_code == 403


# Under `manage.py serve` -----------------------------------------------------------------------------------

OVERDUE_CRITICAL_RESULT = """
import datetime
from django.utils import timezone
from radiology.choices import AuditChannel, Role
from reporting import critical, reports
from reporting.models import CriticalResult
from tests.factories import PatientFactory, UserFactory
from tests.worklist.factories import make_readable_order
radiologist = UserFactory(username="marie", role=Role.RADIOLOGIST)
clinician = UserFactory(username="gregory", role=Role.CLINICIAN)
order = make_readable_order(referring_physician=clinician)
report = reports.start_report(order, radiologist, channel=AuditChannel.WEB)
result = critical.mark_critical(report, radiologist, category="pneumothorax", urgency="immediate",
                                finding="Tension pneumothorax", channel=AuditChannel.WEB)
CriticalResult.objects.filter(pk=result.pk).update(notified_at=timezone.now() - datetime.timedelta(hours=1))
"""


def escalation_contacts(data_dir):
    """What the platform's own database says (read directly: starting a `manage.py shell` per look is slow)."""
    import sqlite3

    with sqlite3.connect(data_dir / "radiology.sqlite3", timeout=10) as database:
        return [row[0] for row in database.execute(
            "SELECT escalation_contact FROM reporting_criticalresult WHERE escalated_at IS NOT NULL")]


@pytest.mark.xdist_group("platform-process")
def test_serve_escalates_overdue_critical_results_by_itself(tmp_path):
    import time

    from tests.platform_process import PlatformProcess, manage

    platform = PlatformProcess(tmp_path, seed=False, RADIOLOGY_CRITICAL_ESCALATION_CHECK_SECONDS="1",
                               RADIOLOGY_CRITICAL_ESCALATION_EMAIL="oncall@hospital.test").start()
    try:
        manage(platform.env, "shell", "--no-imports", "-c", OVERDUE_CRITICAL_RESULT)
        for _ in range(300):  # the beat thread runs the escalation every second
            if escalation_contacts(tmp_path):
                break
            time.sleep(0.1)
    finally:
        platform.stop()

    assert escalation_contacts(tmp_path) == ["oncall@hospital.test"], platform.log()
    # With no mail server configured, the escalation e-mail is kept as a file in the data dir.
    assert any("oncall@hospital.test" in mail.read_text() for mail in (tmp_path / "mail").iterdir())
