"""Modality Worklist SCP (PS3.4 K, Modality Worklist Information Model FIND, 1.2.840.10008.5.1.4.31).

The archive's C-FIND handler hands this module's `handle_find` the requests for this SOP class. It checks the
caller, reads the identifier into matching values and requested keys, lets worklist.scheduled_steps select the
steps, and answers one pending response per step with the keys the modality asked for and nothing else
(PS3.4 K.6.1.2.2 / C.2.2.1.3: universal matching on an empty value, unknown keys returned empty). Every query
is a Query audit event, as the archive's are.

Values come from the order, its patient, procedure and station. Dates and times are the station's local ones
(settings.TIME_ZONE). Names that are not ASCII go out in UTF-8 (Specific Character Set ISO_IR 192).
"""
import logging
from struct import pack as _pack

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import STR_VR

from archive import query as archive_query
from archive import status
from archive.dimse import services
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from worklist import scheduled_steps
from worklist.choices import DICOM_PRIORITY
from worklist.dimse import may_query_worklist

logger = logging.getLogger(__name__)

PENDING = 0xFF00
CANCEL = 0xFE00
NOT_AUTHORIZED = 0x0124  # PS3.7 C.5 "Refused: Not Authorized", as the archive's C-FIND answers
STEP_SEQUENCE = "ScheduledProcedureStepSequence"
CODE_KEYS = ("CodeValue", "CodingSchemeDesignator", "CodeMeaning")
# What an empty (zero-item) Scheduled Procedure Step Sequence asks for: its type 1 and 2 keys (PS3.4 Table
# K.6-1), in the order of their tags.
STEP_RETURN_KEYS = (
    "Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
    "ScheduledPerformingPhysicianName", "ScheduledProcedureStepDescription", "ScheduledStationName",
    "ScheduledProcedureStepLocation", "ScheduledProtocolCodeSequence", "ScheduledProcedureStepID",
    "ScheduledProcedureStepStatus",
)
_IGNORED = {"SpecificCharacterSet", "QueryRetrieveLevel", "TimezoneOffsetFromUTC"}


class WorklistQuery:
    """A checked worklist identifier: matching values (keyword -> text) and the requested keys, each as
    (tag, VR, keyword, children) where children lists the keys asked inside a sequence (empty: all)."""

    def __init__(self, matching, requested, character_set):
        self.matching = matching
        self.requested = requested
        self.character_set = character_set


def handle_find(event):
    """PS3.4 K.4.1.3 C-FIND SCP behaviour: one pending response per matching step, then pynetdicom's final
    success; a cancel (C-CANCEL) stops at the next step. The audit event is written before the last response
    goes out, as in the archive's C-FIND."""
    calling_ae = services.calling_ae(event)
    audit = {"model": "modality worklist", "keys": "", "matches": 0}
    patients = {}  # id -> the step's patient, read with the step: naming it in the audit costs no query

    def record(outcome=AuditOutcome.SUCCESS, **extra):
        _audit(event, calling_ae, patients, outcome, **audit, **extra)

    try:
        if not may_query_worklist(calling_ae):
            record(AuditOutcome.SERIOUS_FAILURE, error="calling AE may not query the worklist")
            yield services.failure(NOT_AUTHORIZED, f"{calling_ae} may not query the worklist"), None
            return
        try:
            query = parse_identifier(event.identifier)
            audit["keys"] = "; ".join(f"{keyword}={value}" for keyword, value in query.matching.items())
            steps = scheduled_steps.worklist_steps(query.matching)
        except archive_query.QueryError as error:
            record(AuditOutcome.MINOR_FAILURE, error=error.comment)
            yield services.failure(error.status, error.comment), None
            return
        except Exception as error:  # noqa: BLE001 - an identifier pydicom cannot decode
            logger.info("worklist C-FIND from %s: undecodable identifier: %s", calling_ae, error)
            record(AuditOutcome.MINOR_FAILURE, error="identifier cannot be decoded")
            yield services.failure(status.CANNOT_UNDERSTAND, "identifier cannot be decoded"), None
            return
        transfer_syntax = UID(event.context.transfer_syntax)
        for step in steps:
            if event.is_cancelled:
                record(cancelled=True)
                yield CANCEL, None
                return
            patients[step.order.patient_id] = step.order.patient
            audit["matches"] += 1
            yield PENDING, response(query, step, transfer_syntax)
        record()
    finally:
        close_old_connections()


# ---------------------------------------------------------------------------------------------------------
# The identifier

