"""The RIS: procedure catalogue, stations, imaging orders with their scheduled and performed procedure steps,
the reading worklist's assignment rules and claims, and the raw inbound HL7 messages.

Order status changes only through worklist.orders (the state machine); everything else reads these models.
"""
from django.conf import settings
from django.db import models

from worklist.choices import MessageOutcome, OrderStatus, PerformedStepStatus, Priority, StepStatus


class ProcedureType(models.Model):
    """An orderable imaging procedure of the department's catalogue (HL7 OBR-4, DICOM Requested Procedure Code)."""

    code = models.CharField(max_length=16, unique=True, help_text="Code sent by the EHR in OBR-4.")
    coding_scheme = models.CharField(max_length=16, default="99LOCAL", help_text="DICOM Coding Scheme Designator")
    name = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, help_text="DICOM modality, e.g. CT, MR, US, CR.")
    body_part = models.CharField(max_length=16, blank=True, default="", help_text="DICOM Body Part Examined")
    subspecialty = models.CharField(max_length=32, blank=True, default="",
                                    help_text="Reading subspecialty, e.g. neuro, chest, MSK.")
    default_duration_minutes = models.PositiveIntegerField(default=30)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["modality", "name"]

    def __str__(self):
        return f"{self.code} {self.name}"


class Station(models.Model):
    """A modality in a room: the AE title that asks us for its worklist and reports its procedure steps."""

    name = models.CharField(max_length=64)
    ae_title = models.CharField("AE title", max_length=16, unique=True)
    modality = models.CharField(max_length=16)
    location = models.CharField(max_length=64, blank=True, default="", help_text="Room or site.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["location", "name"]

    def __str__(self):
        return f"{self.name} ({self.ae_title}, {self.modality})"


class AccessionSequence(models.Model):
    """The last number issued per year, so generated accession numbers are unique without a table scan."""

    year = models.PositiveIntegerField(unique=True)
    last_value = models.PositiveIntegerField(default=0)


class Order(models.Model):
    """An imaging order (one requested procedure) from the EHR or the portal."""

    accession_number = models.CharField(max_length=16, unique=True)
    placer_order_number = models.CharField(max_length=64, blank=True, default="", db_index=True,
                                           help_text="ORC-2: the EHR's order number.")
    filler_order_number = models.CharField(max_length=64, blank=True, default="", db_index=True,
                                           help_text="ORC-3: our order number (the accession number if unset).")
    patient = models.ForeignKey("radiology.Patient", on_delete=models.PROTECT, related_name="orders")
    procedure = models.ForeignKey(ProcedureType, on_delete=models.PROTECT, related_name="orders")
    requested_procedure_id = models.CharField(max_length=16, help_text="(0040,1001), OBR-19")
    priority = models.CharField(max_length=1, choices=Priority.choices, default=Priority.ROUTINE)
    reason = models.TextField("reason for exam", blank=True, default="")
    referring_physician = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="referred_orders",
        help_text="The platform user who referred; sees the order and its results.")
    referring_physician_name = models.CharField(max_length=324, blank=True, default="",
                                                help_text="As a DICOM PN (Family^Given), from PV1-8 or the user.")
    study_instance_uid = models.CharField("Study Instance UID", max_length=64, unique=True,
                                          help_text="Assigned ahead, given to the modality by the worklist.")
    study = models.ForeignKey("archive.Study", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="orders", help_text="The archived study, once reconciled.")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.REQUESTED)
    status_changed_at = models.DateTimeField()
    # When images became available: the reading worklist's "oldest first".
    images_available_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="claimed_orders")
    claimed_at = models.DateTimeField(null=True, blank=True)
    assigned_group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="assigned_orders",
                                       help_text="Radiologist group from the assignment rules.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "priority", "images_available_at"], name="order_reading_idx"),
            models.Index(fields=["patient", "status"], name="order_patient_idx"),
        ]

    def __str__(self):
        return f"{self.accession_number} {self.procedure.name}"


