"""Critical results: a finding that is not "sent" but confirmed received (ACR Practice Parameter for
Communication of Diagnostic Imaging Findings).

    marked (radiologist) → clinician notified (live + e-mail) → acknowledged (clinician: who, when) → closed
                                   └─ no acknowledgement within CRITICAL_ESCALATION_MINUTES → escalated
                                      (e-mail to CRITICAL_ESCALATION_EMAIL; radiologist and administrators told
                                      live) → acknowledged late, or closed with a note of how it was communicated

The clinician is the order's referring physician. An order whose referring physician has no account here (only
a name from the EHR) cannot be acknowledged in the portal: it is escalated at once. A result stays on the open
list (`open_results`) until a radiologist or administrator closes it. Every step is a Procedure Record audit event.

E-mails carry the accession number, procedure, category and urgency and a link, not the patient's name or the
finding: e-mail leaves the platform's access control, the portal does not.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome, Role
from radiology.notifications import notify_user
from radiology.roles import user_role
from reporting.choices import ReportStatus
from reporting.models import CriticalCategory, CriticalResult, CriticalUrgency

logger = logging.getLogger(__name__)

MARKING_ROLES = (Role.RADIOLOGIST,)
CLOSING_ROLES = (Role.RADIOLOGIST, Role.ADMINISTRATOR)


class CriticalResultError(Exception):
    """A critical-result action the rules refuse; the message says why."""


@transaction.atomic
def mark_critical(report, user, *, category, urgency, finding, channel):
    """Mark a finding on `report` critical and notify the ordering clinician."""
    if user_role(user) not in MARKING_ROLES:
        raise CriticalResultError("only radiologists mark critical results")
    if report.status == ReportStatus.ENTERED_IN_ERROR:
        raise CriticalResultError("the report was entered in error; mark the finding on the right order's report")
    if category not in CriticalCategory.values:
        raise CriticalResultError(f"unknown category {category!r}")
    if urgency not in CriticalUrgency.values:
        raise CriticalResultError(f"unknown urgency {urgency!r}")
    finding = (finding or "").strip()
    if not finding:
        raise CriticalResultError("say what the finding is, for the clinician")
    order = report.order
    now = timezone.now()
    result = CriticalResult.objects.create(
        report=report, category=category, urgency=urgency, finding=finding, marked_by=user, marked_at=now,
        clinician=order.referring_physician, clinician_name=order.referring_physician_name.replace("^", " ").strip())
    _audit(result, "C", user, channel, what="marked", category=category, urgency=urgency)
    if result.clinician is not None and result.clinician.is_active:
        _notify_clinician(result, now)
        _audit(result, "U", user, channel, what="clinician notified", clinician=result.clinician.get_username())
    else:
        _escalate(result, now, reason="the ordering clinician has no account to acknowledge it in the portal")
    return result


@transaction.atomic
def acknowledge(result, user, *, channel):
    """The clinician confirms they received the critical result."""
    result = CriticalResult.objects.select_for_update().get(pk=result.pk)
    if result.clinician_id != user.pk:
        raise CriticalResultError("only the clinician who was notified acknowledges a critical result")
    if result.acknowledged_at is not None:
        when = timezone.localtime(result.acknowledged_at)
        raise CriticalResultError(f"already acknowledged on {when:%Y-%m-%d %H:%M}")
    if result.closed_at is not None:
        raise CriticalResultError("the critical result was closed")
    result.acknowledged_by, result.acknowledged_at = user, timezone.now()
    result.save(update_fields=["acknowledged_by", "acknowledged_at"])
    _audit(result, "U", user, channel, what="acknowledged", late=result.escalated_at is not None)
    notify_user(result.marked_by, "critical-result-acknowledged",
                f"{_name(user)} acknowledged the critical result on {result.report.order.accession_number}.",
                critical_result_id=result.pk)
    return result


@transaction.atomic
def close(result, user, *, note="", channel):
    """Take the result off the open list. Unacknowledged, it needs a note of how it was communicated (e.g. "told
    Dr Y by phone at 14:05")."""
    if user_role(user) not in CLOSING_ROLES:
        raise CriticalResultError("only radiologists and administrators close critical results")
    result = CriticalResult.objects.select_for_update().get(pk=result.pk)
    if result.closed_at is not None:
        raise CriticalResultError("the critical result is closed already")
    note = (note or "").strip()
    if result.acknowledged_at is None and not note:
        raise CriticalResultError("not acknowledged yet: say how the finding was communicated before closing")
    result.closed_at, result.closed_by, result.closing_note = timezone.now(), user, note
    result.save(update_fields=["closed_at", "closed_by", "closing_note"])
    _audit(result, "U", user, channel, what="closed", acknowledged=result.acknowledged_at is not None)
    return result


def escalate_overdue(*, now=None):
    """Escalate every open critical result not acknowledged CRITICAL_ESCALATION_MINUTES after its notification
    (the periodic task). Each is escalated once; running this twice, or in two processes, escalates nothing twice.
    Returns the escalated results."""
    now = now or timezone.now()
    deadline = now - timedelta(minutes=settings.CRITICAL_ESCALATION_MINUTES)
    overdue = CriticalResult.objects.filter(closed_at__isnull=True, acknowledged_at__isnull=True,
                                            escalated_at__isnull=True, notified_at__lte=deadline)
    escalated = []
    for result in overdue.select_related("report__order__patient", "marked_by", "clinician"):
        with transaction.atomic():
            minutes = settings.CRITICAL_ESCALATION_MINUTES
            if _escalate(result, now, reason=f"not acknowledged within {minutes} minutes"):
                escalated.append(result)
    return escalated


def open_results():
    """The dashboard's list: every critical result not closed, most urgent and oldest first."""
    urgency_rank = {value: rank for rank, value in enumerate(CriticalUrgency.values)}
    results = list(CriticalResult.objects.filter(closed_at__isnull=True).select_related(
        "report__order__patient", "report__order__procedure", "clinician", "marked_by", "acknowledged_by"))
    return sorted(results, key=lambda result: (result.acknowledged_at is not None, urgency_rank[result.urgency],
                                               result.marked_at))


def awaiting_acknowledgement(user):
    """The critical results `user` was notified of and has not acknowledged."""
    return (CriticalResult.objects.filter(clinician=user, acknowledged_at__isnull=True, closed_at__isnull=True)
            .select_related("report__order__patient", "report__order__procedure", "marked_by")
            .order_by("marked_at"))


# ---------------------------------------------------------------------------------------------------------

def _notify_clinician(result, now):
    order = result.report.order
    result.notified_at = now
    result.save(update_fields=["notified_at"])
    url = reverse("reporting:critical-mine")
    notify_user(result.clinician, "critical-result",
                f"Critical result on {order.accession_number} ({order.procedure.name}): "
                f"{result.get_category_display()}, {result.get_urgency_display().lower()}. Please acknowledge.",
                critical_result_id=result.pk, url=url)
    if result.clinician.email:
        subject = f"Critical result to acknowledge: {order.accession_number}"
        body = (f"A radiologist marked a finding critical on order {order.accession_number} "
                f"({order.procedure.name}).\n\nCategory: {result.get_category_display()}\n"
                f"Urgency: {result.get_urgency_display()}\nMarked by: {_name(result.marked_by)}\n\n"
                f"Read and acknowledge it at {settings.PUBLIC_URL}{url}\n\n"
                f"Unacknowledged, it is escalated after {settings.CRITICAL_ESCALATION_MINUTES} minutes.")
        address = result.clinician.email
        transaction.on_commit(lambda: _mail(subject, body, [address]))


def _escalate(result, now, *, reason):
    """Escalate once (a conditional UPDATE decides who does it); False when someone else already did."""
    contacts = [address.strip() for address in settings.CRITICAL_ESCALATION_EMAIL.split(",") if address.strip()]
    contact = ", ".join(contacts)
    done = CriticalResult.objects.filter(pk=result.pk, escalated_at__isnull=True, acknowledged_at__isnull=True,
                                         closed_at__isnull=True).update(escalated_at=now, escalation_contact=contact)
    if not done:
        return False
    result.escalated_at, result.escalation_contact = now, contact
    order = result.report.order
    text = (f"Critical result on {order.accession_number} ({result.get_category_display()}, "
            f"{result.get_urgency_display().lower()}) escalated: {reason}.")
    _audit(result, "U", None, AuditChannel.SYSTEM, outcome=AuditOutcome.MINOR_FAILURE, what="escalated", reason=reason,
           contact=contact)
    if contacts:
        notified = (f"{_name(result.clinician)} was notified at {timezone.localtime(result.notified_at):%Y-%m-%d %H:%M}"
                    if result.notified_at else f"The ordering clinician ({result.clinician_name or 'unknown'}) "
                                               f"could not be notified in the portal")
        body = (f"{text}\n\n{notified}.\nMarked by: {_name(result.marked_by)} at "
                f"{timezone.localtime(result.marked_at):%Y-%m-%d %H:%M}\n\n"
                f"Please make sure the finding reaches the clinical team: {settings.PUBLIC_URL}"
                f"{reverse('reporting:critical-open')}")
        transaction.on_commit(lambda: _mail(f"ESCALATED critical result: {order.accession_number}", body, contacts))
    else:
        logger.warning("critical result %s escalated, but RADIOLOGY_CRITICAL_ESCALATION_EMAIL is not set", result.pk)
    recipients = {result.marked_by, *get_user_model().objects.filter(groups__name=Role.ADMINISTRATOR, is_active=True)}
    for user in recipients:
        notify_user(user, "critical-result-escalated", text, critical_result_id=result.pk,
                    url=reverse("reporting:critical-open"))
    return True


def _mail(subject, body, recipients):
    try:
        send_mail(subject, body, None, recipients)
    except Exception:  # noqa: BLE001 - the notification is also live and the result stays open until closed
        logger.exception("could not e-mail %r to %s", subject, ", ".join(recipients))


def _name(user):
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def _audit(result, action, user, channel, outcome=AuditOutcome.SUCCESS, **detail):
    record_audit_event(AuditEventCode.PROCEDURE_RECORD, action=action, channel=channel,
                       actor=user.get_username() if user else "system", user=user, outcome=outcome,
                       patient=result.report.order.patient, object_type="critical-result",
                       object_id=str(result.pk), accession_number=result.report.order.accession_number, **detail)
