"""The archive index: Study, Series and Instance, with the attributes that C-FIND and QIDO-RS match on.

Patient-level attributes are copied onto the study as they arrived (PS3.4 C.6.2 Study Root queries match them
at study level); `patient` links the study to the platform's Patient record.
"""
import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper

from archive.choices import IngestEventKind, TransferKind, TransferStatus


class DicomNode(models.Model):
    """A remote DICOM application entity: allowed to associate with us, and a C-MOVE / send destination."""

    name = models.CharField(max_length=100)
    ae_title = models.CharField("AE title", max_length=16, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    allow_store = models.BooleanField(default=True, help_text="May send us instances (C-STORE).")
    allow_query = models.BooleanField(default=True, help_text="May query and retrieve (C-FIND, C-MOVE, C-GET).")
    prefetch_priors = models.BooleanField(
        default=False, help_text="Asked for the patient's prior studies when an order is scheduled.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ae_title"]
        verbose_name = "DICOM node"

    def __str__(self):
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"


class Study(models.Model):
    study_instance_uid = models.CharField("Study Instance UID", max_length=64, unique=True)
    patient = models.ForeignKey("radiology.Patient", on_delete=models.PROTECT, related_name="studies")
    # Patient attributes as received (DICOM text, for matching and for answering queries unchanged).
    patient_name = models.CharField(max_length=324, blank=True, default="")
    dicom_patient_id = models.CharField("Patient ID", max_length=64, blank=True, default="",
                                        help_text="(0010,0020) as received; `patient` is the linked record")
    issuer_of_patient_id = models.CharField(max_length=64, blank=True, default="")
    patient_birth_date = models.CharField(max_length=8, blank=True, default="", help_text="YYYYMMDD")
    patient_sex = models.CharField(max_length=16, blank=True, default="")
    study_date = models.CharField(max_length=8, blank=True, default="", help_text="YYYYMMDD")
    study_time = models.CharField(max_length=16, blank=True, default="", help_text="HHMMSS.FFFFFF")
    study_id = models.CharField("Study ID", max_length=16, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="")
    referring_physician_name = models.CharField(max_length=324, blank=True, default="")
    study_description = models.CharField(max_length=64, blank=True, default="")
    modalities_in_study = models.CharField(max_length=128, blank=True, default="", help_text="Backslash separated")
    number_of_series = models.PositiveIntegerField(default=0)
    number_of_instances = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-study_date", "-study_time"]
        indexes = [
            models.Index(fields=["dicom_patient_id"], name="study_patient_id_idx"),
            models.Index(Upper("patient_name"), name="study_patient_name_idx"),
            models.Index(fields=["study_date", "study_time"], name="study_date_idx"),
            models.Index(fields=["accession_number"], name="study_accession_idx"),
            models.Index(fields=["modalities_in_study"], name="study_modalities_idx"),
            models.Index(fields=["updated_at"], name="study_updated_idx"),
        ]

    def __str__(self):
        return f"{self.patient_name} {self.study_date} {self.study_description or self.study_instance_uid}"


class Series(models.Model):
    series_instance_uid = models.CharField("Series Instance UID", max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True, default="")
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=64, blank=True, default="")
    body_part_examined = models.CharField(max_length=16, blank=True, default="")
    series_date = models.CharField(max_length=8, blank=True, default="")
    series_time = models.CharField(max_length=16, blank=True, default="")
    number_of_instances = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["series_number", "id"]
        indexes = [models.Index(fields=["modality"], name="series_modality_idx")]

    def __str__(self):
        return f"{self.modality} #{self.series_number} {self.series_description}".strip()


class Instance(models.Model):
    sop_instance_uid = models.CharField("SOP Instance UID", max_length=64, unique=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_class_uid = models.CharField("SOP Class UID", max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(null=True, blank=True)
    # Where and what the stored file is: the key is made by the storage backend from a hash of the UID.
    storage_key = models.CharField(max_length=255)
    file_size = models.BigIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    # The whole header without pixel data, as DICOM JSON (PS3.18 F.2), for any-tag queries and metadata.
    header = models.JSONField(default=dict)
    received_from = models.CharField(max_length=64, blank=True, default="", help_text="Calling AE or source")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance_number", "id"]

    def __str__(self):
        return self.sop_instance_uid


class IngestEvent(models.Model):
    """Something about an arriving instance that a person should look at (reconciliation)."""

    kind = models.CharField(max_length=32, choices=IngestEventKind.choices)
    sop_instance_uid = models.CharField(max_length=64, blank=True, default="")
    study_instance_uid = models.CharField(max_length=64, blank=True, default="")
    patient = models.ForeignKey("radiology.Patient", null=True, blank=True, on_delete=models.SET_NULL)
    detail = models.JSONField(default=dict, help_text="What was stored and what arrived")
    source = models.CharField(max_length=64, blank=True, default="")
    resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["resolved", "kind"], name="ingest_event_open_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.sop_instance_uid or self.study_instance_uid}"


class TransferJob(models.Model):
    """A study or series sent to, or pulled from, a remote node by a background task."""

    kind = models.CharField(max_length=8, choices=TransferKind.choices)
    node = models.ForeignKey(DicomNode, on_delete=models.CASCADE, related_name="transfers")
    study_instance_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=8, choices=TransferStatus.choices, default=TransferStatus.QUEUED)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    undelivered = models.JSONField(
        default=dict, blank=True,
        help_text="SOP Instance UID → reason, for the instances a re-run still has to deliver")
    requested_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=100, blank=True, default="", help_text="manual, routing rule, prefetch")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="transfer_status_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.study_instance_uid} {self.node.ae_title}: {self.status}"


class RoutingRule(models.Model):
    """Forward arriving instances that match to nodes. Empty conditions match anything."""

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    calling_ae = models.CharField("Calling AE", max_length=16, blank=True, default="")
    called_ae = models.CharField("Called AE", max_length=16, blank=True, default="")
    modality = models.CharField(max_length=16, blank=True, default="")
    description_pattern = models.CharField(
        max_length=200, blank=True, default="",
        help_text="Regular expression searched in the study and series descriptions (case-insensitive).")
    destinations = models.ManyToManyField(DicomNode, related_name="routing_rules")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if self.description_pattern:
            try:
                re.compile(self.description_pattern)
            except re.error as exc:
                raise ValidationError({"description_pattern": f"not a valid regular expression: {exc}"}) from None
