from django.db import models


class ReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PRELIMINARY = "preliminary", "Preliminary"
    FINAL = "final", "Final"
    AMENDED = "amended", "Final, amended"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


# Reports whose text may still change.
EDITABLE_STATUSES = (ReportStatus.DRAFT, ReportStatus.PRELIMINARY)
# Signed reports: never changed again; addenda only.
SIGNED_STATUSES = (ReportStatus.FINAL, ReportStatus.AMENDED)


class FieldType(models.TextChoices):
    TEXT = "text", "Free text"
    PICKLIST = "picklist", "Pick list"
    NUMBER = "number", "Number with unit"
    DATE = "date", "Date"
