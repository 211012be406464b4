"""The archive's DICOM listener: one pynetdicom application entity that `manage.py serve` runs as its "dicom"
component, serving Verification, Storage, Storage Commitment Push Model (archive/dimse/storage.py) and
Query/Retrieve (archive/dimse/query_retrieve.py).

Who may do what: the called AE title must be ours; the calling AE title must belong to a registered DicomNode
(`manage.py dicomnode add`) or be one that a service of another app knows (archive/dimse/services.py: the
worklist's stations), read from the database on every association, unless RADIOLOGY_DICOM_OPEN is set. Each
request then checks the node's allow_store / allow_query, or the service's own rule. Every association leaves a
Network Entry audit event, and one that stored instances a DICOM Instances Transferred event when it ends.
"""
import ctypes
import logging
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian, HTJ2K, HTJ2KLossless,
    HTJ2KLosslessRPCL, ImplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit,
    JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless, RLELossless,
)
from pynetdicom import AE, _config, dimse_messages, evt
from pynetdicom.dimse_messages import N_ACTION_RSP
from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT, A_RELEASE
from pynetdicom.presentation import AllStoragePresentationContexts, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel, Verification
from pynetdicom.transport import ThreadedAssociationServer

from archive.commitment import check_commitment
from archive.dimse import services
from archive.models import DicomNode, Study
from archive.storage import archive_storage
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.heartbeat import Heartbeat
from radiology.models import ServiceHeartbeat
from radiology.server import StartupError

logger = logging.getLogger(__name__)

# PS3.7 C.5: general status "Refused: Not Authorized", for a node whose allow_store / allow_query is off.
NOT_AUTHORIZED = 0x0124

# Transfer syntaxes accepted for storage, in the order we prefer when one presentation context offers several
# (PS3.8 7.1.1.13: the acceptor picks). Uncompressed first so a sender is never asked to compress, least of all
# lossily, on our behalf; whatever syntax is agreed, the data set is stored as it arrived.
UNCOMPRESSED_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
STORAGE_SYNTAXES = [
    *UNCOMPRESSED_SYNTAXES,
    DeflatedExplicitVRLittleEndian,
    JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEG2000Lossless, HTJ2KLossless, HTJ2KLosslessRPCL, RLELossless,
    JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000, HTJ2K,
]

# PS3.4 J.3.5: the well-known SOP Instance of the Storage Commitment Push Model.
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"

# Simultaneous associations pynetdicom accepts before answering "local limit exceeded". Each one is a thread;
# ingest serialises only the short index commit, so this many senders at once is comfortable.
MAXIMUM_ASSOCIATIONS = 64
# Largest PDU we ask senders to use: fewer, larger fragments cost less Python per instance than the
# default 16 KiB.
MAXIMUM_PDU_SIZE = 128 * 1024
# A file in .incoming untouched this long belongs to no transfer in progress: every fragment received
# rewrites it, and an association silent for the network timeout (60 s) is aborted.
INCOMING_STALE_SECONDS = 600
INCOMING_SWEEP_SECONDS = 300
# Delivering a storage commitment result on a new association: attempts, and seconds between them.
REPORT_ATTEMPTS = 3
REPORT_RETRY_SECONDS = 10


# ---------------------------------------------------------------------------------------------------------
# Access rules (also used by archive/dimse/query_retrieve.py)

def node_for(ae_title):
    """The registered DicomNode with this AE title, or None."""
    return DicomNode.objects.filter(ae_title=(ae_title or "").strip()).first()


def may_associate(ae_title):
    return (settings.DICOM_OPEN or node_for(ae_title) is not None
            or services.knows_calling_ae((ae_title or "").strip()))


def may_store(ae_title):
    """Whether this calling AE may send us instances (C-STORE) and ask us to commit to them."""
    if settings.DICOM_OPEN:
        return True
    node = node_for(ae_title)
    return node is not None and node.allow_store