class OrderStatusChange(models.Model):
    """One transition of an order: the timestamps that turnaround times are computed from."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True, default="")
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150, help_text="User name, AE title or HL7 sending application.")
    channel = models.CharField(max_length=16)
    reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.order.accession_number}: {self.from_status or '-'} → {self.to_status}"


class ScheduledProcedureStep(models.Model):
    """A step of an order booked on a station at a time; what the Modality Worklist publishes (PS3.4 K.6)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField("Scheduled Procedure Step ID", max_length=16, unique=True)
    station = models.ForeignKey(Station, null=True, blank=True, on_delete=models.PROTECT, related_name="steps")
    station_ae_title = models.CharField(max_length=16, blank=True, default="",
                                        help_text="Scheduled Station AE Title (0040,0001)")
    modality = models.CharField(max_length=16)
    description = models.CharField(max_length=64, blank=True, default="")
    start = models.DateTimeField(db_index=True)
    end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.SCHEDULED)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["station_ae_title", "start"], name="step_station_start_idx")]

    def __str__(self):
        return f"{self.step_id} {self.modality} {self.start:%Y-%m-%d %H:%M}"


class PerformedProcedureStep(models.Model):
    """A Modality Performed Procedure Step as the modality reported it (N-CREATE, then N-SETs)."""

    sop_instance_uid = models.CharField("SOP Instance UID", max_length=64, unique=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="performed_steps")
    status = models.CharField(max_length=16, choices=PerformedStepStatus.choices)
    performing_ae_title = models.CharField(max_length=16, blank=True, default="")
    attributes = models.JSONField(default=dict, help_text="The MPPS attributes as DICOM JSON, updated by N-SET.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "performed procedure step (MPPS)"

    def __str__(self):
        return f"MPPS {self.sop_instance_uid} {self.status}"


class ReadingAssignmentRule(models.Model):
    """Which radiologist group reads what: orders matching modality and body part go to the group's worklist."""

    modality = models.CharField(max_length=16, blank=True, default="", help_text="Empty matches any.")
    body_part = models.CharField(max_length=16, blank=True, default="", help_text="Empty matches any.")
    subspecialty = models.CharField(max_length=32, blank=True, default="", help_text="Empty matches any.")
    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="reading_rules")
    auto_assign = models.BooleanField(
        default=False, help_text="Claim each new case for the group member with the fewest open claims.")
    priority = models.PositiveIntegerField(default=100, help_text="Lower is tried first.")

    class Meta:
        ordering = ["priority", "pk"]

    def __str__(self):
        what = " ".join(filter(None, [self.modality, self.body_part, self.subspecialty])) or "anything"
        return f"{what} → {self.group.name}"


class UnmatchedStudy(models.Model):
    """An archived study that matched no order: the technologist's exceptions list until it is linked."""

    study = models.OneToOneField("archive.Study", on_delete=models.CASCADE, related_name="unmatched")
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL,
                              help_text="The order it was linked to.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "unmatched studies"

    def __str__(self):
        return f"{self.study} ({self.reason})"


class InboundMessage(models.Model):
    """An HL7 v2 message as received, with what became of it; administrators can reprocess it."""

    control_id = models.CharField("MSH-10", max_length=64, blank=True, default="")
    sending_application = models.CharField("MSH-3", max_length=227, blank=True, default="")
    sending_facility = models.CharField("MSH-4", max_length=227, blank=True, default="")
    message_type = models.CharField("MSH-9", max_length=32, blank=True, default="")
    raw = models.TextField(help_text="The message as received (segments separated by CR).")
    outcome = models.CharField(max_length=2, choices=MessageOutcome.choices)
    error = models.TextField(blank=True, default="")
    applied = models.BooleanField(default=False, help_text="Its changes were committed.")
    peer_address = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["sending_application", "sending_facility", "control_id"],
                                name="hl7_control_id_idx")]

    def __str__(self):
        return f"{self.message_type} {self.control_id} {self.outcome}"
