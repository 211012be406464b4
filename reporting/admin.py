import io
import zipfile

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.text import slugify

from radiology.admin import ReadOnlyAdmin
from reporting.forms import MRRTUploadForm
from reporting.models import Addendum, Macro, Report, ReportTemplate, ReportVersion
from reporting.mrrt import MRRTError, export_mrrt, import_mrrt
from reporting.templates import check_sections


class ReportTemplateForm(forms.ModelForm):
    class Meta:
        model = ReportTemplate
        fields = "__all__"

    def clean_sections(self):
        return check_sections(self.cleaned_data["sections"])


@admin.register(ReportTemplate)
class ReportTemplateAdmin(admin.ModelAdmin):
    form = ReportTemplateForm
    list_display = ["name", "modality", "procedure", "active", "updated_at"]
    list_filter = ["modality", "active"]
    search_fields = ["name"]
    actions = ["export_mrrt"]
    # Adds "Import MRRT template" beside "Add".
    change_list_template = "admin/reporting/reporttemplate/change_list.html"

    def get_urls(self):
        return [path("import-mrrt/", self.admin_site.admin_view(self.import_mrrt_view),
                     name="reporting_reporttemplate_import_mrrt"), *super().get_urls()]

    def import_mrrt_view(self, request):
        """Upload an IHE MRRT file (RadReport); a file that is not valid MRRT is refused with the reason."""
        if not self.has_add_permission(request):
            return redirect("admin:reporting_reporttemplate_changelist")
        form = MRRTUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                template = import_mrrt(data["file"].read(), modality=data["modality"].upper(),
                                       procedure=data["procedure"], replace=data["replace"])
            except MRRTError as exc:
                form.add_error("file", f"Not imported: {exc}.")
            else:
                messages.success(request, f"Imported \u201c{template.name}\u201d with {len(template.sections)} "
                                          f"sections.")
                return redirect("admin:reporting_reporttemplate_change", template.pk)
        return TemplateResponse(request, "admin/reporting/reporttemplate/import_mrrt.html", {
            **self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
            "title": "Import an MRRT template"})

    @admin.action(description="Export as IHE MRRT (HTML)")
    def export_mrrt(self, request, queryset):
        templates = list(queryset)
        if len(templates) == 1:
            response = HttpResponse(export_mrrt(templates[0]), content_type="text/html; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{_file_name(templates[0])}"'
            return response
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for template in templates:
                archive.writestr(_file_name(template), export_mrrt(template))
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="mrrt-templates.zip"'
        return response


def _file_name(template):
    return f"{slugify(template.name) or 'template'}-{template.pk}.html"


@admin.register(Macro)
class MacroAdmin(admin.ModelAdmin):
    list_display = ["name", "owner"]
    search_fields = ["name", "text"]


class ReportVersionInline(admin.TabularInline):
    model = ReportVersion
    fields = ["version", "status", "saved_by", "saved_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class AddendumInline(admin.TabularInline):
    model = Addendum
    fields = ["signed_at", "author", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    """Read-only: reports change through the lifecycle (reporting/reports.py), which keeps versions and audits."""

    list_display = ["order", "status", "author", "signed_by", "signed_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["order__accession_number", "order__patient__mrn"]
    inlines = [ReportVersionInline, AddendumInline]


# ---------------------------------------------------------------------------------------------------------
# Distribution (HL7 endpoints, the outbound queue) and critical results.

from django.contrib import messages as admin_messages  # noqa: E402

from reporting import outbound  # noqa: E402
from reporting.models import CriticalResult, HL7Endpoint, OutboundMessage, OutboundStatus  # noqa: E402


@admin.register(HL7Endpoint)
class HL7EndpointAdmin(admin.ModelAdmin):
    """Receivers of ORU^R01 results; each active one gets every final and amended report."""

    list_display = ["name", "host", "port", "receiving_application", "receiving_facility", "active"]
    list_filter = ["active"]
    search_fields = ["name", "host"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    """The outbound queue, read-only: its status shows what was delivered, what waits for a retry and what is a
    dead letter. "Send again" puts dead letters back in the queue."""

    list_display = ["control_id", "message_type", "endpoint", "report", "status", "attempts", "next_attempt_at",
                    "sent_at", "created_at"]
    list_filter = ["status", "endpoint"]
    search_fields = ["control_id", "report__order__accession_number", "last_error"]
    readonly_fields = ["endpoint", "report", "message_type", "control_id", "status", "attempts", "next_attempt_at",
                       "last_error", "ack", "created_at", "sent_at", "payload_segments"]
    exclude = ["payload"]
    actions = ["send_again"]

    @admin.display(description="payload")
    def payload_segments(self, message):
        from django.utils.html import format_html_join

        return format_html_join("", "<div><code>{}</code></div>", ((segment,) for segment in message.payload.split("\r")
                                                                    if segment))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send again (dead letters and failed messages)")
    def send_again(self, request, queryset):
        requeued = sum(outbound.requeue(message, request.user)
                       for message in queryset.filter(status__in=[OutboundStatus.DEAD, OutboundStatus.FAILED]))
        self.message_user(request, f"{requeued} message(s) queued again.", admin_messages.SUCCESS)


@admin.register(CriticalResult)
class CriticalResultAdmin(ReadOnlyAdmin):
    """Read-only: critical results move through reporting/critical.py, which notifies, escalates and audits."""

    list_display = ["report", "category", "urgency", "marked_by", "marked_at", "clinician", "acknowledged_at",
                    "escalated_at", "closed_at"]
    list_filter = ["urgency", "category"]
    search_fields = ["report__order__accession_number", "report__order__patient__mrn"]
