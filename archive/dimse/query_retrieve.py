"""DICOM Query/Retrieve SCP (PS3.4 Annex C): the C-FIND, C-MOVE and C-GET handlers of the archive's listener.

The listener (archive/dimse/listener.py) registers what this module exports:
- `SOP_CLASSES`: Patient Root and Study Root Query/Retrieve Information Model FIND, MOVE and GET, to add as
  supported presentation contexts.
- `GET_STORAGE_SOP_CLASSES`: the storage SOP classes a C-GET sends back over the same association. The C-GET
  SCU proposes them with SCP/SCU Role Selection (it is the Storage SCP there, PS3.7 D.3.3.4), so the listener
  must add each with `scu_role=True, scp_role=True` to accept that role, and with every transfer syntax the
  archive stores, compressed ones included: instances go back as stored.
- `HANDLERS`: (event, handler) pairs for EVT_C_FIND, EVT_C_MOVE, EVT_C_GET, and EVT_SOP_EXTENDED (an
  intervention event: the listener binds no other handler to it), which answers the SOP Class Extended
  Negotiation of the Q/R classes: combined date-time matching is accepted, relational queries are not.

Handlers do no matching of their own: archive.query selects, these functions speak DIMSE, read the stored
files and write the audit trail.
"""
import logging
import socket
from collections import defaultdict

from django.conf import settings
from django.db import close_old_connections
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelMove, Verification,
)

from archive import query as archive_query
from archive import status
from archive.dimse import services
from archive.dimse.listener import may_query, node_for
from archive.storage import archive_storage
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import Patient

logger = logging.getLogger(__name__)

FIND_MODELS = {
    PatientRootQueryRetrieveInformationModelFind: archive_query.PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelFind: archive_query.STUDY_ROOT,
}
MOVE_MODELS = {
    PatientRootQueryRetrieveInformationModelMove: archive_query.PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelMove: archive_query.STUDY_ROOT,
}
GET_MODELS = {
    PatientRootQueryRetrieveInformationModelGet: archive_query.PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelGet: archive_query.STUDY_ROOT,
}
SOP_CLASSES = [*FIND_MODELS, *MOVE_MODELS, *GET_MODELS]
GET_STORAGE_SOP_CLASSES = [context.abstract_syntax for context in AllStoragePresentationContexts]

PENDING = 0xFF00
CANCEL = 0xFE00
NOT_AUTHORIZED = 0x0124  # PS3.7 C.5.x general status "Refused: Not Authorized"
MAX_PRESENTATION_CONTEXTS = 128  # PS3.8 7.1.1.13: context IDs are odd numbers 1-255


# ---------------------------------------------------------------------------------------------------------
# C-FIND

def handle_find(event):
    """PS3.4 C.4.1: one pending response per match, then pynetdicom sends the final success.

    The audit event is written before the last response goes out: pynetdicom does not resume the handler
    after a failure or cancel status, and the peer may look at the audit trail as soon as it has its answer."""
    sop_class = UID(event.request.AffectedSOPClassUID)
    if sop_class not in FIND_MODELS:
        # A C-FIND another app serves on this listener (Modality Worklist: archive/dimse/services.py).
        yield from services.handler_for(evt.EVT_C_FIND, sop_class)(event)
        return
    calling_ae = services.calling_ae(event)
    model = FIND_MODELS[sop_class]
    audit = {"level": "", "keys": "", "model": f"{model} root", "matches": 0}
    patients = set()

    def record(outcome=AuditOutcome.SUCCESS, **extra):
        _audit(event, AuditEventCode.QUERY, calling_ae, patients, outcome, **audit, **extra)

    try:
        if not may_query(calling_ae):
            record(AuditOutcome.SERIOUS_FAILURE, error="calling AE may not query")
            yield services.failure(NOT_AUTHORIZED, f"{calling_ae} may not query this archive"), None
            return
        try:
            query = archive_query.parse_identifier(event.identifier, model)
            audit.update(level=query.level, keys=_keys_text(query.matching))
            found = archive_query.matches(query, combine_date_time=_combined_date_time(event, sop_class))
        except archive_query.QueryError as error:
            record(AuditOutcome.MINOR_FAILURE, error=error.comment)
            yield services.failure(error.status, error.comment), None
            return
        except Exception as error:  # noqa: BLE001 - an identifier pydicom cannot decode
            logger.info("C-FIND from %s: undecodable identifier: %s", calling_ae, error)
            record(AuditOutcome.MINOR_FAILURE, error="identifier cannot be decoded")
            yield services.failure(status.CANNOT_UNDERSTAND, "identifier cannot be decoded"), None
            return
        for match in found:
            if event.is_cancelled:
                record(cancelled=True)
                yield CANCEL, None
                return
            patients.add(archive_query.study_of(match).patient_id)
            audit["matches"] += 1
            yield PENDING, archive_query.response(query, match)
        record()
    finally:
        close_old_connections()


# ---------------------------------------------------------------------------------------------------------
# C-MOVE

