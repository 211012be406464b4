"""Modality Performed Procedure Step SCP (PS3.4 F.7, 1.2.840.10008.3.1.2.3.3): N-CREATE and N-SET.

The archive's listener routes the requests here through archive/dimse/services.dispatch. These handlers check
the caller, decode the attribute list, call worklist.performed_steps (which keeps the step and moves its order)
and turn its refusals into the statuses of PS3.4 F.7.2 / PS3.7 C:

    0x0111 Duplicate SOP Instance      N-CREATE of a step we hold already
    0x0112 No Such Object Instance     N-SET of a step we do not hold
    0x0120 Missing Attribute           N-CREATE without Performed Procedure Step Status
    0x0106 Invalid Attribute Value     N-CREATE not IN PROGRESS, an unknown status, an undecodable value
    0x0110 Processing Failure          N-SET of a COMPLETED or DISCONTINUED step (F.7.2.2.2), or a move the
                                       order's state machine refuses (the Error Comment says which)
    0x0124 Refused: Not Authorized     a caller that is neither a station nor a node allowed to store

Each request, accepted or refused, is a Procedure Record audit event.
"""
import logging

from django.conf import settings
from django.db import close_old_connections
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from archive.dimse import services
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from worklist import performed_steps
from worklist.dimse import may_report_procedure_steps

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_OBJECT_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
NOT_AUTHORIZED = 0x0124

STATUS_FOR = {
    performed_steps.DuplicateStep: DUPLICATE_SOP_INSTANCE,
    performed_steps.NoSuchStep: NO_SUCH_OBJECT_INSTANCE,
    performed_steps.MissingAttribute: MISSING_ATTRIBUTE,
    performed_steps.InvalidValue: INVALID_ATTRIBUTE_VALUE,
    performed_steps.StepFinal: PROCESSING_FAILURE,
    performed_steps.OrderRefused: PROCESSING_FAILURE,
}


def handle_create(event):
    """N-CREATE (PS3.4 F.7.2.1): a modality starts a performed procedure step."""
    calling_ae = services.calling_ae(event)
    # PS3.7 10.1.5.1.4: when the SCU leaves the SOP Instance UID to us, we assign it and answer it.
    assigned = event.request.AffectedSOPInstanceUID is None
    sop_instance_uid = str(event.request.AffectedSOPInstanceUID or generate_uid())
    return _answer(event, "C", calling_ae, sop_instance_uid, lambda attributes: (
        performed_steps.start_performed_step(sop_instance_uid, attributes, actor=calling_ae)),
        lambda: event.attribute_list, assigned=assigned)


def handle_set(event):
    """N-SET (PS3.4 F.7.2.2): a modality updates, completes or discontinues a performed procedure step."""
    calling_ae = services.calling_ae(event)
    sop_instance_uid = str(event.request.RequestedSOPInstanceUID or "")
    return _answer(event, "U", calling_ae, sop_instance_uid, lambda modifications: (
        performed_steps.update_performed_step(sop_instance_uid, modifications, actor=calling_ae)),
        lambda: event.modification_list)


def _answer(event, action, calling_ae, sop_instance_uid, apply, attribute_list, assigned=False):
    def record(outcome, step=None, **detail):
        order = step.order if step is not None else None
        record_audit_event(
            AuditEventCode.PROCEDURE_RECORD, action=action, channel=AuditChannel.DICOM, actor=calling_ae,
            outcome=outcome, source_address=services.peer_address(event), patient=order.patient if order else None,
            object_type="performed procedure step", object_id=sop_instance_uid, called_ae=settings.DICOM_AET,
            **({"accession_number": order.accession_number, "order_status": order.status} if order else {}),
            **detail)

    try:
        if not may_report_procedure_steps(calling_ae):
            record(AuditOutcome.SERIOUS_FAILURE, error="calling AE may not report procedure steps")
            return services.failure(NOT_AUTHORIZED, f"{calling_ae} may not report procedure steps"), None
        try:
            attributes = _decoded(attribute_list())
            step = apply(attributes)
        except performed_steps.PerformedStepError as error:
            logger.info("MPPS %s from %s refused: %s", sop_instance_uid, calling_ae, error)
            record(AuditOutcome.MINOR_FAILURE, error=str(error))
            return services.failure(STATUS_FOR[type(error)], str(error)), None
        record(AuditOutcome.SUCCESS, step, status=step.status)
        if assigned:
            reply = Dataset()
            reply.AffectedSOPInstanceUID = sop_instance_uid
            return SUCCESS, reply
        return SUCCESS, None
    finally:
        close_old_connections()


def _decoded(dataset):
    """The attribute list with every value decoded now, so that a value pydicom cannot read is refused as an
    invalid attribute value instead of failing half-way through the change."""
    if dataset is None:
        return Dataset()
    try:
        for element in dataset.iterall():
            element.value  # noqa: B018 - pydicom decodes on access
    except Exception as error:  # noqa: BLE001 - any decoding failure of the peer's data
        raise performed_steps.InvalidValue(f"attribute list cannot be decoded: {error}"[:64]) from None
    return dataset
