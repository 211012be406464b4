"""Critical-result pages: marking a finding critical (radiologists), the clinician's list of results to
acknowledge, and the open critical results for radiologists and administrators until each is closed. The rules
are reporting/critical.py's; these views only show and call them."""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from radiology.choices import AuditChannel, Role
from radiology.roles import user_role
from reporting import critical
from reporting.access import visible_reports
from reporting.models import CriticalResult

DASHBOARD_ROLES = (Role.RADIOLOGIST, Role.ADMINISTRATOR)


class CriticalResultForm(forms.ModelForm):
    class Meta:
        model = CriticalResult
        fields = ["category", "urgency", "finding"]
        widgets = {"finding": forms.Textarea(attrs={"rows": 4})}


class CloseForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="How the finding was communicated, if it was not acknowledged here.")


@login_required
@require_http_methods(["GET", "POST"])
def critical_mark(request, pk):
    """Mark a finding on the report critical (radiologists)."""
    if user_role(request.user) != Role.RADIOLOGIST:
        raise PermissionDenied("Radiologists mark critical results.")
    report = get_object_or_404(visible_reports(request.user).select_related("order__patient", "order__procedure"),
                               pk=pk)
    form = CriticalResultForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            critical.mark_critical(report, request.user, channel=AuditChannel.WEB, **form.cleaned_data)
        except critical.CriticalResultError as exc:
            error = str(exc)
        else:
            messages.success(request, f"Critical result on {report.order.accession_number} sent to the ordering "
                                      f"clinician; it waits for their acknowledgement.")
            return redirect("reporting:critical-open")
    return render(request, "reporting/critical_mark.html", {"report": report, "form": form, "error": error,
                                                              "existing": report.critical_results.all()},
                  status=400 if error or form.errors else 200)


@login_required
def critical_mine(request):
    """The signed-in clinician's critical results waiting for acknowledgement."""
    return render(request, "reporting/critical_mine.html",
                  {"results": critical.awaiting_acknowledgement(request.user)})


@login_required
@require_POST
def critical_acknowledge(request, pk):
    result = get_object_or_404(CriticalResult, pk=pk, clinician=request.user)
    try:
        critical.acknowledge(result, request.user, channel=AuditChannel.WEB)
    except critical.CriticalResultError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Acknowledged the critical result on {result.report.order.accession_number}.")
    return redirect("reporting:critical-mine")


@login_required
def critical_open(request):
    """Open critical results, until closed (radiologists and administrators)."""
    _dashboard_user(request)
    return render(request, "reporting/critical_open.html",
                  {"results": critical.open_results(), "close_form": CloseForm()})


@login_required
@require_POST
def critical_close(request, pk):
    _dashboard_user(request)
    result = get_object_or_404(CriticalResult, pk=pk)
    form = CloseForm(request.POST)
    form.is_valid()
    try:
        critical.close(result, request.user, note=form.cleaned_data.get("note", ""), channel=AuditChannel.WEB)
    except critical.CriticalResultError as exc:
        messages.error(request, f"{result.report.order.accession_number}: {exc}")
    else:
        messages.success(request, f"Closed the critical result on {result.report.order.accession_number}.")
    return redirect("reporting:critical-open")


def _dashboard_user(request):
    if not (request.user.is_superuser or user_role(request.user) in DASHBOARD_ROLES):
        raise PermissionDenied("The critical results list is for radiologists and administrators.")
