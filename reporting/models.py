"""Reports on imaging orders: templates and macros, the report with every saved version kept, and addenda.

A report changes only through reporting/reports.py (the lifecycle: draft → preliminary → final, addenda,
entered in error); a final report is never changed again.
"""
from django.conf import settings
from django.db import models

from reporting.choices import ReportStatus

# The sections of a radiology report, in the order they are shown (RSNA / IHE MRRT practice).
STANDARD_SECTIONS = [
    ("clinical_information", "Clinical information"),
    ("technique", "Technique"),
    ("comparison", "Comparison"),
    ("findings", "Findings"),
    ("impression", "Impression"),
    ("recommendation", "Recommendation"),
]


class ReportTemplate(models.Model):
    """A structured report template chosen by procedure and modality.

    `sections` is a list of {"key", "title", "default_text", "fields": [{"key", "label", "type", "options",
    "unit", "default"}]}, validated by reporting.templates.check_sections."""

    name = models.CharField(max_length=128)
    modality = models.CharField(max_length=16, blank=True, default="", help_text="Empty fits any modality.")
    procedure = models.ForeignKey("worklist.ProcedureType", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="report_templates", help_text="Empty fits any procedure.")
    sections = models.JSONField(default=list)
    mrrt_identifier = models.CharField(max_length=255, blank=True, default="",
                                       help_text="The MRRT template's identifier when imported.")
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Macro(models.Model):
    """A text snippet inserted by name, keyboard shortcut or voice command; shared when it has no owner."""

    name = models.CharField(max_length=64)
    text = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="report_macros")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name", "owner"], name="macro_name_owner_unique")]

    def __str__(self):
        return self.name


class Report(models.Model):
    """The report on one order. `version` counts saves: a save names the version it started from, and a save
    from an older version is refused (optimistic locking)."""

    order = models.OneToOneField("worklist.Order", on_delete=models.PROTECT, related_name="report")
    template = models.ForeignKey(ReportTemplate, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.DRAFT)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reports")
    sections = models.JSONField(default=dict, help_text="Section key → text.")
    fields = models.JSONField(default=dict, help_text="Template field key → value.")
    version = models.PositiveIntegerField(default=1)
    preliminary_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="signed_reports")
    signed_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["status", "signed_at"], name="report_status_idx")]

    def __str__(self):
        return f"Report {self.order.accession_number} ({self.get_status_display()})"


class ReportVersion(models.Model):
    """Every saved state of a report, kept for ever: what was written, by whom, when."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ReportStatus.choices)
    sections = models.JSONField(default=dict)
    fields = models.JSONField(default=dict)
    saved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    saved_at = models.DateTimeField()

    class Meta:
        ordering = ["report", "version"]
        constraints = [models.UniqueConstraint(fields=["report", "version"], name="report_version_unique")]

    def __str__(self):
        return f"{self.report} v{self.version}"


class Addendum(models.Model):
    """A signed correction or addition to a final report; the original stays as it was signed."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "pk"]
        verbose_name_plural = "addenda"

    def __str__(self):
        return f"Addendum to {self.report} ({self.signed_at:%Y-%m-%d %H:%M})"
