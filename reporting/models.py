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


# ---------------------------------------------------------------------------------------------------------
# Distribution of final reports (reporting/distribution.py, reporting/outbound.py) and critical results
# (reporting/critical.py).

class HL7Endpoint(models.Model):
    """A receiver of results over HL7 v2 (MLLP): an EHR or interface engine that gets an ORU^R01 for every final
    and amended report while it is active."""

    name = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    receiving_application = models.CharField("MSH-5 receiving application", max_length=64, blank=True, default="")
    receiving_facility = models.CharField("MSH-6 receiving facility", max_length=64, blank=True, default="")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "HL7 endpoint"

    def __str__(self):
        return f"{self.name} ({self.host}:{self.port})"


class OutboundStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed, will be retried"
    DEAD = "dead", "Dead letter"


# Messages still to be delivered.
PENDING_OUTBOUND = (OutboundStatus.QUEUED, OutboundStatus.FAILED)


class OutboundMessage(models.Model):
    """One HL7 message to one endpoint, kept until it is acknowledged (sent) or given up on (dead letter). The
    payload is built once, when the report becomes final; every attempt sends the same bytes (same MSH-10)."""

    endpoint = models.ForeignKey(HL7Endpoint, on_delete=models.PROTECT, related_name="messages")
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.PROTECT, related_name="outbound")
    message_type = models.CharField(max_length=16, default="ORU^R01")
    control_id = models.CharField("MSH-10", max_length=64)
    payload = models.TextField(help_text="The message, segments separated by CR.")
    status = models.CharField(max_length=8, choices=OutboundStatus.choices, default=OutboundStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True, default="")
    ack = models.TextField(blank=True, default="", help_text="The receiver's acknowledgement, as received.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["endpoint", "status", "created_at"], name="outbound_queue_idx")]

    def __str__(self):
        return f"{self.message_type} {self.control_id} → {self.endpoint.name} ({self.get_status_display()})"


class CriticalCategory(models.TextChoices):
    """Kinds of finding that are communicated directly (ACR Practice Parameter for Communication of Diagnostic
    Imaging Findings: findings that need immediate or urgent action)."""

    INTRACRANIAL_HEMORRHAGE = "intracranial_hemorrhage", "Intracranial hemorrhage"
    STROKE = "stroke", "Acute stroke"
    PNEUMOTHORAX = "pneumothorax", "Pneumothorax"
    PULMONARY_EMBOLISM = "pulmonary_embolism", "Pulmonary embolism"
    AORTIC_DISSECTION = "aortic_dissection", "Aortic dissection or rupture"
    FREE_AIR = "free_air", "Free intraperitoneal air"
    MISPLACED_DEVICE = "misplaced_device", "Misplaced tube or line"
    CORD_COMPRESSION = "cord_compression", "Spinal cord compression"
    UNEXPECTED_MALIGNANCY = "unexpected_malignancy", "Unexpected finding suspicious for malignancy"
    OTHER = "other", "Other"


class CriticalUrgency(models.TextChoices):
    """How soon the clinician must act (ACR: critical, urgent, non-urgent but significant)."""

    IMMEDIATE = "immediate", "Immediate (critical)"
    URGENT = "urgent", "Urgent (hours)"
    SIGNIFICANT = "significant", "Significant, non-urgent (days)"


class CriticalResult(models.Model):
    """A finding that must reach the ordering clinician and be confirmed received: notified, acknowledged (who,
    when), escalated to the configured contact when no acknowledgement comes in time, closed by a radiologist or
    administrator. It stays on the open list until it is closed."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="critical_results")
    category = models.CharField(max_length=32, choices=CriticalCategory.choices)
    urgency = models.CharField(max_length=16, choices=CriticalUrgency.choices)
    finding = models.TextField(help_text="What was found and what is recommended, for the clinician.")
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    marked_at = models.DateTimeField()
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="critical_results",
                                  help_text="The ordering clinician who was notified (the order's referring "
                                            "physician).")
    clinician_name = models.CharField(max_length=324, blank=True, default="")
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_contact = models.CharField(max_length=254, blank=True, default="",
                                          help_text="Who the escalation went to (e-mail address).")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    closing_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-marked_at", "-pk"]
        indexes = [models.Index(fields=["closed_at", "acknowledged_at", "escalated_at"], name="critical_open_idx")]

    def __str__(self):
        return f"Critical result on {self.report.order.accession_number}: {self.get_category_display()}"

    @property
    def state(self):
        """Where it stands, in words for the lists."""
        if self.closed_at:
            return "closed"
        if self.acknowledged_at:
            return "acknowledged"
        if self.escalated_at:
            return "escalated"
        return "awaiting acknowledgement"


class DictationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Transcribing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Dictation(models.Model):
    """One recording (or one browser-recognised utterance) dictated into a report, and its transcript.

    The audio is kept in the data dir under a name the platform generated (reporting.dictation.audio), with the
    draft, and removed a set number of days after the report is signed (`audio_purged_at`). The transcript is
    delivered to the editor, which inserts it at the cursor and saves the report as any other edit: a
    dictation never writes into the report by itself."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="dictations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dictations")
    section = models.CharField(max_length=64, blank=True, default="",
                               help_text="The report section the cursor was in when dictation began.")
    backend = models.CharField(max_length=16, help_text="The speech-to-text backend that transcribed it.")
    audio_name = models.CharField(max_length=64, blank=True, default="",
                                  help_text="Generated file name in the dictation audio folder; empty when none.")
    duration_seconds = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=DictationStatus.choices, default=DictationStatus.QUEUED)
    transcript = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    audio_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="dictation_status_idx")]

    def __str__(self):
        return f"Dictation {self.pk} on {self.report} ({self.get_status_display()})"