def may_query(ae_title):
    """Whether this calling AE may query and retrieve (C-FIND, C-MOVE, C-GET)."""
    if settings.DICOM_OPEN:
        return True
    node = node_for(ae_title)
    return node is not None and node.allow_query


# ---------------------------------------------------------------------------------------------------------
# What the listener remembers about each association while it runs

@dataclass(frozen=True)
class CommitmentRequest:
    transaction_uid: str
    references: list  # of archive.commitment.Reference


@dataclass
class AssociationSession:
    calling_ae: str
    called_ae: str
    peer_address: str
    outcomes: Counter = field(default_factory=Counter)  # ingest outcome -> instances
    series_ids: set = field(default_factory=set)  # of the instances stored or already held
    commitment_requests: dict = field(default_factory=dict)  # N-ACTION message ID -> CommitmentRequest
    lock: threading.Lock = field(default_factory=threading.Lock)


# Keyed weakly by pynetdicom Association: an association that ends without a release or abort event
# (its connection lost before negotiation) leaves nothing behind.
_sessions = weakref.WeakKeyDictionary()
_sessions_lock = threading.Lock()


def session_for(association):
    with _sessions_lock:
        return _sessions.get(association)


def record_store(association, result):
    """Count one C-STORE outcome (an archive.ingest.IngestResult) for the association's audit event."""
    session = session_for(association)
    if session is None:
        return
    with session.lock:
        session.outcomes[result.outcome] += 1
        if result.instance is not None:
            session.series_ids.add(result.instance.series_id)


def expect_commitment_report(association, message_id, request):
    """Remember an accepted N-ACTION; its N-EVENT-REPORT goes out once the N-ACTION response has been sent."""
    session = session_for(association)
    with session.lock:
        session.commitment_requests[message_id] = request


# ---------------------------------------------------------------------------------------------------------
# Association control

# A-ASSOCIATE-RJ (PS3.8 9.3.4): rejected-permanent, by the service user, with these reasons.
REJECTED_PERMANENT = 0x01
SERVICE_USER = 0x01
CALLING_AE_NOT_RECOGNISED = 0x03
CALLED_AE_NOT_RECOGNISED = 0x07


def handle_association_request(event):
    """EVT_REQUESTED: accept only our called AE title and a known calling AE (PS3.8 7.1.1.3 / 7.1.1.4)."""
    association = event.assoc
    request = association.requestor.primitive
    calling_ae, called_ae = request.calling_ae_title.strip(), request.called_ae_title.strip()
    peer_address = association.requestor.address
    try:
        if called_ae != association.acceptor.ae_title.strip():
            _reject(association, CALLED_AE_NOT_RECOGNISED, calling_ae, called_ae, peer_address,
                    "called AE title not recognised")
        elif not may_associate(calling_ae):
            _reject(association, CALLING_AE_NOT_RECOGNISED, calling_ae, called_ae, peer_address,
                    "calling AE title not recognised")
        else:
            with _sessions_lock:
                _sessions[association] = AssociationSession(calling_ae, called_ae, peer_address)
    except Exception:  # noqa: BLE001 - e.g. the database is unreachable: refuse rather than serve blind
        logger.exception("association request from %s (%s) could not be checked", calling_ae, peer_address)
        if not association.is_rejected:
            association.acse.send_reject(0x02, SERVICE_USER, 0x01)  # rejected-transient, no reason given
        association.kill()
    finally:
        if association.is_rejected:
            _close_database_connection(association)


def _reject(association, reason, calling_ae, called_ae, peer_address, text):
    logger.warning("rejected association from %s at %s to %s: %s", calling_ae, peer_address, called_ae, text)
    record_audit_event(
        AuditEventCode.NETWORK_ENTRY, action="E", channel=AuditChannel.DICOM, actor=calling_ae,
        source_address=peer_address, outcome=AuditOutcome.MINOR_FAILURE, calling_ae=calling_ae,
        called_ae=called_ae, result="rejected", reason=text)
    association.acse.send_reject(REJECTED_PERMANENT, SERVICE_USER, reason)
    # As pynetdicom's own negotiation does after a rejection: wait for the peer to close, end the association.
    association.kill()


