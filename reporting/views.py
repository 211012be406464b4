"""The reporting pages: the radiologist's report editor for an order, a report as the referring clinician
reads it, and each saved version. The editor writes through the REST API (static/js/report-editor.js: autosave
with the version, preliminary, sign); the pages here show, start reports and take addenda, all through
reporting.reports."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from archive.models import Study
from archive.studies import series_of
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode
from radiology.step_up import StepUpFailed
from reporting import reports
from reporting.access import may_edit_reports, visible_reports
from reporting.choices import EDITABLE_STATUSES, SIGNED_STATUSES, FieldType, ReportStatus
from reporting.forms import AddendumForm
from reporting.models import STANDARD_SECTIONS, Macro, Report
from worklist.models import Order
from worklist.reading import ClaimRefused

# Enough history to compare with; older studies are on the patient's study list.
PRIORS_SHOWN = 10


def _editor_only(view):
    def check(request, *args, **kwargs):
        if not may_edit_reports(request.user):
            raise PermissionDenied("The report editor is for radiologists.")
        return view(request, *args, **kwargs)
    check.__name__, check.__doc__ = view.__name__, view.__doc__
    return login_required(check)


@_editor_only
@require_GET
def editor(request, order_id):
    order = _order(order_id)
    report = Report.objects.filter(order=order).select_related("author", "signed_by", "template").first()
    return _editor_page(request, order, report, AddendumForm())


@_editor_only
@require_POST
def start(request, order_id):
    """Start the report: the case is claimed for the radiologist, the sections filled from the template."""
    order = _order(order_id)
    try:
        reports.start_report(order, request.user, channel=AuditChannel.WEB)
    except (reports.ReportError, ClaimRefused) as refusal:
        messages.error(request, f"The report was not started: {refusal}.")
    return redirect("reporting:editor", order_id=order.pk)


@_editor_only
@require_POST
def addendum_create(request, pk):
    report = get_object_or_404(Report.objects.select_related("order", "author", "signed_by", "template"), pk=pk)
    form = AddendumForm(request.POST)
    if form.is_valid():
        try:
            reports.add_addendum(report, request.user, text=form.cleaned_data["text"],
                                 password=form.cleaned_data["password"], channel=AuditChannel.WEB)
        except StepUpFailed as refusal:
            form.add_error("password", str(refusal))
        except reports.ReportError as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, "The addendum is signed and added to the report.")
            return redirect("reporting:editor", order_id=report.order_id)
    return _editor_page(request, _order(report.order_id), report, form, status=400)


@login_required
@require_GET
def report_detail(request, pk):
    """The report as the referring clinician reads it: released text, marked PRELIMINARY until signed."""
    report = get_object_or_404(visible_reports(request.user, Report.objects.select_related(
        "order__patient", "order__procedure", "order__referring_physician", "author", "signed_by", "template")),
        pk=pk)
    _audit(request, report)
    return render(request, "reporting/report_detail.html", {
        "report": report, "order": report.order, "sections": report_sections(report),
        "addenda": report.addenda.select_related("author"), "is_preliminary": report.status == ReportStatus.PRELIMINARY,
        "may_edit": may_edit_reports(request.user)})


@login_required
@require_GET
def version_detail(request, pk, version):
    if not request.user.has_perm("reporting.view_reportversion"):
        raise PermissionDenied("Report versions are for radiologists.")
    report = get_object_or_404(visible_reports(request.user, Report.objects.select_related(
        "order__patient", "order__procedure", "template")), pk=pk)
    saved = get_object_or_404(report.versions.select_related("saved_by"), version=version)
    _audit(request, report, version=saved.version)
    return render(request, "reporting/version_detail.html", {
        "report": report, "order": report.order, "saved": saved,
        "sections": report_sections(report, sections=saved.sections, fields=saved.fields)})


def report_sections(report, *, sections=None, fields=None, template=None):
    """The report's sections in reading order, each {"key", "title", "text", "fields": [field + "value"]}:
    the standard sections first (Clinical information … Recommendation), then the template's own."""
    sections = report.sections if sections is None else sections
    values = report.fields if fields is None else fields
    template = template or report.template
    template_sections = {section["key"]: section for section in (template.sections if template else [])}
    titles = dict(STANDARD_SECTIONS)
    keys = [key for key, _ in STANDARD_SECTIONS if key in sections or key in template_sections]
    keys += [key for key in template_sections if key not in keys]
    keys += [key for key in sections if key not in keys]
    layout = []
    for key in keys:
        section = template_sections.get(key, {})
        layout.append({
            "key": key,
            "title": section.get("title") or titles.get(key) or key.replace("_", " ").capitalize(),
            "text": str(sections.get(key, "") or ""),
            "fields": [{**field, "type": field.get("type", FieldType.TEXT),
                        "value": "" if values.get(field["key"]) is None else str(values.get(field["key"]))}
                       for field in section.get("fields", [])],
        })
    return layout


def _editor_page(request, order, report, addendum_form, status=200):
    editable = (report is not None and report.status in EDITABLE_STATUSES and report.author_id == request.user.pk)
    context = {
        "order": order, "report": report, "editable": editable, "addendum_form": addendum_form,
        "study": order.study, "series_list": series_of(order.study) if order.study_id else [],
        "priors": _priors(order), "macros": _macros(request.user),
    }
    if report is not None:
        _audit(request, report)
        context.update({
            "sections": report_sections(report),
            "signed": report.status in SIGNED_STATUSES,
            "addenda": report.addenda.select_related("author"),
            "versions": report.versions.select_related("saved_by").order_by("-version"),
            "editor_config": {
                "reportId": report.pk, "version": report.version, "status": report.status,
                "editable": editable,
                "apiUrl": reverse("report-detail", args=[report.pk]),
                "presencePath": f"/ws/reports/{report.pk}/presence/",
            },
        })
    return render(request, "reporting/editor.html", context, status=status)


def _order(order_id):
    return get_object_or_404(Order.objects.select_related(
        "patient", "procedure", "referring_physician", "study", "claimed_by"), pk=order_id)


def _priors(order):
    """The patient's other studies, newest first, each with its signed reports as text."""
    studies = list(Study.objects.filter(patient=order.patient).exclude(pk=order.study_id)
                   .order_by("-study_date", "-study_time", "-pk")[:PRIORS_SHOWN])
    signed = (Report.objects.filter(order__study__in=studies, status__in=SIGNED_STATUSES)
              .select_related("order__procedure").prefetch_related("addenda__author"))
    by_study = {}
    for report in signed:
        by_study.setdefault(report.order.study_id, []).append(
            {"report": report, "procedure": report.order.procedure.name, "text": reports.full_text(report)})
    return [{"study": study, "reports": by_study.get(study.pk, [])} for study in studies]


def _macros(user):
    """Shared macros and the user's own; an own macro of the same name replaces the shared one."""
    chosen = {}
    for macro in Macro.objects.filter(Q(owner__isnull=True) | Q(owner=user)).order_by("owner_id", "name"):
        if macro.name not in chosen or macro.owner_id is not None:
            chosen[macro.name] = {"name": macro.name, "text": macro.text, "own": macro.owner_id is not None}
    return sorted(chosen.values(), key=lambda macro: macro["name"].lower())


def _audit(request, report, **detail):
    record_audit_event(
        AuditEventCode.PROCEDURE_RECORD, action="R", channel=AuditChannel.WEB, actor=request.user.get_username(),
        user=request.user, source_address=request.META.get("REMOTE_ADDR", ""), patient=report.order.patient,
        object_type="report", object_id=report.order.accession_number, **detail)
