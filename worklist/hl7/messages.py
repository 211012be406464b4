"""HL7 v2 messages as the listener sees them: checking the header, reading fields, building acknowledgements.

Parsing is python-hl7's; what is added here is the strictness an interface engine expects from a receiver
(HL7 v2.5.1 chapter 2): a message whose MSH cannot be read is rejected (AR) rather than guessed at, and every
answer is an original-mode ACK whose ERR segment names the field at fault (ERR-2), the error code of HL7 table
0357 (ERR-3), the severity (ERR-4) and a sentence for the person at the interface engine (ERR-8).
"""
import datetime
import re
import uuid
from dataclasses import dataclass

import hl7
from django.utils import timezone
from hl7.util import escape

# HL7 table 0008: acknowledgement codes.
ACCEPT, ERROR, REJECT = "AA", "AE", "AR"

# HL7 table 0357: message error condition codes.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY_IDENTIFIER = "204"
DUPLICATE_KEY_IDENTIFIER = "205"
APPLICATION_INTERNAL_ERROR = "207"

ERROR_TEXT = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# What the platform calls itself in MSH-3 of its ACKs when the sender named no receiving application.
RECEIVING_APPLICATION = "RADIOLOGY"
DEFAULT_VERSION = "2.5.1"
_DEFAULT_ENCODING = "^~\\&"
# HL7 null: a field sent as "" means "delete the value", an empty field "no change" (v2.5.1 2.5.3).
HL7_NULL = '""'


class MessageProblem(Exception):
    """What is wrong with a message, in HL7 terms: an error code of table 0357, where (segment, field) and a
    sentence for the sender's operator."""

    acknowledgement = ERROR

    def __init__(self, text, code=APPLICATION_INTERNAL_ERROR, segment="", field=None, sequence=1):
        super().__init__(text)
        self.text = text
        self.code = code
        self.segment = segment
        self.field = field
        self.sequence = sequence


class MessageError(MessageProblem):
    """The message was understood but its content cannot be applied: AE, nothing applied."""


class MessageRejected(MessageProblem):
    """The message cannot be processed at all (header unreadable, type not supported): AR."""

    acknowledgement = REJECT


@dataclass
class Header:
    """The MSH fields an acknowledgement and the duplicate check need (empty when unreadable)."""

    field_separator: str = "|"
    encoding_characters: str = _DEFAULT_ENCODING
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger_event: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""

    @property
    def type_name(self):
        return f"{self.message_type}^{self.trigger_event}" if self.trigger_event else self.message_type


def decode(block):
    """The text of an MLLP block, as received. UTF-8 is what senders use today; an ISO 8859-1 message (MSH-18
    8859/1) is not valid UTF-8 and is read as Latin-1, which cannot fail, so no message is lost to its
    character set."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("latin-1")


def normalise(text):
    """The message text to process: segments end with CR (v2.5.1 2.5.5), though some senders use LF or CRLF."""
    return text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x00 \t")


def read_header(text):
    """The header of `text` as far as it can be read, without judging it: an ACK can then answer even a
    message that is rejected."""
    header = Header()
    if not text.startswith("MSH") or len(text) < 8:
        return header
    separator = text[3]
    if separator.isalnum() or separator in "\r ":
        return header
    fields = text.split("\r", 1)[0].split(separator)
    # fields[0] is "MSH", fields[1] the encoding characters (MSH-2); MSH-n is fields[n - 1].
    header.field_separator = separator
    header.encoding_characters = fields[1]
    component = fields[1][0] if fields[1] else "^"

    def field(number, component_number=1):
        if len(fields) < number:
            return ""
        parts = fields[number - 1].split(component)
        return parts[component_number - 1].strip() if len(parts) >= component_number else ""

    header.sending_application, header.sending_facility = field(3), field(4)
    header.receiving_application, header.receiving_facility = field(5), field(6)
    header.message_type, header.trigger_event = field(9).upper(), field(9, 2).upper()
    header.control_id, header.processing_id, header.version = field(10), field(11), field(12)
    return header


def check_header(text, header):
    """Raise MessageRejected when the message cannot be processed at all (HL7 v2.5.1 2.9.2: the receiver
    rejects what fails its header checks with AR)."""
    if not text.startswith("MSH"):
        first = text.split("\r", 1)[0][:3] or "nothing"
        raise MessageRejected(f"the message must begin with an MSH segment; it begins with {first!r}",
                              SEGMENT_SEQUENCE_ERROR, "MSH", 0)
    separator = text[3:4]
    encoding = text[4:text.find(separator, 4)] if separator and text.find(separator, 4) > 0 else ""
    # MSH-1 and MSH-2: four distinct delimiters (component, repetition, escape, subcomponent; v2.7 adds a
    # fifth, truncation), none of them a letter, digit, space or the field separator.
    delimiters = separator + encoding
    if (not separator or len(encoding) not in (4, 5) or len(set(delimiters)) != len(delimiters)
            or any(character.isalnum() or character.isspace() for character in delimiters)):
        raise MessageRejected(
            f"MSH-1/MSH-2 encoding characters {delimiters[:8]!r} are not valid: expected a field separator and "
            f"four distinct delimiters such as '|^~\\&'", DATA_TYPE_ERROR, "MSH", 2)
    if not header.control_id:
        raise MessageRejected("MSH-10 message control ID is missing", REQUIRED_FIELD_MISSING, "MSH", 10)
    if not header.message_type:
        raise MessageRejected("MSH-9 message type is missing", REQUIRED_FIELD_MISSING, "MSH", 9)
    if header.version and not header.version.startswith("2."):
        raise MessageRejected(f"MSH-12 version {header.version} is not HL7 v2", UNSUPPORTED_VERSION_ID, "MSH", 12)


def parse(text):
    """The python-hl7 Message of a text that passed check_header."""
    try:
        return hl7.parse(text)
    except (hl7.ParseException, ValueError, IndexError) as exc:
        raise MessageRejected(f"the message cannot be parsed: {exc}", SEGMENT_SEQUENCE_ERROR) from None


# ---------------------------------------------------------------------------------------------------------
# Reading fields

def segments(message, segment_id):
    """Every `segment_id` segment of the message, in order (an empty list when there is none)."""
    return [segment for segment in message if str(segment[0][0]) == segment_id]


def required_segment(message, segment_id):
    found = segments(message, segment_id)
    if not found:
        raise MessageError(f"the message has no {segment_id} segment", SEGMENT_SEQUENCE_ERROR, segment_id, 0)
    return found[0]


def value(segment, field, component=1, repetition=1, subcomponent=1):
    """One value of a segment, unescaped and stripped; "" when absent."""
    if segment is None:
        return ""
    try:
        return str(segment.extract_field(1, field, repetition, component, subcomponent)).strip()
    except (IndexError, TypeError):
        return ""


def repetitions(segment, field):
    """How many repetitions field `field` of `segment` has (0 when absent or empty)."""
    if segment is None or len(segment) <= field:
        return 0
    contents = segment[field]
    if isinstance(contents, str):
        return 1 if contents else 0
    return len(contents)


def parse_timestamp(text, segment, field):
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]) as an aware datetime; local time when no offset is
    given. Raises MessageError (102) for anything else."""
    match = re.fullmatch(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?", text)
    if not match:
        raise MessageError(f"{segment}-{field} {text!r} is not an HL7 date/time (YYYYMMDDHHMM[SS][+ZZZZ])",
                           DATA_TYPE_ERROR, segment, field)
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                                   int(second or 0))
    except ValueError:
        raise MessageError(f"{segment}-{field} {text!r} is not a valid date/time", DATA_TYPE_ERROR, segment,
                           field) from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        zone = datetime.timezone(sign * datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return moment.replace(tzinfo=zone)
    return timezone.make_aware(moment)


def parse_date(text, segment, field):
    """An HL7 DT/DTM as a date (the time part, if any, ignored); MessageError (102) when it is not one."""
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:\d{0,6}(?:\.\d{1,4})?)?(?:[+-]\d{4})?", text)
    try:
        if not match:
            raise ValueError
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise MessageError(f"{segment}-{field} {text!r} is not an HL7 date (YYYYMMDD)", DATA_TYPE_ERROR,
                           segment, field) from None


