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


class AuditEventCode(models.TextChoices):
    """Audit event types, named after DICOM PS3.15 A.5.3 so an ATNA or FHIR AuditEvent export maps 1:1."""

    APPLICATION_ACTIVITY = "application-activity", "Application Activity"
    NETWORK_ENTRY = "network-entry", "Network Entry (DICOM association)"
    DICOM_INSTANCES_TRANSFERRED = "instances-transferred", "DICOM Instances Transferred"
    DICOM_INSTANCES_ACCESSED = "instances-accessed", "DICOM Instances Accessed"
    BEGIN_TRANSFERRING = "begin-transferring", "Begin Transferring DICOM Instances"
    QUERY = "query", "Query"
    IMPORT = "import", "Import"
    EXPORT = "export", "Export"
    PATIENT_RECORD = "patient-record", "Patient Record"
    ORDER_RECORD = "order-record", "Order Record"
    PROCEDURE_RECORD = "procedure-record", "Procedure Record"
    USER_AUTHENTICATION = "user-authentication", "User Authentication"
    SECURITY_ALERT = "security-alert", "Security Alert"


class AuditOutcome(models.IntegerChoices):
    """PS3.15 A.5.1 EventOutcomeIndicator."""

    SUCCESS = 0, "Success"
    MINOR_FAILURE = 4, "Minor failure"
    SERIOUS_FAILURE = 8, "Serious failure"
    MAJOR_FAILURE = 12, "Major failure"


class AuditChannel(models.TextChoices):
    WEB = "web", "Web portal"
    API = "api", "REST API"
    DICOM = "dicom", "DICOM"
    DICOMWEB = "dicomweb", "DICOMweb"
    FHIR = "fhir", "FHIR"
    HL7 = "hl7", "HL7 v2"
    SYSTEM = "system", "System"