def handle_association_accepted(event):
    session = session_for(event.assoc)
    if session is None:
        return
    contexts = len(event.assoc.accepted_contexts)
    record_audit_event(
        AuditEventCode.NETWORK_ENTRY, action="E", channel=AuditChannel.DICOM, actor=session.calling_ae,
        source_address=session.peer_address, calling_ae=session.calling_ae, called_ae=session.called_ae,
        result="accepted", accepted_contexts=contexts)


def handle_association_rejected(event):
    """EVT_REJECTED: pynetdicom refused after our checks, i.e. MAXIMUM_ASSOCIATIONS are running."""
    with _sessions_lock:
        session = _sessions.pop(event.assoc, None)
    if session is not None:
        logger.warning("rejected association from %s: %d associations already running",
                       session.calling_ae, MAXIMUM_ASSOCIATIONS)
        record_audit_event(
            AuditEventCode.NETWORK_ENTRY, action="E", channel=AuditChannel.DICOM, actor=session.calling_ae,
            source_address=session.peer_address, outcome=AuditOutcome.MINOR_FAILURE,
            calling_ae=session.calling_ae, called_ae=session.called_ae, result="rejected",
            reason="local limit exceeded")
    _close_database_connection(event.assoc)


def handle_association_end(event):
    """EVT_RELEASED / EVT_ABORTED: one DICOM Instances Transferred event for what the association stored."""
    with _sessions_lock:
        session = _sessions.pop(event.assoc, None)
    try:
        if session is not None and session.outcomes:
            _record_transfer(session, aborted=event.event is evt.EVT_ABORTED)
    except Exception:  # noqa: BLE001 - the instances are stored; a missing audit row must not stop the listener
        logger.exception("could not record the transfer from %s", session.calling_ae)
    finally:
        _close_database_connection(event.assoc)


def _record_transfer(session, aborted):
    studies = list(Study.objects.filter(series__id__in=session.series_ids).select_related("patient").distinct())
    patients = {study.patient for study in studies}
    failed = session.outcomes["rejected"]
    # PS3.15 A.5.3.4: the receiver records "Create" for instances it did not hold before.
    record_audit_event(
        AuditEventCode.DICOM_INSTANCES_TRANSFERRED, action="C", channel=AuditChannel.DICOM,
        actor=session.calling_ae, source_address=session.peer_address,
        patient=patients.pop() if len(patients) == 1 else None,
        outcome=AuditOutcome.MINOR_FAILURE if failed or aborted else AuditOutcome.SUCCESS,
        object_type="study" if len(studies) == 1 else "",
        object_id=studies[0].study_instance_uid if len(studies) == 1 else "",
        calling_ae=session.calling_ae, called_ae=session.called_ae,
        study_instance_uids=sorted(study.study_instance_uid for study in studies), instances=dict(session.outcomes),
        failed=failed, aborted=aborted)


def handle_connection_closed(event):
    """EVT_CONN_CLOSE: an instance cut off mid-transfer leaves its partial file in .incoming; remove it.
    This runs in the thread that was writing the file, after the last byte it will ever receive."""
    message = event.assoc.dimse.message
    partial = getattr(message, "_data_set_file", None)
    if partial is None:
        return
    partial.close()
    try:
        partial_path = message._data_set_path
        partial_path.unlink(missing_ok=True)
        logger.info("removed the partial instance %s from %s", partial_path.name, event.assoc.requestor.ae_title)
    except OSError as exc:
        logger.warning("could not remove a partial instance: %s", exc)


def _close_database_connection(association):
    # Each association thread opens its own database connection; close it with the association. Events fired
    # from other threads (e.g. an abort at shutdown) leave that thread's connection alone.
    if threading.current_thread() is association:
        connection.close()


# ---------------------------------------------------------------------------------------------------------
# Storage commitment result (PS3.4 J.3.3)

