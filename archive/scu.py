"""DICOM SCU operations towards remote nodes: C-STORE (send), C-FIND (query) and C-MOVE (retrieve).

Plain functions over pynetdicom; the background tasks (archive/tasks.py) decide what to do with the counts and
the errors. `PeerUnavailable` means "try again later" (no connection, association rejected or aborted, a peer
out of resources); `RequestRefused` means the peer understood the request and said no.
"""
import logging
import socket
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelMove,
)
from pynetdicom.status import (
    GENERAL_STATUS, QR_FIND_SERVICE_CLASS_STATUS, QR_MOVE_SERVICE_CLASS_STATUS, STORAGE_SERVICE_CLASS_STATUS,
)

from archive import status as dicom_status
from archive.storage import archive_storage

logger = logging.getLogger(__name__)

# PS3.8 9.3.2.2: a presentation context ID is an odd number 1-255, so one association carries at most 128.
MAX_CONTEXTS_PER_ASSOCIATION = 128
CONNECTION_TIMEOUT = 10
ACSE_TIMEOUT = 30
DIMSE_TIMEOUT = 120
NETWORK_TIMEOUT = 120

PENDING = (0xFF00, 0xFF01)
CANCEL = 0xFE00

# What a study-level C-FIND asks for when the caller does not (PS3.4 C.6.2.1.2 Study Root study level keys).
STUDY_RETURN_KEYS = (
    "StudyInstanceUID", "PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber", "StudyID", "ModalitiesInStudy",
    "ReferringPhysicianName", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)


class DicomPeerError(Exception):
    """Talking to a remote node did not work out."""


class PeerUnavailable(DicomPeerError):
    """The node could not be reached, refused or aborted the association, timed out, or was out of resources:
    worth trying again later. For a send, `counts` holds what was confirmed before it happened."""

    def __init__(self, message, counts=None):
        super().__init__(message)
        self.counts = counts


