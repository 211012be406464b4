from django.db import models


class Priority(models.TextChoices):
    """Order priority, with the HL7 v2 (ORC-7 / TQ1-9) code as value and the DICOM term by `dicom_priority`."""

    STAT = "S", "Stat"
    URGENT = "A", "Urgent"
    ROUTINE = "R", "Routine"


# DICOM Requested Procedure Priority (0040,1003) and Scheduled Procedure Step Priority (0040,4003) terms.
DICOM_PRIORITY = {Priority.STAT: "STAT", Priority.URGENT: "HIGH", Priority.ROUTINE: "ROUTINE"}
# Sort rank for the reading worklist: STAT first.
PRIORITY_RANK = {Priority.STAT: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}


class OrderStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    SCHEDULED = "scheduled", "Scheduled"
    ARRIVED = "arrived", "Arrived"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed (images available)"
    PRELIMINARY = "preliminary", "Preliminary report"
    FINAL = "final", "Final report"
    CANCELLED = "cancelled", "Cancelled"
    DISCONTINUED = "discontinued", "Discontinued"


# Orders a modality may still perform: what the Modality Worklist publishes.
OPEN_STATUSES = (OrderStatus.SCHEDULED, OrderStatus.ARRIVED)
# Orders whose images are in and whose report is not final: the reading worklist.
READING_STATUSES = (OrderStatus.COMPLETED, OrderStatus.PRELIMINARY)


class StepStatus(models.TextChoices):
    """Scheduled Procedure Step status (0040,0020) terms."""

    SCHEDULED = "SCHEDULED", "Scheduled"
    ARRIVED = "ARRIVED", "Arrived"
    STARTED = "STARTED", "Started"
    COMPLETED = "COMPLETED", "Completed"
    DISCONTINUED = "DISCONTINUED", "Discontinued"


class PerformedStepStatus(models.TextChoices):
    """Performed Procedure Step Status (0040,0252), PS3.4 F.7.2."""

    IN_PROGRESS = "IN PROGRESS", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    DISCONTINUED = "DISCONTINUED", "Discontinued"


class MessageOutcome(models.TextChoices):
    """What became of an inbound HL7 message: its MSA-1 acknowledgement code."""

    ACCEPTED = "AA", "Applied (AA)"
    ERROR = "AE", "Error (AE)"
    REJECTED = "AR", "Rejected (AR)"