_report_threads = set()
_report_threads_lock = threading.Lock()


def pending_commitment_reports():
    """How many storage commitment results are still being checked or delivered."""
    with _report_threads_lock:
        return len(_report_threads)


def handle_message_sent(event):
    """EVT_DIMSE_SENT: once an accepted N-ACTION has been answered, check and report in the background."""
    if not isinstance(event.message, N_ACTION_RSP):
        return
    session = session_for(event.assoc)
    if session is None:
        return
    with session.lock:
        request = session.commitment_requests.pop(event.message.command_set.MessageIDBeingRespondedTo, None)
    if request is None:
        return
    thread = threading.Thread(target=_deliver_commitment_report, args=(event.assoc, session, request),
                              name=f"commitment-{session.calling_ae}", daemon=True)
    with _report_threads_lock:
        _report_threads.add(thread)
    thread.start()


def commitment_report(transaction_uid, result, retrieve_ae_title):
    """(Event Type ID, Event Information) of the N-EVENT-REPORT for a CommitmentResult (PS3.4 J.3.3.1.1)."""
    report = Dataset()
    report.TransactionUID = transaction_uid
    report.RetrieveAETitle = retrieve_ae_title
    if result.committed:
        report.ReferencedSOPSequence = [_reference_item(reference) for reference in result.committed]
    if result.all_committed:
        return 1, report
    failed_items = []
    for reference, reason in result.failed:
        item = _reference_item(reference)
        item.FailureReason = reason
        failed_items.append(item)
    report.FailedSOPSequence = failed_items
    return 2, report


def _reference_item(reference):
    item = Dataset()
    item.ReferencedSOPClassUID = reference.sop_class_uid
    item.ReferencedSOPInstanceUID = reference.sop_instance_uid
    return item


def _deliver_commitment_report(association, session, request):
    try:
        result = check_commitment(request.references)
        event_type, report = commitment_report(request.transaction_uid, result, session.called_ae)
        logger.info("storage commitment %s for %s: %d committed, %d failed", request.transaction_uid,
                    session.calling_ae, len(result.committed), len(result.failed))
        # PS3.4 J.3.3.1.2: the SCP must be able to report on a new association, and may try the requesting one;
        # the SCU is free to release that at any moment.
        if not _report_on_same_association(association, event_type, report):
            _report_on_new_association(session, event_type, report, request.transaction_uid)
    except Exception:  # noqa: BLE001 - a background thread: log, the SCU will ask again
        logger.exception("storage commitment %s for %s failed", request.transaction_uid, session.calling_ae)
    finally:
        connection.close()
        with _report_threads_lock:
            _report_threads.discard(threading.current_thread())


def _report_on_same_association(association, event_type, report):
    """Only to a requester that negotiated both SCU and SCP roles for the SOP class (PS3.7 D.3.3.4): its way
    of saying it stays to receive the result. Others get it on a new association, as IHE advises, so that a
    report never collides with their release."""
    both_roles = any(context.abstract_syntax == StorageCommitmentPushModel and context.as_scu and context.as_scp
                     for context in association.accepted_contexts)
    if not both_roles or not association.is_established or isinstance(
            association.dul.peek_next_pdu(), (A_RELEASE, A_ABORT, A_P_ABORT)):
        return False
    try:
        status, _ = association.send_n_event_report(
            report, event_type, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE)
    except (RuntimeError, ValueError) as exc:  # released meanwhile, or no usable presentation context
        logger.info("storage commitment result not sent on the requesting association: %s", exc)
        return False
    return _report_answered(status, association.requestor.ae_title)