class RequestRefused(DicomPeerError):
    """The node answered a C-FIND or C-MOVE with a failure status that retrying will not change."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


@dataclass
class StoreCounts:
    """Outcome of C-STOREs, per PS3.4 B.2.3 status category."""

    succeeded: int = 0
    warnings: int = 0
    failed: int = 0
    # SOP Instance UID -> why it was not stored, for every failed instance.
    failures: dict = field(default_factory=dict)
    # Status code -> how many instances were stored with that warning.
    warning_statuses: dict = field(default_factory=lambda: defaultdict(int))
    # SOP Instance UIDs not sent at all because the association ended first.
    unsent: list = field(default_factory=list)

    @property
    def completed(self):
        """Instances the destination stored (success or warning)."""
        return self.succeeded + self.warnings


@dataclass
class MoveCounts:
    """Sub-operation counts of a C-MOVE (PS3.4 C.4.2.1.6, Table C.4-2)."""

    status: int = dicom_status.SUCCESS
    completed: int = 0
    failed: int = 0
    warnings: int = 0
    failed_sop_instance_uids: list = field(default_factory=list)


def describe_status(code, service_statuses=STORAGE_SERVICE_CLASS_STATUS):
    meaning = service_statuses.get(code) or GENERAL_STATUS.get(code)
    return f"0x{code:04X} {meaning[1]}" if meaning else f"0x{code:04X}"


# --- C-STORE --------------------------------------------------------------------------------------------------


def send_instances(node, instances, on_progress=None):
    """C-STORE `instances` (archive Instance rows) to `node`, each in the transfer syntax it is stored in.

    Instances are grouped so that each association requests at most 128 presentation contexts. Returns a
    StoreCounts; raises PeerUnavailable (with the counts so far) if an association cannot be made or ends early.
    `on_progress(counts)` is called after every response."""
    instances = list(instances)
    counts = StoreCounts()
    batches = _context_batches(instances)
    for number, (contexts, batch) in enumerate(batches):
        try:
            _send_batch(node, contexts, batch, counts, on_progress)
        except PeerUnavailable:
            counts.unsent.extend(instance.sop_instance_uid for _, later in batches[number + 1:] for instance in later)
            raise
    return counts


def _context_key(instance):
    """The presentation context an instance travels in: its own transfer syntax for compressed pixel data and
    big endian (PS3.5 A.4: encapsulated data cannot be converted on the fly; pynetdicom cannot swap bytes),
    one shared context per SOP class for the little endian uncompressed syntaxes, which convert freely."""
    syntax = UID(instance.transfer_syntax_uid)
    if syntax.is_compressed or syntax == ExplicitVRBigEndian:
        return instance.sop_class_uid, syntax
    return instance.sop_class_uid, None


def _context_batches(instances):
    """[(contexts, instances)] with at most MAX_CONTEXTS_PER_ASSOCIATION contexts each."""
    by_key = defaultdict(list)
    for instance in instances:
        by_key[_context_key(instance)].append(instance)
    keys = list(by_key)
    batches = []
    for start in range(0, len(keys), MAX_CONTEXTS_PER_ASSOCIATION):
        chosen = keys[start:start + MAX_CONTEXTS_PER_ASSOCIATION]
        contexts = [_build_context(key, by_key[key]) for key in chosen]
        batches.append((contexts, [instance for key in chosen for instance in by_key[key]]))
    return batches


def _build_context(key, instances):
    sop_class_uid, syntax = key
    if syntax is not None:
        return build_context(sop_class_uid, [syntax])
    # The stored syntaxes first, then Explicit VR Little Endian and the DICOM default Implicit VR Little Endian
    # (PS3.5 10.1) as fallbacks for a peer that does not take the stored one.
    stored = list(dict.fromkeys(instance.transfer_syntax_uid for instance in instances))
    syntaxes = list(dict.fromkeys(stored + [ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
    return build_context(sop_class_uid, syntaxes)


def _send_batch(node, contexts, instances, counts, on_progress):
    try:
        assoc = _associate(node, contexts)
    except PeerUnavailable as exc:
        counts.unsent.extend(instance.sop_instance_uid for instance in instances)
        raise PeerUnavailable(str(exc), counts) from None
    except _NoContextAccepted as exc:
        for instance in instances:
            _record_failure(counts, instance, str(exc))
        return
    storage = archive_storage()
    try:
        for position, instance in enumerate(instances):
            dataset = _read_instance(storage, instance, counts)
            if dataset is None:
                continue
            try:
                # PS3.7 9.3.1.1: Message IDs distinguish the requests of one association.
                response = assoc.send_c_store(dataset, msg_id=position % 0xFFFF + 1)
            except ValueError as exc:
                # No accepted presentation context for this SOP class and transfer syntax.
                _record_failure(counts, instance, f"not accepted by {node.ae_title}: {exc}")
                continue
            except RuntimeError:
                response = Dataset()  # the association ended under us
            if "Status" not in response:
                # pynetdicom answers an empty dataset when the peer aborted, timed out or answered nonsense:
                # in every case this association is of no further use.
                if assoc.is_established:
                    assoc.abort()
                counts.unsent.extend(later.sop_instance_uid for later in instances[position:])
                raise PeerUnavailable(
                    f"{node.ae_title} ended the association after {counts.completed} instances", counts)
            _record_status(counts, instance, response.Status)
            if on_progress is not None:
                on_progress(counts)
    finally:
        if assoc.is_established:
            assoc.release()


def _read_instance(storage, instance, counts):
    try:
        with storage.open(instance.storage_key) as handle:
            return dcmread(handle)
    except FileNotFoundError:
        _record_failure(counts, instance, "file missing from the archive storage")
    except (InvalidDicomError, OSError, ValueError) as exc:
        _record_failure(counts, instance, f"archived file unreadable: {exc}")
    return None


def _record_status(counts, instance, code):
    if code == dicom_status.SUCCESS:
        counts.succeeded += 1
    elif dicom_status.is_warning(code):
        counts.warnings += 1
        counts.warning_statuses[code] += 1
    else:
        _record_failure(counts, instance, describe_status(code))


def _record_failure(counts, instance, reason):
    counts.failed += 1
    counts.failures[instance.sop_instance_uid] = reason
    logger.warning("C-STORE of %s failed: %s", instance.sop_instance_uid, reason)


# --- C-FIND ---------------------------------------------------------------------------------------------------


def find_studies(node, **keys):
    """Study Root C-FIND at STUDY level on `node`. `keys` are matching keys by DICOM keyword
    (e.g. PatientID="MRN1"); the usual study attributes are asked for as return keys. Returns the matches."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for keyword in STUDY_RETURN_KEYS:
        setattr(query, keyword, "")
    for keyword, value in keys.items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"not a DICOM keyword: {keyword!r}")
        setattr(query, keyword, value)

    contexts = [build_context(StudyRootQueryRetrieveInformationModelFind)]
    matches = []
    assoc = _associate_or_fail(node, contexts)
    try:
        for response, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if "Status" not in response:
                raise PeerUnavailable(f"{node.ae_title} ended the association during C-FIND")
            code = response.Status
            if code in PENDING:
                if identifier is not None:
                    matches.append(identifier)
            elif code in (dicom_status.SUCCESS, CANCEL):
                break
            else:
                _raise_for_failure("C-FIND", node, code, QR_FIND_SERVICE_CLASS_STATUS)
    finally:
        if assoc.is_established:
            assoc.release()
    return matches


