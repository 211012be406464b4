"""STOW-RS (PS3.18 10.5): storing instances sent as `multipart/related; type="application/dicom"`.

The request body is read in chunks and every part is written straight into a file in the archive's `.incoming/`
folder, so a large study never sits in memory. Only when the whole body has been read and found well formed is
each part handed to `archive.ingest.ingest_file`, the ingest path C-STORE uses too: a malformed body stores
nothing. The answer is the PS3.18 10.5.3 store response (Referenced and Failed SOP Sequences) in DICOM JSON.
"""
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.http import JsonResponse
from django.views.decorators.http import require_POST
from pydicom import dcmread
from pydicom.dataset import Dataset

from archive import status
from archive.dicom_values import valid_uid
from archive.dicomweb.access import dicomweb_endpoint
from archive.dicomweb.dicom_json import (MEDIA_TYPE, base_url, dataset_to_json, dicom_json_response, instance_url,
                                         study_url)
from archive.ingest import ingest_file
from archive.models import Study
from archive.storage import archive_storage
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
MAX_PART_HEADER_BYTES = 16 * 1024
# What a store must leave free on the archive's filesystem: a body that would cut into it is refused before it is
# written (by its Content-Length) or as soon as it passes the limit (a chunked body without one).
DISK_RESERVE_BYTES = 512 * 1024 * 1024

# PS3.18 Table 10.5.3-2 failure reasons (values of the DIMSE Storage statuses, PS3.4 B.2.3).
PROCESSING_FAILURE = 0x0110
REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122


class MalformedBody(Exception):
    """The body is not a well-formed multipart/related entity (PS3.18 10.5.3: 400 Bad Request)."""


class TooLarge(Exception):
    """The body would fill the archive's disk (HTTP 413 Content Too Large, RFC 9110 15.5.14)."""


class UnsupportedMediaType(Exception):
    """The request is not multipart/related of application/dicom (PS3.18 10.5.3: 415)."""


@dataclass
class ReceivedPart:
    path: Path
    content_type: str


@dataclass
class StoreOutcome:
    # (sop_class_uid, sop_instance_uid, retrieve_url, warning_reason or None, warning text)
    referenced: list = field(default_factory=list)
    # (sop_class_uid, sop_instance_uid, failure_reason, text)
    failed: list = field(default_factory=list)
    study_uids: set = field(default_factory=set)


def boundary_of(content_type):
    """The boundary of a `multipart/related; type="application/dicom"` request, or UnsupportedMediaType /
    MalformedBody. RFC 2387: `type` names the root part's media type; PS3.18 10.5.1.2 requires it."""
    media_type, parameters = _parse_media_type(content_type)
    if media_type != "multipart/related":
        raise UnsupportedMediaType(f"expected multipart/related, got {media_type or 'no Content-Type'}")
    part_type = parameters.get("type", "").lower()
    if part_type != "application/dicom":
        raise UnsupportedMediaType(f'multipart/related of type "{part_type}" is not supported; '
                                   'send type="application/dicom"')
    boundary = parameters.get("boundary", "")
    if not boundary or len(boundary) > 70:  # RFC 2046 5.1.1: 1 to 70 characters
        raise MalformedBody("the multipart boundary is missing or longer than 70 characters")
    return boundary.encode("latin-1")


def _parse_media_type(value):
    media_type, _, rest = (value or "").partition(";")
    parameters = {}
    for item in _split_parameters(rest):
        name, _, parameter = item.partition("=")
        parameter = parameter.strip()
        if len(parameter) >= 2 and parameter[0] == parameter[-1] == '"':
            parameter = parameter[1:-1]
        parameters[name.strip().lower()] = parameter
    return media_type.strip().lower(), parameters


def _split_parameters(text):
    """Split `a=1; b="x;y"` at semicolons outside quotes."""
    items, current, quoted = [], "", False
    for character in text:
        if character == '"':
            quoted = not quoted
        if character == ";" and not quoted:
            items.append(current)
            current = ""
        else:
            current += character
    items.append(current)
    return [item for item in items if item.strip()]