def _report_on_new_association(session, event_type, report, transaction_uid):
    node = node_for(session.calling_ae)
    if node is None:
        logger.error("storage commitment %s: %s is not a registered node, so its result cannot be sent",
                     transaction_uid, session.calling_ae)
        return
    ae = AE(ae_title=session.called_ae)
    ae.add_requested_context(StorageCommitmentPushModel, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    # PS3.4 J.3.3.1.3: on an association we open, we propose the SCP role of the SOP class.
    role = build_role(StorageCommitmentPushModel, scp_role=True)
    for attempt in range(1, REPORT_ATTEMPTS + 1):
        association = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=[role])
        if association.is_established:
            try:
                status, _ = association.send_n_event_report(
                    report, event_type, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE)
            finally:
                if association.is_established:
                    association.release()
            if _report_answered(status, node.ae_title):
                return
        logger.warning("storage commitment %s: attempt %d of %d to send the result to %s at %s:%s failed",
                       transaction_uid, attempt, REPORT_ATTEMPTS, node.ae_title, node.host, node.port)
        if attempt < REPORT_ATTEMPTS:
            time.sleep(REPORT_RETRY_SECONDS)
    logger.error("storage commitment %s: result not delivered to %s", transaction_uid, node.ae_title)


def _report_answered(status, ae_title):
    """True once the peer answered the N-EVENT-REPORT at all; a failure status is its own business."""
    code = getattr(status, "Status", None)
    if code is None:
        return False
    if code != 0x0000:
        logger.warning("%s answered the storage commitment result with status 0x%04X", ae_title, code)
    return True


# ---------------------------------------------------------------------------------------------------------
# The application entity and its server

def build_application_entity(ae_title):
    """The AE with every supported presentation context, and the (event, handler) pairs to bind."""
    from archive.dimse import query_retrieve, storage

    ae = AE(ae_title=ae_title)
    ae.maximum_associations = MAXIMUM_ASSOCIATIONS
    ae.maximum_pdu_size = MAXIMUM_PDU_SIZE
    ae.add_supported_context(Verification, UNCOMPRESSED_SYNTAXES)
    # SCU and SCP roles both accepted (PS3.4 B.2.2, PS3.7 D.3.3.4): a storage SCU proposes no role selection and
    # gets the default (we are the Storage SCP); a C-GET SCU proposes the SCP role to receive on this association.
    storage_classes = dict.fromkeys(
        [context.abstract_syntax for context in AllStoragePresentationContexts]
        + list(query_retrieve.GET_STORAGE_SOP_CLASSES))
    for sop_class in storage_classes:
        ae.add_supported_context(sop_class, STORAGE_SYNTAXES, scu_role=True, scp_role=True)
    # Both roles accepted, so a requester can ask to receive the result on its own association.
    ae.add_supported_context(StorageCommitmentPushModel, UNCOMPRESSED_SYNTAXES, scu_role=True, scp_role=True)
    for sop_class in query_retrieve.SOP_CLASSES:
        ae.add_supported_context(sop_class, UNCOMPRESSED_SYNTAXES)
    # Services other apps add (archive/dimse/services.py): the worklist's Modality Worklist and MPPS.
    for service in services.registered_services():
        for sop_class in service.sop_classes:
            ae.add_supported_context(sop_class, UNCOMPRESSED_SYNTAXES)

    handlers = [
        (evt.EVT_REQUESTED, handle_association_request),
        (evt.EVT_ACCEPTED, handle_association_accepted),
        (evt.EVT_REJECTED, handle_association_rejected),
        (evt.EVT_RELEASED, handle_association_end),
        (evt.EVT_ABORTED, handle_association_end),
        (evt.EVT_CONN_CLOSE, handle_connection_closed),
        (evt.EVT_DIMSE_SENT, handle_message_sent),
        *storage.HANDLERS,
        *query_retrieve.HANDLERS,
        *[(event_type, services.dispatch) for event_type in services.N_EVENTS],
    ]
    return ae, handlers