# ---------------------------------------------------------------------------------------------------------
# Acknowledgements

def new_control_id():
    return uuid.uuid4().hex[:20].upper()


def build_ack(header, code, problem=None):
    """An original-mode ACK (HL7 v2.5.1 2.14.1) for a message with this header, as text with CR separators.

    MSH mirrors the sender (our MSH-3/4 are its MSH-5/6, its MSH-3/4 our MSH-5/6); MSH-10 is new; MSA-2 is the
    original control ID; the version is the message's. An AE or AR carries an ERR segment and MSA-3 text, which
    v2.3 engines still show."""
    separator = header.field_separator
    encoding = header.encoding_characters if _usable(separator, header.encoding_characters) else _DEFAULT_ENCODING
    if not _usable(separator, encoding):
        separator, encoding = "|", _DEFAULT_ENCODING
    component, repetition, escape_character, subcomponent = encoding[:4]
    escaper = _Escaper(separator, encoding)
    trigger = header.trigger_event
    msh = [
        "MSH", encoding,
        escaper(header.receiving_application or RECEIVING_APPLICATION), escaper(header.receiving_facility),
        escaper(header.sending_application), escaper(header.sending_facility),
        timezone.localtime().strftime("%Y%m%d%H%M%S%z"), "",
        component.join(["ACK", escaper(trigger), "ACK"]) if trigger else "ACK",
        new_control_id(), escaper(header.processing_id) or "P", escaper(header.version) or DEFAULT_VERSION,
    ]
    msa = ["MSA", code, escaper(header.control_id)]
    segments_out = [separator.join(msh)]
    if problem is not None:
        text = escaper(problem.text)
        msa.append(text)
        location = ""
        if problem.segment:
            location = component.join([problem.segment, str(problem.sequence),
                                       str(problem.field) if problem.field else ""]).rstrip(component)
        error_code = component.join([problem.code, ERROR_TEXT.get(problem.code, ""), "HL70357"])
        # ERR-1 (v2.3 style location + code) is left empty: ERR-2..8 carry the same, and v2.5 deprecates it.
        segments_out.append(separator.join(["ERR", "", location, error_code, "E", "", "", "", text]))
    segments_out.insert(1, separator.join(msa))
    return "\r".join(segments_out) + "\r"


def _usable(separator, encoding):
    delimiters = separator + (encoding or "")
    return (len(encoding or "") in (4, 5) and len(set(delimiters)) == len(delimiters)
            and not any(character.isalnum() or character.isspace() for character in delimiters))


class _Escaper:
    """HL7 escape sequences (v2.5.1 2.7) with the message's own delimiters, through python-hl7's escape."""

    def __init__(self, separator, encoding):
        self._container = hl7.Message(separators="\r" + separator + encoding[1] + encoding[0] + encoding[3],
                                      esc=encoding[2])

    def __call__(self, text):
        return escape(self._container, text or "")
