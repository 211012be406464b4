"""HL7 v2.5 ORU^R01 (unsolicited observation result) for a signed report, as IHE Scheduled Workflow's
"Results" and most EHR interface engines expect it from a RIS:

    MSH  header: sending/receiving application and facility, ORU^R01^ORU_R01, control ID, version 2.5, UTF-8
    PID  patient: MRN with its issuer (PID-3), name (PID-5), birth date (PID-7), administrative sex (PID-8)
    PV1  patient class U (unknown to the RIS), referring physician (PV1-8)
    ORC  RE (observations to follow), placer and filler order numbers, order status CM
    OBR  placer (OBR-2), filler (OBR-3), procedure (OBR-4), observation time (OBR-7), ordering provider (OBR-16),
         accession number (OBR-18), requested procedure ID (OBR-19), result time (OBR-22), diagnostic service
         section RAD (OBR-24), result status (OBR-25: P preliminary, F final, C corrected), principal result
         interpreter (OBR-32)
    OBX  one TX line of report text each; OBX-3 names the report section with its LOINC code (the section codes
         of DICOM PS3.20 / RSNA report templates), OBX-4 groups the lines of one section, OBX-11 repeats the
         result status

The text is sent as TX lines rather than one FT value because receivers differ on how they render FT's
formatting escapes; one line per OBX survives every interface engine. Delimiters in the text are escaped (HL7
v2.5 2.7.1); non-ASCII text is sent as UTF-8, declared in MSH-18.
"""
from django.conf import settings
from django.utils import timezone

from reporting.choices import ReportStatus
from reporting.models import STANDARD_SECTIONS

VERSION = "2.5"
ENCODING_CHARACTERS = "^~\\&"
# HL7 table 0123 result status.
PRELIMINARY, FINAL, CORRECTED = "P", "F", "C"

# Report section → OBX-3 (LOINC code, text): the section codes used for radiology reports (DICOM PS3.20, RSNA).
SECTION_CODES = {
    "clinical_information": ("55752-0", "Clinical information"),
    "technique": ("55111-9", "Current imaging procedure descriptions"),
    "comparison": ("18834-2", "Radiology Comparison study (narrative)"),
    "findings": ("59776-5", "Procedure Findings"),
    "impression": ("19005-8", "Radiology Imaging study [Impression] (narrative)"),
    "recommendation": ("18783-1", "Radiology Study recommendation (narrative)"),
}
ADDENDUM_CODE = ("55107-7", "Addendum")
# A section a template adds beyond the standard ones.
OTHER_SECTION_CODE = ("18782-3", "Radiology Study observation (narrative)")


def result_status(report):
    """OBR-25 for the report as it stands: C once it has addenda, F when signed, P while preliminary."""
    if report.status == ReportStatus.AMENDED:
        return CORRECTED
    if report.status == ReportStatus.FINAL:
        return FINAL
    if report.status == ReportStatus.PRELIMINARY:
        return PRELIMINARY
    raise ValueError(f"a {report.get_status_display().lower()} report is not sent as a result")


def build_oru(report, *, control_id, receiving_application="", receiving_facility="", now=None):
    """The ORU^R01 for `report`, segments separated by CR."""
    now = timezone.localtime(now or timezone.now())
    order = report.order
    patient = order.patient
    procedure = order.procedure
    status = result_status(report)
    signer = report.signed_by
    result_time = _latest_result_time(report) or now

    msh = ["MSH", ENCODING_CHARACTERS, settings.HL7_SENDING_APPLICATION, settings.HL7_SENDING_FACILITY,
           receiving_application, receiving_facility, _ts(now), "", _components("ORU", "R01", "ORU_R01"), control_id,
           "P", VERSION, "", "", "AL", "NE", "", "UNICODE UTF-8"]
    segments = [_raw_segment(msh)]
    segments.append(_segment(
        "PID", "1", "", _components(patient.mrn, "", "", patient.issuer, "MR"), "",
        _components(patient.family_name, patient.given_name), "", _date(patient.birth_date), patient.sex))
    segments.append(_segment("PV1", "1", "U", "", "", "", "", "", _person_name(order.referring_physician,
                                                                                order.referring_physician_name)))
    segments.append(_segment("ORC", "RE", order.placer_order_number, order.filler_order_number or
                             order.accession_number, "", "CM"))
    obr = ["OBR", "1", order.placer_order_number, order.filler_order_number or order.accession_number,
           _components(procedure.code, procedure.name, procedure.coding_scheme), "", "",
           _ts(order.images_available_at or report.created_at)]
    obr += [""] * 8  # OBR-8 … OBR-15
    obr += [_person_name(order.referring_physician, order.referring_physician_name),  # OBR-16
            "", order.accession_number, order.requested_procedure_id, "", "",  # OBR-17 … OBR-21
            _ts(result_time), "", "RAD", status]  # OBR-22 … OBR-25
    obr += [""] * 6  # OBR-26 … OBR-31
    obr += [_interpreter(signer, report.signed_at)]  # OBR-32
    segments.append(_segment(*obr))

    observations = _observations(report)
    for number, (code, sub_id, line) in enumerate(observations, start=1):
        segments.append(_segment("OBX", str(number), "TX", _components(*code, "LN"), str(sub_id), line,
                                 "", "", "", "", "", status, "", "", _ts(result_time),
                                 "", _person_name(signer, "")))
    return "\r".join(segments) + "\r"


