"""Who sees which reports: the one rule the REST API, the pages and the presence WebSocket share.

Clinicians see the reports on orders they referred (DESIGN.md §4), and only once released: preliminary or
signed. A draft is the radiologist's work in progress. Every other role holding `reporting.view_report` sees
all reports.
"""
from reporting.choices import ReportStatus
from reporting.models import Report
from worklist.access import sees_only_referred_orders

# What a referring clinician may read: released to them, marked PRELIMINARY until signed.
RELEASED_STATUSES = (ReportStatus.PRELIMINARY, ReportStatus.FINAL, ReportStatus.AMENDED)


def visible_reports(user, reports=None):
    """`reports` (all reports by default) narrowed to what `user` may read."""
    reports = Report.objects.all() if reports is None else reports
    if not user.is_authenticated or not user.has_perm("reporting.view_report"):
        return reports.none()
    if sees_only_referred_orders(user):
        return reports.filter(order__referring_physician=user, status__in=RELEASED_STATUSES)
    return reports


def may_edit_reports(user):
    """Radiologists (and administrators, who hold every permission) open the report editor."""
    return user.is_authenticated and user.has_perm("reporting.change_report")