def parse_identifier(identifier):
    """Read a worklist C-FIND identifier into a WorklistQuery, or raise archive.query.QueryError."""
    matching, requested = {}, []
    for element in identifier:
        keyword = element.keyword or keyword_for_tag(element.tag)
        if element.tag.group in (0x0000, 0x0002) or keyword in _IGNORED:
            continue
        if keyword == STEP_SEQUENCE:
            items = list(element.value or [])
            if len(items) > 1:
                # PS3.4 C.2.2.2.6 sequence matching: the identifier's sequence holds a single item.
                raise archive_query.QueryError(f"{STEP_SEQUENCE} must have one item")
            children = []
            for child in items[0] if items else []:
                child_keyword = child.keyword or keyword_for_tag(child.tag)
                children.append(_requested(child, child_keyword))
                _add_matching(matching, child, child_keyword)
            requested.append((element.tag, "SQ", keyword, children))
            continue
        requested.append(_requested(element, keyword))
        _add_matching(matching, element, keyword)
    return WorklistQuery(matching, requested, archive_query._character_set(identifier))


def _requested(element, keyword):
    vr = archive_query._vr(element)
    if vr != "SQ":
        return element.tag, vr, keyword, None
    items = list(element.value or [])
    children = [_requested(child, child.keyword or keyword_for_tag(child.tag)) for child in items[0]] if items \
        else []
    return element.tag, vr, keyword, children


def _add_matching(matching, element, keyword):
    if keyword not in scheduled_steps.SUPPORTED_KEYS:
        return  # returned (empty when we hold no value), never matched
    value = archive_query._text_value(element)
    if value:
        matching[keyword] = value


# ---------------------------------------------------------------------------------------------------------
# The responses

# Each response identifier is encoded here, from the row values, as pydicom raw data elements: pynetdicom then
# writes their bytes as they are (pydicom writes a Dataset of raw elements whose original encoding matches the
# transfer syntax without converting them, see Dataset.set_original_encoding). Building DataElements and
# having pydicom's generic writer encode them cost about 1 ms of CPU per matching step, a third of a worklist
# query of 25 steps.

# Explicit VR elements with a 4-byte length (PS3.5 7.1.2); every other VR has a 2-byte length.
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_ITEM, _ITEM_GROUP = 0xE000, 0xFFFE


class ResponseEncoding:
    """How one association's worklist responses are encoded: its presentation context's transfer syntax (any of
    the listener's uncompressed ones) and the response's character set."""

    def __init__(self, transfer_syntax, character_set):
        self.implicit_vr = transfer_syntax.is_implicit_VR
        self.little_endian = transfer_syntax.is_little_endian
        self.byte_order = "<" if self.little_endian else ">"
        self.character_set = character_set
        self.codec = "utf-8" if character_set == "ISO_IR 192" else "ascii"

    def text(self, vr, value):
        """The value bytes of a text element, padded to an even length (PS3.5 6.2)."""
        if not value:
            return b""
        encoded = value.encode(self.codec)
        if len(encoded) % 2:
            encoded += b"\0" if vr == "UI" else b" "
        return encoded

    def element(self, tag, vr, value):
        """A whole element (tag, VR, length, value) as it appears inside a sequence item."""
        group, element = tag >> 16, tag & 0xFFFF
        if self.implicit_vr:
            return _pack(self.byte_order + "HHI", group, element, len(value)) + value
        if vr in _LONG_VRS:
            return _pack(self.byte_order + "HH2sHI", group, element, vr.encode(), 0, len(value)) + value
        return _pack(self.byte_order + "HH2sH", group, element, vr.encode(), len(value)) + value

    def item(self, content):
        return _pack(self.byte_order + "HHI", _ITEM_GROUP, _ITEM, len(content)) + content

    def raw(self, tag, vr, value):
        return RawDataElement(BaseTag(tag), vr, len(value), value, 0, self.implicit_vr, self.little_endian)


def response(query, step, transfer_syntax):
    """The C-FIND response identifier for one scheduled step: exactly the requested keys, encoded for the
    transfer syntax of the request's presentation context."""
    values = _StepValues(step)
    try:
        # In the character set the query named: our ASCII values are valid in any of them.
        return _response(query, values, ResponseEncoding(transfer_syntax, query.character_set))
    except UnicodeEncodeError:
        # Our values are Unicode text: one that is not ASCII sends the whole answer in UTF-8 (PS3.5 6.1.2.3,
        # ISO_IR 192).
        return _response(query, values, ResponseEncoding(transfer_syntax, "ISO_IR 192"))


def _response(query, values, encoding):
    character_set = encoding.character_set
    elements = {}
    for tag, vr, keyword, children in query.requested:
        value = _sequence(keyword, children, values, encoding) if vr == "SQ" else \
            _text_value(vr, values.top_level(keyword), encoding)
        elements[BaseTag(tag)] = encoding.raw(tag, _written_vr(vr), value)
    if character_set:
        elements[SPECIFIC_CHARACTER_SET] = encoding.raw(SPECIFIC_CHARACTER_SET, "CS",
                                                        encoding.text("CS", character_set))
    dataset = Dataset(elements)
    dataset.set_original_encoding(encoding.implicit_vr, encoding.little_endian,
                                  convert_encodings(character_set) if character_set else default_encoding)
    return dataset


