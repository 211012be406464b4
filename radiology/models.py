from django.db import models
from django.db.models.functions import Upper

from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome, Sex


class Patient(models.Model):
    """A person known to the department, identified by a medical record number within an issuer."""

    mrn = models.CharField("MRN", max_length=64, help_text="Medical record number (DICOM Patient ID).")
    issuer = models.CharField(
        max_length=64, blank=True, default="",
        help_text="Assigning authority of the MRN (DICOM Issuer of Patient ID); empty for the local one.")
    family_name = models.CharField(max_length=100)
    given_name = models.CharField(max_length=100, blank=True, default="")
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_patients",
        help_text="Set when an ADT merge folded this record into another one.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name", "mrn"]
        constraints = [models.UniqueConstraint(fields=["mrn", "issuer"], name="patient_mrn_issuer_unique")]
        indexes = [
            # Name search is case-insensitive prefix matching; these expression indexes serve it.
            models.Index(Upper("family_name"), Upper("given_name"), name="patient_name_upper_idx"),
            models.Index(fields=["birth_date"], name="patient_birth_date_idx"),
        ]

    def __str__(self):
        return f"{self.display_name} ({self.mrn})"

    @property
    def display_name(self):
        return f"{self.family_name}, {self.given_name}" if self.given_name else self.family_name

    @property
    def dicom_name(self):
        """The name as a DICOM PN value: Family^Given."""
        return f"{self.family_name}^{self.given_name}" if self.given_name else self.family_name


class ServiceHeartbeat(models.Model):
    """The last sign of life of one running component in one process (see radiology.heartbeat)."""

    component = models.CharField(max_length=32)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    detail = models.CharField(max_length=255, blank=True, default="")
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["component", "hostname", "pid"], name="heartbeat_process_unique"),
        ]

    def __str__(self):
        return f"{self.component} on {self.hostname} (pid {self.pid})"


class AuditEvent(models.Model):
    """One entry of the audit trail: who (a user or a remote AE) did what, to which patient, through which channel."""

    code = models.CharField(max_length=32, choices=AuditEventCode.choices)
    action = models.CharField(max_length=1, help_text="PS3.15 EventActionCode: C, R, U, D or E")
    outcome = models.PositiveSmallIntegerField(choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    channel = models.CharField(max_length=16, choices=AuditChannel.choices)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150, help_text="User name, or calling AE title for DICOM")
    source_address = models.CharField(max_length=64, blank=True, default="")
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL)
    object_type = models.CharField(max_length=32, blank=True, default="")
    object_id = models.CharField(max_length=128, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["patient", "created_at"], name="audit_patient_idx")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.get_code_display()}"
