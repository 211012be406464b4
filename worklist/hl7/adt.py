"""ADT messages: A01 (admit), A04 (register), A08 (update) create or update the patient from PID; A40 merges the
patient named in MRG-1 into the one named in PID-3. Field reading only: the rules are worklist/patients.py's
and worklist/patient_merge.py's.
"""
from radiology.choices import Sex
from worklist.hl7.messages import (
    HL7_NULL, REQUIRED_FIELD_MISSING, TABLE_VALUE_NOT_FOUND, UNKNOWN_KEY_IDENTIFIER, MessageError, parse_date,
    repetitions, required_segment, value,
)
from worklist.patient_merge import merge_patients
from worklist.patients import UnknownPatient, find_patient, record_patient

# PID-8 administrative sex, HL7 table 0001; A (ambiguous) and N (not applicable) have no DICOM counterpart.
_SEX = {"F": Sex.FEMALE, "M": Sex.MALE, "O": Sex.OTHER, "U": Sex.UNKNOWN, "A": Sex.OTHER, "N": Sex.UNKNOWN}


def handle_upsert(message, context):
    pid = required_segment(message, "PID")
    mrn, issuer = patient_identifier(pid, "PID", 3)
    record_patient(mrn=mrn, issuer=issuer, demographics=demographics(pid), actor=context.actor,
                   channel=context.channel, user=context.user, source_address=context.source_address)


def handle_merge(message, context):
    pid = required_segment(message, "PID")
    mrg = required_segment(message, "MRG")
    survivor_mrn, survivor_issuer = patient_identifier(pid, "PID", 3)
    merged_mrn, merged_issuer = patient_identifier(mrg, "MRG", 1)
    try:
        survivor = find_patient(survivor_mrn, survivor_issuer)
    except UnknownPatient as exc:
        raise MessageError(f"PID-3: {exc} (the surviving patient)", UNKNOWN_KEY_IDENTIFIER, "PID", 3) from None
    try:
        merged = find_patient(merged_mrn, merged_issuer)
    except UnknownPatient as exc:
        raise MessageError(f"MRG-1: {exc} (the patient to merge)", UNKNOWN_KEY_IDENTIFIER, "MRG", 1) from None
    merge_patients(survivor=survivor, merged=merged, actor=context.actor, channel=context.channel,
                   user=context.user, source_address=context.source_address)


def patient_identifier(segment, segment_id, field):
    """(MRN, issuer) from a CX field (PID-3, MRG-1): the repetition whose identifier type (CX.5) is MR, else
    the first; the issuer is the assigning authority's namespace (CX.4.1), empty for the local one."""
    chosen = 1
    for repetition in range(1, repetitions(segment, field) + 1):
        if value(segment, field, 5, repetition).upper() == "MR":
            chosen = repetition
            break
    mrn = value(segment, field, 1, chosen)
    if not mrn:
        raise MessageError(f"{segment_id}-{field} patient identifier is missing", REQUIRED_FIELD_MISSING,
                           segment_id, field)
    if len(mrn) > 64:
        raise MessageError(f"{segment_id}-{field} patient identifier is longer than 64 characters",
                           REQUIRED_FIELD_MISSING, segment_id, field)
    return mrn, value(segment, field, 4, chosen)[:64]


def demographics(pid):
    """The PID fields that were sent: an empty field leaves the stored value alone, "" (HL7 null) clears it."""
    given = {}
    family, given_name = value(pid, 5, 1), value(pid, 5, 2)
    if family:
        given["family_name"] = "" if family == HL7_NULL else family[:100]
        if given_name or family != HL7_NULL:
            given["given_name"] = "" if given_name == HL7_NULL else given_name[:100]
    birth = value(pid, 7)
    if birth:
        given["birth_date"] = None if birth == HL7_NULL else parse_date(birth, "PID", 7)
    sex = value(pid, 8).upper()
    if sex:
        if sex == HL7_NULL:
            given["sex"] = Sex.UNKNOWN
        elif sex in _SEX:
            given["sex"] = _SEX[sex]
        else:
            raise MessageError(f"PID-8 sex {sex!r} is not in HL7 table 0001 (F, M, O, U, A, N)",
                               TABLE_VALUE_NOT_FOUND, "PID", 8)
    return given