def _sequence(keyword, children, values, encoding):
    """The value of a sequence element: its one item (or none) with the requested keys."""
    if keyword == STEP_SEQUENCE:
        return encoding.item(_item(children or STEP_REQUESTED_KEYS, values.step, values, encoding))
    code = values.code(keyword)
    if code is None:
        return b""
    return encoding.item(_item(children or CODE_REQUESTED_KEYS, code.get, values, encoding))


def _item(requested, value_of, values, encoding):
    parts = []
    for tag, vr, keyword, children in sorted(requested, key=_by_tag):  # an item's elements go in tag order
        value = _sequence(keyword, children, values, encoding) if vr == "SQ" else \
            _text_value(vr, value_of(keyword), encoding)
        parts.append(encoding.element(tag, _written_vr(vr), value))
    return b"".join(parts)


def _text_value(vr, value, encoding):
    # PS3.4 C.2.2.1.3: a key we hold no value for is returned with a zero-length value. All the values we hold
    # are text (dates and times formatted as DA / TM).
    if value in ("", None) or vr not in STR_VR:
        return b""
    return encoding.text(vr, value)


def _written_vr(vr):
    # An identifier in implicit VR leaves a few keys' VR ambiguous in the dictionary ("US or SS"); their value
    # is empty (we hold none), so either VR is correct.
    return vr if len(vr) == 2 else vr[:2]


def _by_tag(key):
    return key[0]


def _requested_keys(keywords):
    return [(tag_for_keyword(keyword), dictionary_VR(keyword), keyword, []) for keyword in keywords]


STEP_REQUESTED_KEYS = _requested_keys(STEP_RETURN_KEYS)
CODE_REQUESTED_KEYS = _requested_keys(CODE_KEYS)
SPECIFIC_CHARACTER_SET = BaseTag(0x00080005)


class _StepValues:
    """The values one scheduled step answers with, by keyword (None: none held, returned empty). Each group is
    worked out once per step, on its first use."""

    def __init__(self, step):
        self.step_row = step
        self._top_level = self._step = None

    def top_level(self, keyword):
        if self._top_level is None:
            order = self.step_row.order
            patient, procedure = order.patient, order.procedure
            self._top_level = {
                "PatientName": patient.dicom_name,
                "PatientID": patient.mrn,
                "IssuerOfPatientID": patient.issuer,
                "PatientBirthDate": patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
                # DICOM knows M, F and O; "unknown" is an empty value (PS3.3 C.7.1.1).
                "PatientSex": patient.sex if patient.sex in ("M", "F", "O") else "",
                "AccessionNumber": order.accession_number,
                "ReferringPhysicianName": order.referring_physician_name,
                "RequestedProcedureID": order.requested_procedure_id,
                "RequestedProcedureDescription": procedure.name,
                "RequestedProcedurePriority": DICOM_PRIORITY[order.priority],
                "StudyInstanceUID": order.study_instance_uid,
                "ReasonForTheRequestedProcedure": order.reason[:64],  # LO
            }
        return self._top_level.get(keyword)

    def step(self, keyword):
        if self._step is None:
            step, station = self.step_row, self.step_row.station
            start = timezone.localtime(step.start, timezone.get_default_timezone())
            self._step = {
                "Modality": step.modality,
                "ScheduledStationAETitle": step.station_ae_title,
                "ScheduledProcedureStepStartDate": f"{start.year:04d}{start.month:02d}{start.day:02d}",
                "ScheduledProcedureStepStartTime": f"{start.hour:02d}{start.minute:02d}{start.second:02d}",
                "ScheduledProcedureStepDescription": step.description,
                "ScheduledStationName": station.name[:16] if station else "",  # SH
                "ScheduledProcedureStepLocation": station.location[:16] if station else "",  # SH
                "ScheduledProcedureStepID": step.step_id,
                "ScheduledProcedureStepStatus": step.status,
            }
        return self._step.get(keyword)

    def code(self, keyword):
        """The code item of a code sequence we hold: the procedure's, for the requested procedure and the
        scheduled protocol alike."""
        if keyword not in ("RequestedProcedureCodeSequence", "ScheduledProtocolCodeSequence"):
            return None
        procedure = self.step_row.order.procedure
        return {"CodeValue": procedure.code, "CodingSchemeDesignator": procedure.coding_scheme,
                "CodeMeaning": procedure.name}


# ---------------------------------------------------------------------------------------------------------
# Access and audit

def _audit(event, calling_ae, patients, outcome, **detail):
    # PS3.15 A.5.3.10: a Query is an "Execute" action; the patient is named when the answer concerns one.
    patient = next(iter(patients.values())) if len(patients) == 1 else None
    record_audit_event(
        AuditEventCode.QUERY, action="E", channel=AuditChannel.DICOM, actor=calling_ae, outcome=outcome,
        source_address=services.peer_address(event), patient=patient, called_ae=settings.DICOM_AET, **detail)