def receive_parts(stream, boundary, storage, byte_limit):
    """Read a multipart body from `stream` (a file-like object with `read(n)`) chunk by chunk, writing each
    part's content into a new file from `storage.incoming_file()`. Returns the ReceivedParts; raises
    MalformedBody when the body does not follow RFC 2046 5.1 and TooLarge when it exceeds `byte_limit`, after
    removing the files it wrote."""
    parts = []
    try:
        _receive(_Reader(stream, byte_limit), b"\r\n--" + boundary, storage, parts)
    except BaseException:
        discard(parts)
        raise
    if not parts:
        raise MalformedBody("the multipart body holds no part")
    return parts


def discard(parts):
    for part in parts:
        part.path.unlink(missing_ok=True)


class _Reader:
    """A buffer over the request stream."""

    def __init__(self, stream, byte_limit):
        self.stream = stream
        self.buffer = b"\r\n"  # so that a delimiter at the very start is found like any other (RFC 2046 5.1.1)
        self.ended = False
        self.remaining = byte_limit

    def fill(self):
        if self.ended:
            return False
        chunk = self.stream.read(CHUNK_SIZE)
        if not chunk:
            self.ended = True
            return False
        self.remaining -= len(chunk)
        if self.remaining < 0:
            raise TooLarge("the request body would fill the archive's disk")
        self.buffer += chunk
        return True


def _receive(reader, delimiter, storage, parts):
    # Preamble: everything before the first delimiter is ignored.
    while (position := reader.buffer.find(delimiter)) < 0:
        reader.buffer = reader.buffer[-(len(delimiter) - 1):]
        if not reader.fill():
            raise MalformedBody("no multipart boundary found in the body")
    reader.buffer = reader.buffer[position + len(delimiter):]
    while True:
        if _after_delimiter_is_close(reader):
            return
        content_type = _part_headers(reader)
        with storage.incoming_file() as target:
            parts.append(ReceivedPart(Path(target.name), content_type))
            _copy_part_content(reader, delimiter, target)


def _after_delimiter_is_close(reader):
    """After a delimiter: `--` closes the body; otherwise optional whitespace and CRLF start a part."""
    while len(reader.buffer) < 2 and reader.fill():
        pass
    if reader.buffer.startswith(b"--"):
        return True
    while (end := reader.buffer.find(b"\r\n")) < 0:
        if len(reader.buffer) > MAX_PART_HEADER_BYTES or not reader.fill():
            raise MalformedBody("a multipart boundary line is not terminated")
    if reader.buffer[:end].strip(b" \t"):
        raise MalformedBody("unexpected text after a multipart boundary")
    reader.buffer = reader.buffer[end + 2:]
    return False


def _part_headers(reader):
    """The part's headers up to the empty line; returns its Content-Type (RFC 2046: text/plain when absent)."""
    while len(reader.buffer) < 2 and reader.fill():
        pass
    if reader.buffer.startswith(b"\r\n"):
        reader.buffer = reader.buffer[2:]
        return "text/plain"
    while (end := reader.buffer.find(b"\r\n\r\n")) < 0:
        if len(reader.buffer) > MAX_PART_HEADER_BYTES or not reader.fill():
            raise MalformedBody("the headers of a part are not terminated by an empty line")
    header_block, reader.buffer = reader.buffer[:end], reader.buffer[end + 4:]
    content_type = "text/plain"
    for line in header_block.decode("latin-1").split("\r\n"):
        name, separator, value = line.partition(":")
        if not separator:
            raise MalformedBody(f"a part header is not a 'Name: value' line: {line[:80]!r}")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    return content_type


def _copy_part_content(reader, delimiter, target):
    """Write the part's content up to the next delimiter into `target`, keeping in memory only a chunk plus
    the few bytes that could be the start of a delimiter split across chunks."""
    keep = len(delimiter) - 1
    while True:
        position = reader.buffer.find(delimiter)
        if position >= 0:
            target.write(reader.buffer[:position])
            reader.buffer = reader.buffer[position + len(delimiter):]
            return
        if len(reader.buffer) > keep:
            target.write(reader.buffer[:-keep])
            reader.buffer = reader.buffer[-keep:]
        if not reader.fill():
            raise MalformedBody("the multipart body ends before its closing boundary")


