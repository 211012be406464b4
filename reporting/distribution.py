"""What happens when a report becomes final, or is amended by an addendum: the result leaves the department.

`report_released(report)` is called by the lifecycle (reporting/reports.py) at the end of `sign` and
`add_addendum`, inside their transaction, so that what must not be lost is written with the signature or not at
all:

- an ORU^R01 (reporting/hl7_oru.py; OBR-25 F when final, C when amended) for every active HL7Endpoint, queued
  in the durable outbound queue (reporting/outbound.py), which delivers it after the commit and retries until
  it is acknowledged or becomes a dead letter;
- the referring clinician is told live that the result is there.

After the commit, the `report_final` signal is sent: the hook for other channels of the result. The EHR API
issue connects its FHIR DiagnosticReport publication to it; a receiver that fails is logged and does not stop
the others or undo the signature. Receivers get `report` and `status` ("final" or "amended").

The PDF (reporting/pdf.py) is rendered when it is asked for, from the report as signed and its addenda, which
never change, so every copy is the same; nothing here waits on it.
"""
import logging
import uuid

from django.db import transaction
from django.dispatch import Signal
from django.urls import NoReverseMatch, reverse

from radiology.notifications import notify_user
from reporting import hl7_oru, outbound
from reporting.choices import SIGNED_STATUSES
from reporting.models import HL7Endpoint, OutboundStatus, Report

logger = logging.getLogger(__name__)

# Sent after the commit that made a report final or added an addendum: report=…, status="final"|"amended".
report_final = Signal()


def report_released(report):
    """Queue the report's distribution in the caller's transaction (see the module docstring)."""
    report = Report.objects.select_related("order__patient", "order__procedure", "order__referring_physician",
                                           "signed_by").get(pk=report.pk)
    if report.status not in SIGNED_STATUSES:
        raise ValueError(f"a {report.get_status_display().lower()} report is not distributed")
    for endpoint in HL7Endpoint.objects.filter(active=True):
        queue_oru(report, endpoint)
    _tell_referring_clinician(report)
    transaction.on_commit(lambda: _send_hook(report.pk))


def queue_oru(report, endpoint):
    """The ORU^R01 for the report as it stands, queued for `endpoint`."""
    control_id = uuid.uuid4().hex[:20]  # MSH-10 is at most 20 characters in v2.5
    try:
        payload = hl7_oru.build_oru(report, control_id=control_id,
                                    receiving_application=endpoint.receiving_application,
                                    receiving_facility=endpoint.receiving_facility)
    except Exception as exc:  # noqa: BLE001 - a fault in building one message must not undo the signature
        # Kept as a dead letter, which alerts the administrators: the result is not silently missing.
        logger.exception("could not build the ORU^R01 of report %s for %s", report.pk, endpoint.name)
        message = outbound.enqueue(endpoint, "", control_id=control_id, report=report)
        message.status, message.last_error = OutboundStatus.DEAD, f"the message could not be built: {exc}"
        message.save(update_fields=["status", "last_error"])
        outbound._alert_dead_letter(message)
        return message
    return outbound.enqueue(endpoint, payload, control_id=control_id, report=report)


def _tell_referring_clinician(report):
    clinician = report.order.referring_physician
    if clinician is None:
        return
    try:
        url = reverse("reporting:report-pdf", args=[report.pk])
    except NoReverseMatch:
        url = ""
    status = "amended" if report.addenda.exists() else "final"
    notify_user(clinician, "report-final",
                f"The report on {report.order.accession_number} ({report.order.procedure.name}) is {status}.",
                report_id=report.pk, accession_number=report.order.accession_number, url=url)


def _send_hook(report_id):
    report = Report.objects.select_related("order__patient", "order__procedure").get(pk=report_id)
    status = "amended" if report.addenda.exists() else "final"
    for receiver, result in report_final.send_robust(sender=Report, report=report, status=status):
        if isinstance(result, Exception):
            logger.error("report_final receiver %s failed for report %s: %r", receiver, report_id, result,
                         exc_info=(type(result), result, result.__traceback__))
