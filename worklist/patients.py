"""Patient records as the EHR announces them (HL7 ADT, later FHIR Patient): created or updated by MRN and
issuer, every change audited as a Patient Record event. Merges are worklist/patient_merge.py's."""
from django.db import transaction

from radiology.audit import record_audit_event
from radiology.choices import AuditEventCode
from radiology.models import Patient
from worklist.orders import OrderError

DEMOGRAPHICS = ("family_name", "given_name", "birth_date", "sex")


class UnknownPatient(OrderError):
    """No patient with that MRN and issuer."""


def find_patient(mrn, issuer=""):
    """The patient with this MRN and issuer, or UnknownPatient."""
    patient = Patient.objects.filter(mrn=mrn, issuer=issuer).first()
    if patient is None:
        raise UnknownPatient(f"unknown patient MRN {mrn}" + (f" (issuer {issuer})" if issuer else ""))
    return patient


@transaction.atomic
def record_patient(*, mrn, issuer="", demographics, actor, channel, user=None, source_address=""):
    """Create the patient, or update the demographics given in `demographics` (fields of DEMOGRAPHICS; a field
    left out keeps its value). Returns (patient, created)."""
    unknown = set(demographics) - set(DEMOGRAPHICS)
    if unknown:
        raise ValueError(f"not patient demographics: {', '.join(sorted(unknown))}")
    patient = Patient.objects.select_for_update().filter(mrn=mrn, issuer=issuer).first()
    if patient is None:
        if not demographics.get("family_name"):
            raise OrderError(f"patient MRN {mrn} is new and needs a family name")
        patient = Patient.objects.create(mrn=mrn, issuer=issuer, **demographics)
        _audit(patient, "C", actor=actor, channel=channel, user=user, source_address=source_address,
               changed=sorted(demographics))
        return patient, True
    if patient.merged_into_id:
        raise OrderError(f"patient MRN {mrn} was merged into MRN {patient.merged_into.mrn}; "
                         f"update the surviving record")
    if "family_name" in demographics and not demographics["family_name"]:
        raise OrderError(f"patient MRN {mrn}: the family name cannot be removed")
    changed = sorted(field for field, new in demographics.items() if getattr(patient, field) != new)
    if changed:
        for field in changed:
            setattr(patient, field, demographics[field])
        patient.save(update_fields=[*changed, "updated_at"])
        _audit(patient, "U", actor=actor, channel=channel, user=user, source_address=source_address,
               changed=changed)
    return patient, False


def _audit(patient, action, *, actor, channel, user, source_address, **detail):
    record_audit_event(AuditEventCode.PATIENT_RECORD, action=action, channel=channel, actor=actor, user=user,
                       source_address=source_address, patient=patient, object_type="patient",
                       object_id=patient.mrn, **detail)