def store_parts(parts, study_instance_uid, retrieve_url):
    """Ingest each received part; `study_instance_uid` (from the URL) refuses instances of other studies.
    `retrieve_url(study, series, sop)` builds the RetrieveURL of an instance. Returns a StoreOutcome."""
    outcome = StoreOutcome()
    for part in parts:
        media_type, _ = _parse_media_type(part.content_type)
        if media_type != "application/dicom":
            outcome.failed.append(("", "", status.CANNOT_UNDERSTAND,
                                   f"a part of type {media_type} is not application/dicom"))
            part.path.unlink(missing_ok=True)
            continue
        _add_missing_preamble(part)
        class_uid, instance_uid, part_study = _identify(part.path)
        if study_instance_uid and part_study and part_study != study_instance_uid:
            # PS3.18 10.5.3.1: an instance that does not belong to the target study is not stored.
            outcome.failed.append((class_uid, instance_uid, status.DATASET_MISMATCH,
                                   "the instance belongs to another study than the one in the request URL"))
            part.path.unlink(missing_ok=True)
            continue
        result = ingest_file(part.path)
        if not result.ok:
            outcome.failed.append((class_uid, result.sop_instance_uid or instance_uid,
                                   _failure_reason(result.status), result.reason))
            continue
        instance = result.instance
        series = instance.series
        study_uid = series.study.study_instance_uid
        outcome.study_uids.add(study_uid)
        warning = result.status if status.is_warning(result.status) else None
        outcome.referenced.append((instance.sop_class_uid, instance.sop_instance_uid,
                                   retrieve_url(study_uid, series.series_instance_uid, instance.sop_instance_uid),
                                   warning, result.reason))
    return outcome


def _add_missing_preamble(part):
    """PS3.10 7.1: a DICOM file starts with a 128-byte preamble and "DICM". Some clients (pydicom's dcmwrite
    of a data set read from elsewhere, as dicomweb-client sends it) write the File Meta Information without
    them; such a part gets the empty preamble and prefix, and its bytes are otherwise kept as sent."""
    with open(part.path, "rb") as handle:
        start = handle.read(132)
    if start[128:132] == b"DICM" or not start.startswith(b"\x02\x00"):
        return
    with open(part.path, "rb") as source, archive_storage().incoming_file() as target:
        target.write(b"\x00" * 128 + b"DICM")
        shutil.copyfileobj(source, target, CHUNK_SIZE)
    part.path.unlink()
    part.path = Path(target.name)


