"""ORM^O01 general orders (IHE Scheduled Workflow, DESIGN.md section 4): each ORC with its OBR is one imaging
order. ORC-1 says what to do with it:

    NW  new order        OBR-4 must name a procedure of the catalogue; the patient (PID-3) must be known
    CA  cancel           the order found by ORC-2 placer number, else ORC-3 filler number
    XO  change           procedure (OBR-4), priority, reason, referring physician, start time
    SC  status changed   ORC-5 (HL7 table 0038): SC scheduled, IP in progress, CM completed, CA cancelled,
                         DC discontinued

Fields: ORC-2 placer and ORC-3 filler order numbers; OBR-18 accession number (generated when empty), OBR-19
requested procedure ID, OBR-20 scheduled procedure step ID, OBR-24 modality; priority (S, A, R) and start time
from TQ1-9 / TQ1-7, else ORC-7.6 / ORC-7.4; PV1-8 referring physician; OBR-31, else ORC-16, reason for exam.

An order with a start time is scheduled, without a station: the modality's worklist query names its own
station AE title, and the technologist books a room in the portal when the department works that way.
Field reading only; every rule is worklist/orders.py's.
"""
from django.contrib.auth import get_user_model

from radiology.models import Patient
from worklist import orders
from worklist.choices import OrderStatus, Priority, StepStatus
from worklist.hl7.adt import patient_identifier
from worklist.hl7.messages import (
    DUPLICATE_KEY_IDENTIFIER, REQUIRED_FIELD_MISSING, SEGMENT_SEQUENCE_ERROR, TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY_IDENTIFIER, MessageError, parse_timestamp, required_segment, segments, value,
)
from worklist.models import Order, ProcedureType
from worklist.patients import UnknownPatient, find_patient

# ORC-5 order status (HL7 table 0038) → order status, for ORC-1 SC.
ORDER_STATUS = {
    "SC": OrderStatus.SCHEDULED,
    "IP": OrderStatus.IN_PROGRESS,
    "CM": OrderStatus.COMPLETED,
    "CA": OrderStatus.CANCELLED,
    "DC": OrderStatus.DISCONTINUED,
}
_PRIORITIES = {priority.value: priority for priority in Priority}


def handle_order(message, context):
    pid = required_segment(message, "PID")
    mrn, issuer = patient_identifier(pid, "PID", 3)
    pv1 = (segments(message, "PV1") or [None])[0]
    groups = order_groups(message)
    if not groups:
        raise MessageError("the message has no ORC segment", SEGMENT_SEQUENCE_ERROR, "ORC", 0)
    for group in groups:
        control = value(group.orc, 1).upper()
        action = _ACTIONS.get(control)
        if action is None:
            raise MessageError(f"ORC-1 order control {control or '(empty)'} is not supported (NW, CA, XO, SC)",
                               TABLE_VALUE_NOT_FOUND, "ORC", 1, group.sequence)
        action(group, mrn=mrn, issuer=issuer, pv1=pv1, context=context)


class OrderGroup:
    """One ORC and the OBR (and TQ1) that follow it."""

    def __init__(self, orc, sequence):
        self.orc, self.sequence = orc, sequence
        self.obr = None
        self.tq1 = None


def order_groups(message):
    groups = []
    for segment in message:
        kind = str(segment[0][0])
        if kind == "ORC":
            groups.append(OrderGroup(segment, len(groups) + 1))
        elif groups and kind == "OBR" and groups[-1].obr is None:
            groups[-1].obr = segment
        elif groups and kind == "TQ1" and groups[-1].tq1 is None:
            groups[-1].tq1 = segment
    return groups


# ---------------------------------------------------------------------------------------------------------
# The order controls

