from django.db import models


class Sex(models.TextChoices):
    """Administrative sex, with the DICOM (0010,0040) and HL7 table 0001 codes they share."""

    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Referring clinician"
    RADIOLOGIST = "radiologist", "Radiologist"
    TECHNOLOGIST = "technologist", "Technologist"
    ADMINISTRATOR = "administrator", "Administrator"
