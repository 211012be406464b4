"""Performed procedure steps as the modality reports them (Modality Performed Procedure Step, PS3.4 F.7), and
what they do to their order.

worklist/dimse/mpps.py calls these for N-CREATE and N-SET and turns their errors into DIMSE statuses. A step
starts IN PROGRESS and links to the order it names in its Scheduled Step Attributes Sequence (by Scheduled
Procedure Step ID, else Accession Number, else Study Instance UID); an unscheduled step that names none is kept
without an order. Its order moves to in progress; COMPLETED moves it to completed, DISCONTINUED to discontinued,
through worklist.orders.change_status. Once COMPLETED or DISCONTINUED the step is final (PS3.4 F.7.2.2.2).
The attributes are kept as DICOM JSON; each N-SET replaces the attributes it carries.
"""
from django.db import IntegrityError, transaction
from pydicom.dataset import Dataset

from radiology.choices import AuditChannel
from worklist import orders
from worklist.choices import OrderStatus, PerformedStepStatus
from worklist.models import Order, PerformedProcedureStep, ScheduledProcedureStep

FINAL_STATUSES = (PerformedStepStatus.COMPLETED, PerformedStepStatus.DISCONTINUED)
# The order status each performed step status moves the order to, and the order statuses that already are
# that far (a second performed step of the same order, or images that completed it before the MPPS did).
ORDER_STATUS_FOR = {
    PerformedStepStatus.IN_PROGRESS: OrderStatus.IN_PROGRESS,
    PerformedStepStatus.COMPLETED: OrderStatus.COMPLETED,
    PerformedStepStatus.DISCONTINUED: OrderStatus.DISCONTINUED,
}
_ALREADY_THERE = {
    OrderStatus.IN_PROGRESS: {OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED, OrderStatus.PRELIMINARY,
                              OrderStatus.FINAL},
    OrderStatus.COMPLETED: {OrderStatus.COMPLETED, OrderStatus.PRELIMINARY, OrderStatus.FINAL},
    OrderStatus.DISCONTINUED: {OrderStatus.DISCONTINUED},
}


class PerformedStepError(Exception):
    """A request the MPPS rules refuse; the message says why (sent as the DIMSE Error Comment)."""


class DuplicateStep(PerformedStepError):
    pass


class NoSuchStep(PerformedStepError):
    pass


class MissingAttribute(PerformedStepError):
    pass


class InvalidValue(PerformedStepError):
    pass


class StepFinal(PerformedStepError):
    pass


class OrderRefused(PerformedStepError):
    """The order's state machine refused the move (worklist.orders.IllegalTransition / OrderError)."""


@transaction.atomic
def start_performed_step(sop_instance_uid, attributes, *, actor):
    """N-CREATE: keep a new performed step (status IN PROGRESS) and move its order to in progress.
    `attributes` is the request's Attribute List (a pydicom Dataset). Returns the PerformedProcedureStep."""
    if "PerformedProcedureStepStatus" not in attributes:
        raise MissingAttribute("PerformedProcedureStepStatus is missing")
    status = _status(attributes)
    if status != PerformedStepStatus.IN_PROGRESS:
        # PS3.4 F.7.2.1.2: a performed procedure step is created IN PROGRESS.
        raise InvalidValue(f"N-CREATE needs status IN PROGRESS, not {status[:16]!r}")
    if PerformedProcedureStep.objects.filter(sop_instance_uid=sop_instance_uid).exists():
        raise DuplicateStep(f"performed procedure step {sop_instance_uid} exists already")
    order = order_for(attributes)
    try:
        with transaction.atomic():
            step = PerformedProcedureStep.objects.create(
                sop_instance_uid=sop_instance_uid, order=order, status=status,
                performing_ae_title=str(attributes.get("PerformedStationAETitle", "") or actor)[:16],
                attributes=_json(attributes))
    except IntegrityError:
        raise DuplicateStep(f"performed procedure step {sop_instance_uid} exists already") from None
    if order is not None:
        step.order = _move_order(order, status, actor=actor, sop_instance_uid=sop_instance_uid)
    return step


@transaction.atomic
def update_performed_step(sop_instance_uid, modifications, *, actor):
    """N-SET: replace the attributes `modifications` carries; COMPLETED or DISCONTINUED move the order on.
    Returns the PerformedProcedureStep."""
    step = (PerformedProcedureStep.objects.select_for_update(of=("self",)).select_related("order")
            .filter(sop_instance_uid=sop_instance_uid).first())
    if step is None:
        raise NoSuchStep(f"no performed procedure step {sop_instance_uid}")
    if step.status in FINAL_STATUSES:
        # PS3.4 F.7.2.2.2: once COMPLETED or DISCONTINUED, the step may no longer be updated.
        raise StepFinal(f"performed procedure step is {step.status} and final")
    status = step.status
    if "PerformedProcedureStepStatus" in modifications:
        status = _status(modifications)
        if status not in PerformedStepStatus.values:
            raise InvalidValue(f"unknown PerformedProcedureStepStatus {status[:16]!r}")
    stored = Dataset.from_json(step.attributes)
    for element in modifications:
        stored[element.tag] = element
    step.attributes = _json(stored)
    step.status = status
    step.save(update_fields=["attributes", "status", "updated_at"])
    if step.order is not None and status in FINAL_STATUSES:
        step.order = _move_order(step.order, status, actor=actor, sop_instance_uid=sop_instance_uid)
    return step


def order_for(attributes):
    """The order a performed step names in its Scheduled Step Attributes Sequence (PS3.4 F.7.2.1.2, Table
    F.7.2-1), or None for an unscheduled step: by Scheduled Procedure Step ID, else Accession Number, else the
    Study Instance UID the worklist gave out."""
    for item in attributes.get("ScheduledStepAttributesSequence", None) or []:
        step_id = _text(item, "ScheduledProcedureStepID")
        if step_id:
            scheduled = ScheduledProcedureStep.objects.filter(step_id=step_id).select_related("order").first()
            if scheduled is not None:
                return scheduled.order
        accession_number = _text(item, "AccessionNumber")
        if accession_number:
            order = Order.objects.filter(accession_number=accession_number).first()
            if order is not None:
                return order
        study_instance_uid = _text(item, "StudyInstanceUID")
        if study_instance_uid:
            order = Order.objects.filter(study_instance_uid=study_instance_uid).first()
            if order is not None:
                return order
    return None


def _move_order(order, performed_status, *, actor, sop_instance_uid):
    target = ORDER_STATUS_FOR[performed_status]
    order.refresh_from_db(fields=["status"])
    if order.status in _ALREADY_THERE[target]:
        return order
    try:
        return orders.change_status(order, target, actor=actor, channel=AuditChannel.DICOM,
                                    reason=f"MPPS {sop_instance_uid} {performed_status}")
    except orders.OrderError as error:
        raise OrderRefused(str(error)) from None


def _status(dataset):
    return str(dataset.get("PerformedProcedureStepStatus", "") or "").strip().upper()


def _text(item, keyword):
    return str(item.get(keyword, "") or "").strip()


def _json(dataset):
    try:
        return dataset.to_json_dict()
    except (TypeError, ValueError) as error:
        raise InvalidValue(f"attributes cannot be kept: {error}"[:64]) from None