def escape(text):
    """HL7 v2.5 2.7.1: the escape character first, then the field, component, repetition and subcomponent
    separators; carriage returns and line feeds cannot appear inside a field."""
    text = str(text or "")
    for character, sequence in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\")):
        text = text.replace(character, sequence)
    return text.replace("\r", " ").replace("\n", " ")


# ---------------------------------------------------------------------------------------------------------

def _observations(report):
    """(code, sub-ID, line) for every line of the report: sections in their order, then the addenda."""
    order = [key for key, _ in STANDARD_SECTIONS]
    keys = sorted(report.sections, key=lambda key: order.index(key) if key in order else len(order))
    observations = []
    sub_id = 0
    for key in keys:
        text = str(report.sections.get(key) or "").strip()
        if not text:
            continue
        sub_id += 1
        code = SECTION_CODES.get(key, OTHER_SECTION_CODE)
        title = dict(STANDARD_SECTIONS).get(key, key.replace("_", " ").capitalize())
        observations.append((code, sub_id, f"{title.upper()}:"))
        observations += [(code, sub_id, line) for line in _lines(text)]
    for addendum in report.addenda.select_related("author"):
        sub_id += 1
        author = addendum.author.get_full_name() or addendum.author.get_username()
        header = f"ADDENDUM {timezone.localtime(addendum.signed_at):%Y-%m-%d %H:%M} by {author}:"
        observations.append((ADDENDUM_CODE, sub_id, header))
        observations += [(ADDENDUM_CODE, sub_id, line) for line in _lines(addendum.text)]
    return observations


def _lines(text):
    return [line.rstrip() for line in str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _latest_result_time(report):
    latest = report.addenda.order_by("-signed_at").values_list("signed_at", flat=True).first()
    return latest or report.signed_at or report.preliminary_at


def _segment(name, *fields):
    return "|".join([name, *(field if isinstance(field, _Encoded) else escape(field) for field in fields)])


def _raw_segment(fields):
    # MSH-1 is the field separator itself and MSH-2 the encoding characters: written as they are.
    return "|".join([fields[0], *(escape(field) if index > 1 and not isinstance(field, _Encoded) else field
                                  for index, field in enumerate(fields[1:]))])


class _Encoded(str):
    """A field whose components are already escaped and joined with ^."""


def _components(*values):
    return _Encoded("^".join(escape(value) for value in values).rstrip("^"))


def _person_name(user, dicom_name):
    """XCN (ID^family^given^middle^suffix^prefix) for a platform user, else for the order's referring physician
    name, which the order keeps as a DICOM PN (family^given^middle^prefix^suffix)."""
    if user is not None:
        return _components(user.get_username(), user.last_name, user.first_name)
    if not dicom_name:
        return ""
    family, given, middle, prefix, suffix = (dicom_name.split("^") + [""] * 5)[:5]
    return _components("", family, given, middle, suffix, prefix)


def _interpreter(user, when):
    """NDL (OBR-32): name (ID&family&given as subcomponents), start time."""
    if user is None:
        return ""
    name = "&".join(escape(value) for value in (user.get_username(), user.last_name, user.first_name))
    return _Encoded(f"{name}^{_ts(when)}" if when else name)


def _ts(moment):
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z")


def _date(day):
    return day.strftime("%Y%m%d") if day else ""