def _identify(path):
    """SOP Class, SOP Instance and Study Instance UID of a part, as far as they can be read, for the response."""
    try:
        dataset = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID",
                                                                         "StudyInstanceUID"])
        values = [str(dataset.get(keyword, "") or "").strip()
                  for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")]
    except Exception:  # noqa: BLE001 - not DICOM at all: ingest says so with its own reason
        return "", "", ""
    return tuple(value if valid_uid(value) else "" for value in values)


def _failure_reason(code):
    """The DIMSE status of a refused instance as a PS3.18 Table 10.5.3-2 failure reason."""
    if code in (status.OUT_OF_RESOURCES, status.DATASET_MISMATCH, status.CANNOT_UNDERSTAND,
                status.DUPLICATE_SOP_INSTANCE, REFERENCED_SOP_CLASS_NOT_SUPPORTED):
        return code
    return PROCESSING_FAILURE


def store_response(outcome, study_retrieve_url):
    """The PS3.18 10.5.3 store response dataset as DICOM JSON (PS3.18 F.2)."""
    response = Dataset()
    if study_retrieve_url:
        response.RetrieveURL = study_retrieve_url
    if outcome.referenced:
        items = []
        for class_uid, instance_uid, url, warning, _reason in outcome.referenced:
            item = Dataset()
            item.ReferencedSOPClassUID = class_uid
            item.ReferencedSOPInstanceUID = instance_uid
            item.RetrieveURL = url
            if warning is not None:
                item.WarningReason = warning
            items.append(item)
        response.ReferencedSOPSequence = items
    if outcome.failed:
        items = []
        for class_uid, instance_uid, reason, _text in outcome.failed:
            item = Dataset()
            if class_uid:
                item.ReferencedSOPClassUID = class_uid
            if instance_uid:
                item.ReferencedSOPInstanceUID = instance_uid
            item.FailureReason = reason
            items.append(item)
        response.FailedSOPSequence = items
    return dataset_to_json(response)


def http_status(outcome):
    """PS3.18 10.5.3: 200 when every instance was stored, 409 when none was, 202 in between or with warnings."""
    if not outcome.referenced:
        return 409
    if outcome.failed or any(warning is not None for _, _, _, warning, _ in outcome.referenced):
        return 202
    return 200


def warning_header(outcome):
    """PS3.18 8.7.5 Warning header texts (RFC 7234 code 299) for what was not stored as sent."""
    texts = [f"{instance_uid or 'a part'}: {text}" for _, instance_uid, _, text in outcome.failed]
    texts += [f"{instance_uid}: {text}" for _, instance_uid, _, warning, text in outcome.referenced
              if warning is not None]
    if not texts:
        return None
    summary = "; ".join(texts)[:1000].replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'299 radiology "{summary}"'


def _error(status_code, detail):
    return JsonResponse({"detail": detail}, status=status_code)


@require_POST
@dicomweb_endpoint("archive.add_instance")
def store_instances(request, study=None):
    """POST /dicomweb/studies and /dicomweb/studies/{study} (PS3.18 10.5)."""
    if study is not None and not valid_uid(study):
        return _error(400, f"not a valid Study Instance UID: {study[:80]!r}")
    try:
        boundary = boundary_of(request.META.get("CONTENT_TYPE", ""))
    except UnsupportedMediaType as exc:
        return _error(415, str(exc))
    except MalformedBody as exc:
        return _error(400, str(exc))
    storage = archive_storage()
    byte_limit = storage.free_bytes() - DISK_RESERVE_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > byte_limit:
        return _error(413, "the request body is larger than the archive can take now")
    try:
        # request.read reads the request stream itself: Django does not load a multipart/related body at once.
        parts = receive_parts(request, boundary, storage, byte_limit)
    except MalformedBody as exc:
        return _error(400, f"malformed multipart body: {exc}")
    except TooLarge as exc:
        return _error(413, str(exc))
    try:
        base = base_url(request)
        outcome = store_parts(parts, study, lambda *uids: instance_url(base, *uids))
    finally:
        discard(parts)  # whatever ingest did not move into the archive
    _audit(request, outcome)
    study_uid = study or (next(iter(outcome.study_uids)) if len(outcome.study_uids) == 1 else None)
    body = store_response(outcome, study_url(base, study_uid) if study_uid else None)
    warning = warning_header(outcome)
    response = dicom_json_response(body, status=http_status(outcome), **({"Warning": warning} if warning else {}))
    # Without a charset parameter (JSON is UTF-8, RFC 8259): dicomweb-client reads the store response only
    # when the Content-Type is exactly application/dicom+json.
    response["Content-Type"] = MEDIA_TYPE
    return response


def _audit(request, outcome):
    studies = list(Study.objects.filter(study_instance_uid__in=outcome.study_uids).select_related("patient"))
    patients = {study.patient for study in studies}
    # PS3.15 A.5.3.4: the receiver records "Create" for the instances it stored.
    record_audit_event(
        AuditEventCode.DICOM_INSTANCES_TRANSFERRED, action="C", channel=AuditChannel.DICOMWEB,
        actor=request.user.get_username(), user=request.user, source_address=request.META.get("REMOTE_ADDR", ""),
        patient=patients.pop() if len(patients) == 1 else None,
        outcome=(AuditOutcome.SUCCESS if not outcome.failed else
                 AuditOutcome.MINOR_FAILURE if outcome.referenced else AuditOutcome.SERIOUS_FAILURE),
        object_type="study" if len(studies) == 1 else "",
        object_id=studies[0].study_instance_uid if len(studies) == 1 else "",
        study_instance_uids=sorted(outcome.study_uids), stored=len(outcome.referenced), failed=len(outcome.failed),
        failures=[{"sop_instance_uid": uid, "reason": f"0x{reason:04X}", "text": text}
                  for _, uid, reason, text in outcome.failed])
