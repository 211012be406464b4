from django import forms
from django.contrib import admin

from reporting.models import Addendum, Macro, Report, ReportTemplate, ReportVersion
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
class ReportAdmin(admin.ModelAdmin):
    """Read-only: reports change through the lifecycle (reporting/reports.py), which keeps versions and audits."""

    list_display = ["order", "status", "author", "signed_by", "signed_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["order__accession_number", "order__patient__mrn"]
    inlines = [ReportVersionInline, AddendumInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