class SharedContexts(list):
    """The listener's supported presentation contexts, handed to every association without a deep copy.

    pynetdicom gives each new association `deepcopy(server.contexts)` (transport.RequestHandler.
    _create_association). With ~180 contexts of up to 15 transfer syntaxes each, re-validating every UID on the
    way, that copy cost about 50 ms of CPU per association before its first request: most of a modality's
    worklist query, and a tax on every C-STORE and C-FIND association. Negotiation (presentation.
    negotiate_as_acceptor) only reads these contexts and builds new ones for its results, so each association
    gets a list of its own holding the same, never-modified PresentationContext objects."""

    def __deepcopy__(self, memo):
        return list(self)


class ListenerServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with a longer listen backlog, TCP_NODELAY on every accepted connection and a
    periodic sweep of abandoned files in .incoming."""

    # socketserver listens with a backlog of 5; a burst of senders connecting at once should not wait for SYN
    # retries.
    request_queue_size = MAXIMUM_ASSOCIATIONS

    def __init__(self, *args, reuse_port=False, **kwargs):
        self.reuse_port = reuse_port
        super().__init__(*args, **kwargs)
        self._next_sweep = time.monotonic() + INCOMING_SWEEP_SECONDS

    def server_bind(self):
        if self.reuse_port:
            # Several listener processes then share one port, and the kernel spreads incoming associations
            # over them.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def get_request(self):
        client_socket, address = super().get_request()
        # pynetdicom writes each PDU in pieces and never sets TCP_NODELAY, so Nagle's algorithm and the peer's
        # delayed ACK can hold every response back 40 ms (DESIGN.md section 6). Accept is the one place every
        # connection passes before its association starts.
        client_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client_socket, address

    def service_actions(self):
        super().service_actions()
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + INCOMING_SWEEP_SECONDS
            try:
                archive_storage().clean_incoming(older_than_seconds=INCOMING_STALE_SECONDS)
            except OSError as exc:
                logger.warning("could not sweep the incoming folder: %s", exc)

    def shutdown(self):
        # pynetdicom's shutdown also takes the server off the list AE.start_server keeps, which this server,
        # started by DicomListener rather than by the AE, is not on.
        socketserver.BaseServer.shutdown(self)
        for association in self.active_associations:
            association.abort()
        self.server_close()


def _incoming_temporary_file(**options):
    return tempfile.NamedTemporaryFile(dir=archive_storage().incoming, **options)


class DicomListener:
    """The DICOM listener as a component of `serve`: start() returns once it listens, or raises StartupError."""

    name = "dicom"

    def __init__(self, host=None, port=None, ae_title=None, reuse_port=False):
        self.host = host or settings.DICOM_HOST
        self.port = settings.DICOM_PORT if port is None else port
        self.ae_title = ae_title or settings.DICOM_AET
        self.reuse_port = reuse_port
        self._server = None
        self._thread = None
        self._heartbeat = None
        self._saved_receive_config = None

    def start(self):
        try:
            archive_storage().clean_incoming(older_than_seconds=INCOMING_STALE_SECONDS)
        except OSError as exc:
            raise StartupError(f"DICOM listener: archive storage unusable: {exc}") from None
        ae, handlers = build_application_entity(self.ae_title)
        self._receive_into_incoming()
        try:
            self._server = ListenerServer(ae, (self.host, self.port), self.ae_title,
                                          SharedContexts(ae.supported_contexts),
                                          evt_handlers=handlers, reuse_port=self.reuse_port)
        except OSError as exc:
            self._restore_receive_config()
            raise StartupError(f"DICOM listener could not listen on {self.host}:{self.port}: "
                               f"{exc.strerror or exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="dicom", daemon=True)
        self._thread.start()
        self._heartbeat = Heartbeat(self.name, detail=f"{self.ae_title}@{self.host}:{self.port}")
        self._heartbeat.start()
        logger.info("DICOM listener %s on %s:%s%s", self.ae_title, self.host, self.port,
                    " (open to any calling AE)" if settings.DICOM_OPEN else "")

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
        with _report_threads_lock:
            pending = list(_report_threads)
        for thread in pending:
            thread.join(timeout=REPORT_RETRY_SECONDS)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._restore_receive_config()

    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    @property
    def active_associations(self):
        """The associations running now (pynetdicom Association threads)."""
        return self._server.active_associations if self._server is not None else []

    def _receive_into_incoming(self):
        # Chunked receive: pynetdicom writes each arriving C-STORE data set straight to a file instead of
        # holding it in memory, and passes the file's path to the handler. It makes that file with
        # dimse_messages.NamedTemporaryFile, in the system's temporary folder. Pointed at the archive's .incoming
        # folder instead, the file sits on the archive's filesystem, so ingest_file stores it with a rename
        # rather than copying every byte again, and a transfer cut short leaves nothing outside the archive's
        # own sweep.
        self._saved_receive_config = (_config.STORE_RECV_CHUNKED_DATASET, dimse_messages.NamedTemporaryFile,
                                      _config.LOG_REQUEST_IDENTIFIERS, _config.LOG_RESPONSE_IDENTIFIERS)
        _config.STORE_RECV_CHUNKED_DATASET = True
        dimse_messages.NamedTemporaryFile = _incoming_temporary_file
        # pynetdicom formats every C-FIND request and response identifier for its log whatever the log level;
        # for a worklist answer of 30 steps that was a fifth of the listener's CPU. Only when it would be logged.
        pynetdicom_logger = logging.getLogger("pynetdicom")
        _config.LOG_REQUEST_IDENTIFIERS = pynetdicom_logger.isEnabledFor(logging.INFO)
        _config.LOG_RESPONSE_IDENTIFIERS = pynetdicom_logger.isEnabledFor(logging.DEBUG)

    def _restore_receive_config(self):
        if self._saved_receive_config is not None:
            (_config.STORE_RECV_CHUNKED_DATASET, dimse_messages.NamedTemporaryFile, _config.LOG_REQUEST_IDENTIFIERS,
             _config.LOG_RESPONSE_IDENTIFIERS) = self._saved_receive_config
            self._saved_receive_config = None


class DicomListenerGroup:
    """The DICOM listener of `serve`: one listener in this process and, when RADIOLOGY_DICOM_PROCESSES asks for
    more, `manage.py dicom_listener` child processes on the same port (SO_REUSEPORT). pynetdicom spends several
    milliseconds of Python per instance, so one process is bound to one core however many associations arrive.
    The children die with this process (PR_SET_PDEATHSIG) and are stopped with it."""

    name = "dicom"
    CHILD_START_SECONDS = 60
    CHILD_STOP_SECONDS = 20

    def __init__(self, processes=1):
        self.listener = DicomListener(reuse_port=processes > 1)
        self.extra_processes = processes - 1
        self._children = []

    def start(self):
        self.listener.start()
        for _ in range(self.extra_processes):
            self._children.append(subprocess.Popen(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "dicom_listener"],
                cwd=settings.BASE_DIR, preexec_fn=_die_with_parent))
        for child in self._children:
            self._wait_until_listening(child)

    def _wait_until_listening(self, child):
        # A child is listening once it has written its first heartbeat (DicomListener.start does, after bind).
        deadline = time.monotonic() + self.CHILD_START_SECONDS
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise StartupError(f"DICOM listener process {child.pid} exited with status {child.returncode}")
            if ServiceHeartbeat.objects.filter(component=self.name, pid=child.pid).exists():
                return
            time.sleep(0.1)
        raise StartupError(f"DICOM listener process {child.pid} did not start in {self.CHILD_START_SECONDS} s")

    def stop(self):
        for child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self._children:
            try:
                child.wait(timeout=self.CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("DICOM listener process %s did not stop; killing it", child.pid)
                child.kill()
                child.wait()
        self.listener.stop()

    def is_alive(self):
        return self.listener.is_alive() and all(child.poll() is None for child in self._children)


def _die_with_parent():
    """In the child before exec: ask Linux to send SIGTERM when the parent dies, even by kill -9."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the children then outlive a parent killed with SIGKILL


PR_SET_PDEATHSIG = 1