def new_order(group, *, mrn, issuer, pv1, context):
    obr = _required_obr(group)
    try:
        patient = find_patient(mrn, issuer)
    except UnknownPatient as exc:
        raise MessageError(f"PID-3: {exc}; send the patient (ADT^A04) before the order", UNKNOWN_KEY_IDENTIFIER,
                           "PID", 3) from None
    procedure = _procedure(obr, group)
    _check_modality(obr, procedure, group)
    placer = value(group.orc, 2)
    if placer and Order.objects.filter(placer_order_number=placer).exists():
        raise MessageError(f"ORC-2 placer order number {placer} already names an order; use XO to change it",
                           DUPLICATE_KEY_IDENTIFIER, "ORC", 2, group.sequence)
    referring_user, referring_name = _referring_physician(pv1)
    orders.create_order(
        patient=patient, procedure=procedure, actor=context.actor, channel=context.channel, user=context.user,
        priority=_priority(group) or Priority.ROUTINE, reason=_reason(group),
        referring_physician=referring_user, referring_physician_name=referring_name,
        placer_order_number=placer[:64], filler_order_number=value(group.orc, 3)[:64],
        accession_number=value(obr, 18), requested_procedure_id=value(obr, 19), start=_start(group),
        step_id=value(obr, 20)[:16])


def cancel_order(group, *, mrn, issuer, pv1, context):
    order = _order(group, mrn, issuer)
    orders.cancel_order(order, reason=_reason(group) or "cancelled by the placer (ORC-1 CA)", actor=context.actor,
                        channel=context.channel, user=context.user)


def change_order(group, *, mrn, issuer, pv1, context):
    order = _order(group, mrn, issuer)
    changes = {}
    if group.obr is not None and value(group.obr, 4):
        procedure = _procedure(group.obr, group)
        _check_modality(group.obr, procedure, group)
        if procedure != order.procedure:
            changes["procedure"] = procedure
    priority = _priority(group)
    if priority and priority != order.priority:
        changes["priority"] = priority
    reason = _reason(group)
    if reason and reason != order.reason:
        changes["reason"] = reason
    referring_user, referring_name = _referring_physician(pv1)
    if referring_name and referring_name != order.referring_physician_name:
        changes.update(referring_physician=referring_user, referring_physician_name=referring_name)
    if changes:
        order = orders.update_order(order, actor=context.actor, channel=context.channel, user=context.user,
                                    **changes)
    start = _start(group)
    if start is not None:
        step = order.steps.filter(status=StepStatus.SCHEDULED).first()
        if step is None or step.start != start:
            orders.schedule_order(order, start=start, station=step.station if step else None,
                                  actor=context.actor, channel=context.channel, user=context.user)
    offered = (group.obr is not None and value(group.obr, 4)) or priority or reason or referring_name or start
    if not offered:
        # An XO that repeats the order unchanged is acknowledged; one that carries none of these fields was
        # meant to say something else, and is refused rather than silently accepted.
        raise MessageError(f"ORC-1 XO for order {order.accession_number} carries nothing to change (OBR-4 "
                           f"procedure, priority, reason, PV1-8 referring physician, start time)",
                           REQUIRED_FIELD_MISSING, "ORC", 1, group.sequence)


def status_changed(group, *, mrn, issuer, pv1, context):
    order = _order(group, mrn, issuer)
    code = value(group.orc, 5).upper()
    if not code:
        raise MessageError("ORC-5 order status is missing (ORC-1 SC)", REQUIRED_FIELD_MISSING, "ORC", 5,
                           group.sequence)
    status = ORDER_STATUS.get(code)
    if status is None:
        raise MessageError(f"ORC-5 order status {code} is not supported ({', '.join(ORDER_STATUS)})",
                           TABLE_VALUE_NOT_FOUND, "ORC", 5, group.sequence)
    if status == OrderStatus.SCHEDULED:
        start = _start(group)
        if start is None:
            raise MessageError("ORC-5 SC (scheduled) needs a start time in TQ1-7 or ORC-7.4",
                               REQUIRED_FIELD_MISSING, "TQ1", 7, group.sequence)
        orders.schedule_order(order, start=start, actor=context.actor, channel=context.channel, user=context.user)
        return
    orders.change_status(order, status, actor=context.actor, channel=context.channel, user=context.user,
                         reason=_reason(group) or f"ORC-5 {code} from {context.actor}")


_ACTIONS = {"NW": new_order, "CA": cancel_order, "XO": change_order, "SC": status_changed}


# ---------------------------------------------------------------------------------------------------------
# Fields

def _required_obr(group):
    if group.obr is None:
        raise MessageError(f"ORC {group.sequence} has no OBR segment", SEGMENT_SEQUENCE_ERROR, "OBR", 0,
                           group.sequence)
    return group.obr