# --- C-MOVE ---------------------------------------------------------------------------------------------------


def move_study(node, study_instance_uid, destination_aet):
    """Ask `node` to C-STORE one study to `destination_aet` (Study Root C-MOVE at STUDY level). Returns the
    sub-operation counts of its final response; raises RequestRefused or PeerUnavailable when nothing moved."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_instance_uid

    contexts = [build_context(StudyRootQueryRetrieveInformationModelMove)]
    counts = MoveCounts()
    assoc = _associate_or_fail(node, contexts)
    try:
        final = None
        for response, dataset in assoc.send_c_move(
                identifier, destination_aet, StudyRootQueryRetrieveInformationModelMove):
            if "Status" not in response:
                raise PeerUnavailable(
                    f"{node.ae_title} ended the association during C-MOVE after {counts.completed} instances")
            _read_suboperation_counts(response, counts)
            if response.Status not in PENDING:
                final = response
                # PS3.4 C.4.2.1.6: a final response with failures may name them in the identifier.
                if dataset is not None and "FailedSOPInstanceUIDList" in dataset:
                    value = dataset.FailedSOPInstanceUIDList
                    counts.failed_sop_instance_uids = [value] if isinstance(value, str) else list(value)
                break
    finally:
        if assoc.is_established:
            assoc.release()

    if final is None:
        raise PeerUnavailable(f"{node.ae_title} sent no final C-MOVE response")
    counts.status = final.Status
    if counts.status not in (dicom_status.SUCCESS, CANCEL) and not dicom_status.is_warning(counts.status) \
            and counts.completed == 0:
        _raise_for_failure("C-MOVE", node, counts.status, QR_MOVE_SERVICE_CLASS_STATUS)
    return counts


def _read_suboperation_counts(response, counts):
    """The counts of the latest response. A final response may leave some out (PS3.7 C.4.3.1.4 makes them
    conditional), so a missing one keeps the previous value."""
    for keyword, attribute in (("NumberOfCompletedSuboperations", "completed"),
                               ("NumberOfFailedSuboperations", "failed"),
                               ("NumberOfWarningSuboperations", "warnings")):
        value = response.get(keyword)
        if value is not None:
            setattr(counts, attribute, int(value))


def _raise_for_failure(operation, node, code, service_statuses):
    description = describe_status(code, service_statuses)
    # 0xA7xx: out of resources (PS3.4 C.4.1.1.4, C.4.2.1.5): the peer may manage later.
    if 0xA700 <= code <= 0xA7FF:
        raise PeerUnavailable(f"{operation} refused by {node.ae_title}: {description}")
    raise RequestRefused(f"{operation} refused by {node.ae_title}: {description}", code)


# --- Associations ---------------------------------------------------------------------------------------------


class _NoContextAccepted(Exception):
    pass


def _associate(node, contexts):
    """An established association from our AE title to `node`, with TCP_NODELAY on its socket."""
    ae = AE(ae_title=settings.DICOM_AET)
    ae.connection_timeout = CONNECTION_TIMEOUT
    ae.acse_timeout = ACSE_TIMEOUT
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.network_timeout = NETWORK_TIMEOUT
    connected = []

    def on_connection_open(event):
        # pynetdicom writes each PDU in two pieces and never sets TCP_NODELAY: without it every exchange can
        # wait 40 ms for a delayed ACK (docs/architecture.md, performance). Set before A-ASSOCIATE-RQ goes out.
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connected.append(True)

    assoc = ae.associate(node.host, node.port, contexts=contexts, ae_title=node.ae_title,
                         evt_handlers=[(evt.EVT_CONN_OPEN, on_connection_open)])
    if assoc.is_established:
        return assoc
    if not connected:
        raise PeerUnavailable(f"could not connect to {node.ae_title} at {node.host}:{node.port}")
    answer = assoc.acceptor.primitive
    if assoc.is_rejected and answer is not None:
        raise PeerUnavailable(
            f"{node.ae_title} rejected the association ({answer.result_str}, {answer.source_str}: "
            f"{answer.reason_str})")
    if answer is not None and answer.result == 0x00:
        raise _NoContextAccepted(f"{node.ae_title} accepted none of the proposed presentation contexts")
    raise PeerUnavailable(f"{node.ae_title} aborted the association or did not answer")


def _associate_or_fail(node, contexts):
    try:
        return _associate(node, contexts)
    except _NoContextAccepted as exc:
        raise RequestRefused(str(exc), None) from None