def handle_move(event):
    """PS3.4 C.4.2: send the selected instances to a registered node, over a new association.

    pynetdicom expects, in order: the destination (host, port, association arguments), the number of C-STORE
    sub-operations, then (pending, dataset) per instance; it sends the pending responses with their counts
    and the final response itself."""
    calling_ae = services.calling_ae(event)
    model = MOVE_MODELS[UID(event.request.AffectedSOPClassUID)]
    destination_ae = services.ae_text(event.move_destination)
    try:
        node = node_for(destination_ae)
        if node is None:
            # PS3.4 C.4.2.1.4.1: the destination must be known to us; pynetdicom answers 0xA801.
            _audit(event, AuditEventCode.BEGIN_TRANSFERRING, calling_ae, set(), AuditOutcome.MINOR_FAILURE,
                   destination=destination_ae, error="move destination unknown")
            yield None, None
            return
        selection = _select(event, model, calling_ae)
        if isinstance(selection, Dataset):
            # A C-MOVE failure can only be answered after the destination and a sub-operation count.
            yield node.host, node.port, {"contexts": [build_context(Verification)], **_association_options()}
            yield 1
            yield selection, None
            return
        instances, count = selection
        sub_association = []
        options = _association_options()
        options["evt_handlers"].append((evt.EVT_ACCEPTED, lambda accepted: sub_association.append(accepted.assoc)))
        yield node.host, node.port, {"contexts": _storage_contexts(instances), **options}
        yield count
        if count:
            _audit_transfer(event, calling_ae, destination_ae, instances, count)
        yield from _sub_operations(event, instances, lambda: sub_association[0] if sub_association else None)
    finally:
        close_old_connections()


# ---------------------------------------------------------------------------------------------------------
# C-GET

def handle_get(event):
    """PS3.4 C.4.3: send the selected instances back over the SCU's own association, with the storage
    contexts it offered in the SCP role."""
    calling_ae = services.calling_ae(event)
    model = GET_MODELS[UID(event.request.AffectedSOPClassUID)]
    try:
        selection = _select(event, model, calling_ae)
        if isinstance(selection, Dataset):
            yield 1
            yield selection, None
            return
        instances, count = selection
        yield count
        if count:
            _audit_transfer(event, calling_ae, calling_ae, instances, count)
        yield from _sub_operations(event, instances, lambda: event.assoc)
    finally:
        close_old_connections()


def _select(event, model, calling_ae):
    """(instances queryset, count) for a retrieve request, or a failure status dataset."""
    if not may_query(calling_ae):
        _audit(event, AuditEventCode.BEGIN_TRANSFERRING, calling_ae, set(), AuditOutcome.SERIOUS_FAILURE,
               error="calling AE may not retrieve")
        return services.failure(NOT_AUTHORIZED, f"{calling_ae} may not retrieve from this archive")
    try:
        query = archive_query.parse_retrieve_identifier(event.identifier, model)
    except archive_query.QueryError as error:
        _audit(event, AuditEventCode.BEGIN_TRANSFERRING, calling_ae, set(), AuditOutcome.MINOR_FAILURE,
               error=error.comment)
        return services.failure(error.status, error.comment)
    except Exception as error:  # noqa: BLE001 - an identifier pydicom cannot decode
        logger.info("retrieve from %s: undecodable identifier: %s", calling_ae, error)
        return services.failure(status.CANNOT_UNDERSTAND, "identifier cannot be decoded")
    instances = archive_query.retrieve_instances(query)
    return instances, instances.count()


def _sub_operations(event, instances, storage_association):
    """(pending, dataset) per instance; `storage_association()` is the association the C-STOREs go over."""
    storage = archive_storage()
    for instance in instances.iterator(chunk_size=200):
        if event.is_cancelled:
            # PS3.4 C.4.2.3.1: pynetdicom answers Cancel with the remaining and failed counts.
            yield CANCEL, None
            return
        try:
            with storage.open(instance.storage_key) as stored:
                # Read as stored: the transfer syntax (compressed or not) is kept, so the instance goes out
                # byte for byte in the syntax it arrived in when the peer accepts it.
                dataset = dcmread(stored)
            dataset = _fit_to_peer(dataset, storage_association())
        except Exception as error:  # noqa: BLE001 - an unreadable file or undecodable pixel data fails this
            # sub-operation only
            logger.error("cannot send stored instance %s (%s): %s", instance.sop_instance_uid,
                         instance.storage_key, error)
            yield PENDING, _unsendable(instance)
            continue
        yield PENDING, dataset


def _fit_to_peer(dataset, association):
    """The dataset as stored when the peer accepted its transfer syntax; decompressed to Explicit VR Little
    Endian when the peer took the SOP class uncompressed only (PS3.5 8.2: lossy stays marked lossy). pynetdicom
    converts between the uncompressed syntaxes itself."""
    stored_syntax = dataset.file_meta.TransferSyntaxUID
    if association is None or not stored_syntax.is_compressed:
        return dataset
    accepted = {UID(context.transfer_syntax[0]) for context in association.accepted_contexts
                if context.abstract_syntax == dataset.SOPClassUID and context.as_scu}
    if stored_syntax in accepted or not any(syntax.is_little_endian and not syntax.is_compressed
                                            for syntax in accepted):
        return dataset
    # The same image in another transfer syntax keeps its SOP Instance UID (PS3.5 8.2.1, PS3.4 C.4.2.2).
    dataset.decompress(generate_instance_uid=False)
    return dataset


