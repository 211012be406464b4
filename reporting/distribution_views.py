"""The PDF of a signed report, for whoever may read the report (reporting/access.py); every download is an
Export audit event."""
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode
from reporting import pdf
from reporting.access import visible_reports


@login_required
@require_GET
def report_pdf(request, pk):
    report = get_object_or_404(visible_reports(request.user).select_related(
        "order__patient", "order__procedure", "order__referring_physician", "signed_by"), pk=pk)
    try:
        document = pdf.render_report_pdf(report)
    except pdf.NotSigned as exc:
        return HttpResponse(f"No PDF: {exc}.", status=409, content_type="text/plain; charset=utf-8")
    except pdf.PdfUnavailable as exc:
        return HttpResponse(f"The PDF cannot be made on this server: {exc}", status=503,
                            content_type="text/plain; charset=utf-8")
    record_audit_event(AuditEventCode.EXPORT, action="R", channel=AuditChannel.WEB, actor=request.user.get_username(),
                       user=request.user, source_address=request.META.get("REMOTE_ADDR", ""),
                       patient=report.order.patient, object_type="report", object_id=report.order.accession_number,
                       format="pdf", status=report.status)
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{pdf.filename(report)}"'
    return response
