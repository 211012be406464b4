"""DIMSE handlers for Verification (PS3.4 A), Storage (PS3.4 B) and the N-ACTION of the Storage Commitment
Push Model (PS3.4 J.3.2). Each checks who asks, calls the service layer and returns a status; the listener
(archive/dimse/listener.py) binds them and sends the commitment result.
"""
import logging

from pydicom.dataset import Dataset
from pynetdicom import evt

from archive import status
from archive.commitment import Reference
from archive.dicom_values import valid_uid
from archive.dimse.listener import (
    NOT_AUTHORIZED, STORAGE_COMMITMENT_INSTANCE, CommitmentRequest, expect_commitment_report, may_store,
    record_store,
)
from archive.ingest import IngestResult, ingest_file

logger = logging.getLogger(__name__)

# N-ACTION statuses (PS3.7 10.1.4.1.10).
INVALID_ARGUMENT_VALUE = 0x0115
INVALID_OBJECT_INSTANCE = 0x0117
NO_SUCH_ACTION = 0x0123
# PS3.4 J.3.2: Action Type ID 1 is "Request Storage Commitment", the only action of the SOP class.
REQUEST_STORAGE_COMMITMENT = 1


def handle_echo(event):
    """C-ECHO (PS3.7 9.1.5): any accepted association may verify."""
    return status.SUCCESS


def handle_store(event):
    """C-STORE (PS3.4 B.2.3): archive the data set pynetdicom wrote to .incoming, answer ingest's status."""
    association = event.assoc
    calling_ae = association.requestor.ae_title
    sop_instance_uid = event.request.AffectedSOPInstanceUID
    if not may_store(calling_ae):
        return _status(NOT_AUTHORIZED, f"{calling_ae} may not store to this archive")
    try:
        result = ingest_file(event.dataset_path, calling_ae=calling_ae, called_ae=association.acceptor.ae_title,
                             expected_sop_instance_uid=sop_instance_uid)
    except Exception:  # noqa: BLE001 - answer this instance with a failure and keep the association going
        logger.exception("C-STORE of %s from %s failed", sop_instance_uid, calling_ae)
        result = IngestResult(status.OUT_OF_RESOURCES, "rejected", "the archive could not store the instance")
    record_store(association, result)
    return _status(result.status, result.reason)


def handle_commitment_request(event):
    """N-ACTION "Request Storage Commitment" (PS3.4 J.3.2): check the request and accept it; the listener
    reports the result in an N-EVENT-REPORT once this response has gone out."""
    if event.request.RequestedSOPInstanceUID != STORAGE_COMMITMENT_INSTANCE:
        return _status(INVALID_OBJECT_INSTANCE, "Requested SOP Instance must be 1.2.840.10008.1.20.1.1"), None
    if event.action_type != REQUEST_STORAGE_COMMITMENT:
        return _status(NO_SUCH_ACTION, "the only action is 1, Request Storage Commitment"), None
    calling_ae = event.assoc.requestor.ae_title
    if not may_store(calling_ae):
        return _status(NOT_AUTHORIZED, f"{calling_ae} may not store to this archive"), None
    try:
        request = _commitment_request(event.action_information)
    except ValueError as exc:
        return _status(INVALID_ARGUMENT_VALUE, str(exc)), None
    expect_commitment_report(event.assoc, event.request.MessageID, request)
    return status.SUCCESS, None


def _commitment_request(information):
    """The Transaction UID and references of an Action Information data set (PS3.4 Table J.3-1)."""
    try:
        transaction_uid = str(information.get("TransactionUID", "") or "").strip()
        items = list(information.get("ReferencedSOPSequence", None) or [])
        references = [Reference(str(item.get("ReferencedSOPClassUID", "") or "").strip(),
                                str(item.get("ReferencedSOPInstanceUID", "") or "").strip()) for item in items]
    except Exception as exc:  # noqa: BLE001 - pydicom decodes lazily; any decoding error is the request's fault
        raise ValueError(f"Action Information cannot be decoded: {type(exc).__name__}") from None
    if not valid_uid(transaction_uid):
        raise ValueError("Transaction UID missing or invalid")
    if not references:
        raise ValueError("Referenced SOP Sequence missing or empty")
    if not all(valid_uid(ref.sop_class_uid) and valid_uid(ref.sop_instance_uid) for ref in references):
        raise ValueError("a Referenced SOP Class or Instance UID is missing or invalid")
    return CommitmentRequest(transaction_uid, references)


def _status(code, comment=""):
    """A status; failures and warnings carry an Error Comment (0000,0902) the sender can show or log."""
    if code == status.SUCCESS or not comment:
        return code
    response = Dataset()
    response.Status = code
    response.ErrorComment = _error_comment(comment)
    return response


def _error_comment(text):
    # LO: at most 64 characters of the default repertoire, no backslash or control characters (PS3.5 6.2).
    cleaned = "".join(char if " " <= char <= "~" and char != "\\" else "?" for char in text)
    return cleaned[:64]


HANDLERS = [
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, handle_store),
    (evt.EVT_N_ACTION, handle_commitment_request),
]