def _procedure(obr, group):
    code = value(obr, 4)
    if not code:
        raise MessageError("OBR-4 procedure code is missing", REQUIRED_FIELD_MISSING, "OBR", 4, group.sequence)
    procedure = ProcedureType.objects.filter(code=code).first()
    if procedure is None:
        raise MessageError(f"OBR-4 procedure code {code} is not in the procedure catalogue", TABLE_VALUE_NOT_FOUND,
                           "OBR", 4, group.sequence)
    return procedure


def _check_modality(obr, procedure, group):
    """OBR-24 (diagnostic service section) may hold a DICOM modality (CT, MR) or a department (RAD): a modality
    of the catalogue that contradicts the procedure's is an order coded wrong, and refused."""
    modality = value(obr, 24).upper()
    if (modality and modality != procedure.modality
            and ProcedureType.objects.filter(modality=modality).exists()):
        raise MessageError(f"OBR-24 modality {modality} does not match procedure {procedure.code} "
                           f"({procedure.modality})", TABLE_VALUE_NOT_FOUND, "OBR", 24, group.sequence)


def _order(group, mrn, issuer):
    """The order named by ORC-2 (placer), else ORC-3 (filler), which must belong to the PID patient."""
    placer, filler = value(group.orc, 2), value(group.orc, 3)
    if not placer and not filler:
        raise MessageError("ORC-2 placer and ORC-3 filler order numbers are both missing",
                           REQUIRED_FIELD_MISSING, "ORC", 2, group.sequence)
    candidates = Order.objects.select_related("patient", "procedure")
    order = candidates.filter(placer_order_number=placer).first() if placer else None
    if order is None and filler:
        order = candidates.filter(filler_order_number=filler).first()
    if order is None:
        numbers = " / ".join(filter(None, [f"placer {placer}" if placer else "", f"filler {filler}" if filler else ""]))
        raise MessageError(f"no order with {numbers}", UNKNOWN_KEY_IDENTIFIER, "ORC", 2 if placer else 3,
                           group.sequence)
    if (order.patient.mrn, order.patient.issuer) != (mrn, issuer):
        # After an ADT^A40 the order is the survivor's; the EHR may still name the merged record.
        named = Patient.objects.filter(mrn=mrn, issuer=issuer).only("merged_into").first()
        if named is None or named.merged_into_id != order.patient_id:
            raise MessageError(f"order {order.accession_number} belongs to patient MRN {order.patient.mrn}, "
                               f"not {mrn}", UNKNOWN_KEY_IDENTIFIER, "PID", 3)
    return order


def _priority(group):
    """S, A or R from TQ1-9, else ORC-7.6; None when neither is given."""
    code, where = value(group.tq1, 9).upper(), ("TQ1", 9)
    if not code:
        code, where = value(group.orc, 7, 6).upper(), ("ORC", 7)
    if not code:
        return None
    if code not in _PRIORITIES:
        raise MessageError(f"{where[0]}-{where[1]} priority {code} is not one of S (stat), A (asap), R (routine)",
                           TABLE_VALUE_NOT_FOUND, where[0], where[1], group.sequence)
    return _PRIORITIES[code]


def _start(group):
    text, where = value(group.tq1, 7), ("TQ1", 7)
    if not text:
        text, where = value(group.orc, 7, 4), ("ORC", 7)
    return parse_timestamp(text, *where) if text else None


def _reason(group):
    for segment, field in ((group.obr, 31), (group.orc, 16)):
        text = value(segment, field, 2) or value(segment, field, 1)
        if text:
            return text
    return ""


def _referring_physician(pv1):
    """(user or None, DICOM PN) from PV1-8 (XCN: ID^family^given^middle^suffix^prefix). The user is the
    platform account whose username is the XCN ID."""
    if pv1 is None:
        return None, ""
    identifier = value(pv1, 8, 1)
    family, given, middle, suffix, prefix = (value(pv1, 8, component) for component in range(2, 7))
    # DICOM PN component order: family^given^middle^prefix^suffix (PS3.5 6.2).
    name = "^".join([family, given, middle, prefix, suffix]).rstrip("^")
    user = None
    if identifier:
        user = get_user_model().objects.filter(username=identifier, is_active=True).first()
    if user is not None and not name:
        name = "^".join(filter(None, [user.last_name, user.first_name])) or user.get_username()
    return user, name[:324]