def _unsendable(instance):
    """A stand-in for an instance that cannot be read. It has no transfer syntax, so pynetdicom's C-STORE
    raises before sending anything, and pynetdicom counts one failed sub-operation and lists the SOP Instance
    UID in the Failed SOP Instance UID List (PS3.4 C.4.2.1.5) as for any failed C-STORE."""
    stand_in = Dataset()
    stand_in.SOPClassUID = instance.sop_class_uid
    stand_in.SOPInstanceUID = instance.sop_instance_uid
    return stand_in


def _storage_contexts(instances):
    """Presentation contexts to ask the move destination for: one per SOP class and stored compressed
    transfer syntax (sent as stored), one per SOP class for big endian, and for every SOP class one offering
    the stored little endian syntaxes plus Explicit and Implicit VR Little Endian, between which pynetdicom can
    convert (PS3.5 A.1-A.2), and to which a compressed instance is decompressed when the destination does not
    take its syntax."""
    pairs = instances.order_by().values_list("sop_class_uid", "transfer_syntax_uid").distinct()
    grouped = defaultdict(list)
    for sop_class, transfer_syntax in pairs:
        transfer_syntax = UID(transfer_syntax)
        grouped.setdefault((sop_class, "little"), [])
        if transfer_syntax.is_compressed:
            kind = transfer_syntax
        else:
            kind = "little" if transfer_syntax.is_little_endian else "big"
        grouped[(sop_class, kind)].append(transfer_syntax)
    contexts = []
    for (sop_class, kind), syntaxes in sorted(grouped.items()):
        if kind == "little":
            syntaxes = sorted(set(syntaxes) | {ExplicitVRLittleEndian, ImplicitVRLittleEndian},
                              key=lambda uid: (uid == ImplicitVRLittleEndian, uid != ExplicitVRLittleEndian))
        contexts.append(build_context(sop_class, syntaxes))
    if len(contexts) > MAX_PRESENTATION_CONTEXTS:
        logger.warning("C-MOVE needs %d presentation contexts; instances of the others fail", len(contexts))
    return contexts[:MAX_PRESENTATION_CONTEXTS]


def _association_options():
    return {"evt_handlers": [(evt.EVT_CONN_OPEN, _no_delay)]}


def _no_delay(event):
    # pynetdicom writes each PDU in pieces; without TCP_NODELAY every exchange can wait 40 ms (DESIGN 6).
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---------------------------------------------------------------------------------------------------------
# SOP Class Extended Negotiation (PS3.4 C.5.1.1.2)

def handle_sop_extended(event):
    """Answer the Q/R classes' extended negotiation: for C-FIND byte 1 relational queries (0, not offered),
    byte 2 combined date and time range matching (accepted as asked); other bytes 0. For C-MOVE and C-GET
    relational retrieval is not offered either."""
    replies = {}
    for sop_class, request in (event.app_info or {}).items():
        if sop_class in FIND_MODELS:
            reply = bytearray(len(request))
            if len(request) >= 2:
                reply[1] = 1 if request[1] == 1 else 0
            replies[sop_class] = bytes(reply)
        elif sop_class in MOVE_MODELS or sop_class in GET_MODELS:
            replies[sop_class] = bytes(len(request))
    return replies


def _combined_date_time(event, sop_class):
    requested = event.assoc.requestor.sop_class_extended.get(sop_class) or b""
    return len(requested) >= 2 and requested[1] == 1


# ---------------------------------------------------------------------------------------------------------
# Access and audit

def _audit_transfer(event, calling_ae, destination_ae, instances, count):
    studies = list(instances.order_by().values_list("series__study__study_instance_uid", flat=True).distinct())
    patients = set(instances.order_by().values_list("series__study__patient_id", flat=True).distinct())
    _audit(event, AuditEventCode.BEGIN_TRANSFERRING, calling_ae, patients, AuditOutcome.SUCCESS,
           destination=destination_ae, study_instance_uids=studies, instances=count,
           object_type="study", object_id=studies[0] if len(studies) == 1 else "")


def _audit(event, code, calling_ae, patients, outcome, *, object_type="", object_id="", **detail):
    # PS3.15 A.5.3: Query and Begin Transferring are "Execute" actions.
    patient = Patient.objects.filter(pk=next(iter(patients))).first() if len(patients) == 1 else None
    record_audit_event(
        code, action="E", channel=AuditChannel.DICOM, actor=calling_ae, outcome=outcome,
        source_address=services.peer_address(event), patient=patient, object_type=object_type, object_id=object_id,
        called_ae=settings.DICOM_AET, **detail)


def _keys_text(matching):
    return "; ".join(f"{keyword}={value}" for keyword, value in matching.items())










HANDLERS = [
    (evt.EVT_C_FIND, handle_find),
    (evt.EVT_C_MOVE, handle_move),
    (evt.EVT_C_GET, handle_get),
    (evt.EVT_SOP_EXTENDED, handle_sop_extended),
]
