"""Imaging orders and their state machine: the one place that creates, schedules and moves orders.

    requested → scheduled → arrived → in progress → completed (images available) → preliminary → final
    requested / scheduled / arrived → cancelled;  in progress → discontinued

Images may arrive without MPPS (scheduled/arrived → completed), and an unscheduled order may be performed
(requested → completed). Every transition is kept as an OrderStatusChange (turnaround times come from these),
audited, and announced to live pages after the commit. The web portal, REST/FHIR API, HL7 handlers, MPPS
handler and reconciliation all call these functions; none of them sets Order.status itself.
"""
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydicom.uid import generate_uid

from radiology.audit import record_audit_event
from radiology.choices import AuditEventCode
from worklist import events, reading
from worklist.choices import OrderStatus, Priority, StepStatus
from worklist.models import AccessionSequence, Order, OrderStatusChange, ScheduledProcedureStep

S = OrderStatus
TRANSITIONS = {
    S.REQUESTED: {S.SCHEDULED, S.COMPLETED, S.CANCELLED},
    S.SCHEDULED: {S.ARRIVED, S.IN_PROGRESS, S.COMPLETED, S.CANCELLED},
    S.ARRIVED: {S.IN_PROGRESS, S.COMPLETED, S.CANCELLED},
    S.IN_PROGRESS: {S.COMPLETED, S.DISCONTINUED},
    S.COMPLETED: {S.PRELIMINARY, S.FINAL},
    S.PRELIMINARY: {S.FINAL},
    S.FINAL: set(),
    S.CANCELLED: set(),
    S.DISCONTINUED: set(),
}
# What each order status makes of its still-open scheduled steps.
_STEP_STATUS_FOR = {
    S.ARRIVED: StepStatus.ARRIVED,
    S.IN_PROGRESS: StepStatus.STARTED,
    S.COMPLETED: StepStatus.COMPLETED,
    S.CANCELLED: StepStatus.DISCONTINUED,
    S.DISCONTINUED: StepStatus.DISCONTINUED,
}
_OPEN_STEP_STATUSES = (StepStatus.SCHEDULED, StepStatus.ARRIVED, StepStatus.STARTED)


class OrderError(Exception):
    """A request the order rules refuse; the message says why, in words fit for the user or an HL7 ERR."""


class IllegalTransition(OrderError):
    pass


class BookingConflict(OrderError):
    pass


# ---------------------------------------------------------------------------------------------------------
# Creating and scheduling

def create_order(*, patient, procedure, actor, channel, user=None, priority=Priority.ROUTINE, reason="",
                 referring_physician=None, referring_physician_name="", placer_order_number="",
                 filler_order_number="", accession_number="", requested_procedure_id="", start=None,
                 station=None, step_id=""):
    """A new order in `requested` state, or `scheduled` when a start time is given. The accession number is
    generated unless the caller (HL7 OBR-18) brings one; the Study Instance UID is assigned now so that the
    modality puts it in the images."""
    if not procedure.active:
        raise OrderError(f"procedure {procedure.code} is not orderable (inactive)")
    if patient.merged_into_id:
        raise OrderError(f"patient {patient.mrn} was merged into another record; order for the survivor")
    accession_number = (accession_number or "").strip()
    if len(accession_number) > 16:
        raise OrderError(f"accession number {accession_number!r} is longer than 16 characters")
    if referring_physician is not None and not referring_physician_name:
        referring_physician_name = _dicom_name(referring_physician)
    try:
        with transaction.atomic():
            if not accession_number:
                accession_number = next_accession_number()
            elif Order.objects.filter(accession_number=accession_number).exists():
                raise OrderError(f"accession number {accession_number} is already used by another order")
            now = timezone.now()
            order = Order.objects.create(
                accession_number=accession_number, placer_order_number=placer_order_number,
                filler_order_number=filler_order_number or accession_number, patient=patient, procedure=procedure,
                requested_procedure_id=(requested_procedure_id or accession_number)[:16], priority=priority,
                reason=reason, referring_physician=referring_physician,
                referring_physician_name=referring_physician_name, study_instance_uid=generate_uid(),
                status=S.REQUESTED, status_changed_at=now)
            OrderStatusChange.objects.create(order=order, to_status=S.REQUESTED, at=now, user=user, actor=actor,
                                             channel=channel)
            _audit(order, "C", actor=actor, channel=channel, user=user, status=S.REQUESTED)
            if start is None:
                events.order_changed(order)
            else:
                order = _schedule(order, start=start, station=station, step_id=step_id, actor=actor,
                                  channel=channel, user=user, new=True)
    except IntegrityError:
        # Another order took the accession number (or step ID) between the check and the insert.
        raise OrderError(f"accession number {accession_number} or step ID {step_id or '(generated)'} is already "
                         f"used by another order") from None
    return order


def next_accession_number(today=None):
    """The next number of this year's sequence in settings.ACCESSION_FORMAT (RADIOLOGY_ACCESSION_FORMAT);
    numbers already taken by orders that brought their own accession are skipped."""
    year = (today or timezone.localdate()).year
    # No savepoint: nothing here is recovered from; a failure fails the caller's transaction as a whole.
    with transaction.atomic(savepoint=False):
        sequence = AccessionSequence.objects.select_for_update().filter(year=year).first()
        if sequence is None:
            sequence = AccessionSequence.objects.create(year=year)
        while True:
            sequence.last_value += 1
            candidate = settings.ACCESSION_FORMAT.format(year=year, number=sequence.last_value)
            if not Order.objects.filter(accession_number=candidate).exists():
                break
        sequence.save(update_fields=["last_value"])
    return candidate


def schedule_order(order, *, start, actor, channel, user=None, station=None, step_id="", duration=None):
    """Book the order's procedure step on `station` (optional) at `start`. A requested order becomes scheduled;
    a scheduled one is moved (its open step re-booked). Refuses a station already booked for that time."""
    with transaction.atomic():
        return _schedule(_locked(order), start=start, actor=actor, channel=channel, user=user, station=station,
                         step_id=step_id, duration=duration)


def _schedule(order, *, start, actor, channel, user, station, step_id, duration=None, new=False):
    """schedule_order on a locked order inside the caller's transaction; `new`: created in this transaction,
    so it has no step yet."""
    if order.status not in (S.REQUESTED, S.SCHEDULED):
        raise IllegalTransition(f"order {order.accession_number} is {order.get_status_display().lower()}; "
                                f"only requested or scheduled orders can be (re)scheduled")
    if station is not None and station.modality != order.procedure.modality:
        raise OrderError(f"station {station.ae_title} is a {station.modality} station; "
                         f"{order.procedure.name} needs {order.procedure.modality}")
    end = start + (duration or timedelta(minutes=order.procedure.default_duration_minutes))
    step = None if new else order.steps.filter(status=StepStatus.SCHEDULED).first()
    if station is not None:
        check_station_free(station, start, end, ignore_step=step)
    if step is None:
        step = ScheduledProcedureStep(order=order, step_id=step_id or _new_step_id(order, first=new))
    step.station = station
    step.station_ae_title = station.ae_title if station else ""
    step.modality = order.procedure.modality
    step.description = order.procedure.name
    step.start, step.end = start, end
    step.save()
    if order.status == S.REQUESTED:
        order = _change_status(order, S.SCHEDULED, actor=actor, channel=channel, user=user)
    else:
        _audit(order, "U", actor=actor, channel=channel, user=user, rescheduled_to=start.isoformat())
        events.order_changed(order)
    transaction.on_commit(lambda: _prefetch_priors(order))
    return order


def check_station_free(station, start, end, ignore_step=None):
    """Refuse a booking that overlaps another open step on the same station."""
    clashes = ScheduledProcedureStep.objects.filter(
        station=station, start__lt=end, end__gt=start, status__in=_OPEN_STEP_STATUSES,
    ).exclude(order__status__in=[S.CANCELLED, S.DISCONTINUED]).select_related("order")
    if ignore_step is not None and ignore_step.pk:
        clashes = clashes.exclude(pk=ignore_step.pk)
    clash = clashes.first()
    if clash is not None:
        raise BookingConflict(
            f"{station.name} is booked {timezone.localtime(clash.start):%Y-%m-%d %H:%M}–"
            f"{timezone.localtime(clash.end):%H:%M} for order {clash.order.accession_number}")


@transaction.atomic
def update_order(order, *, actor, channel, user=None, **changes):
    """Change what was ordered (HL7 ORC XO, portal edit): procedure, priority, reason, referring physician,
    placer order number. Only before the procedure is performed."""
    order = _locked(order)
    if order.status not in (S.REQUESTED, S.SCHEDULED, S.ARRIVED):
        raise IllegalTransition(f"order {order.accession_number} is {order.get_status_display().lower()}; "
                                f"it can no longer be changed")
    allowed = {"procedure", "priority", "reason", "referring_physician", "referring_physician_name",
               "placer_order_number"}
    unknown = set(changes) - allowed
    if unknown:
        raise OrderError(f"cannot change {', '.join(sorted(unknown))} of an order")
    for field, value in changes.items():
        setattr(order, field, value)
    order.save()
    if "procedure" in changes:
        order.steps.filter(status=StepStatus.SCHEDULED).update(
            modality=order.procedure.modality, description=order.procedure.name)
    _audit(order, "U", actor=actor, channel=channel, user=user, changed=sorted(changes))
    events.order_changed(order)
    return order


def cancel_order(order, *, reason, actor, channel, user=None):
    return change_status(order, S.CANCELLED, actor=actor, channel=channel, user=user, reason=reason)


# ---------------------------------------------------------------------------------------------------------
# The state machine

def change_status(order, to_status, *, actor, channel, user=None, reason=""):
    """Move `order` to `to_status`, or raise IllegalTransition saying which moves are possible."""
    with transaction.atomic():
        return _change_status(_locked(order), to_status, actor=actor, channel=channel, user=user, reason=reason)


def _change_status(order, to_status, *, actor, channel, user, reason=""):
    """change_status on a locked order inside the caller's transaction."""
    to_status = OrderStatus(to_status)
    allowed = TRANSITIONS[order.status]
    if to_status not in allowed:
        possible = ", ".join(OrderStatus(status).label.lower() for status in sorted(allowed)) or "none"
        raise IllegalTransition(
            f"order {order.accession_number} is {order.get_status_display().lower()}; it cannot become "
            f"{to_status.label.lower()} (possible: {possible})")
    now = timezone.now()
    from_status = order.status
    order.status, order.status_changed_at = to_status, now
    fields = ["status", "status_changed_at", "updated_at"]
    if to_status == S.COMPLETED and order.images_available_at is None:
        order.images_available_at = now
        fields.append("images_available_at")
    if to_status in (S.FINAL, S.CANCELLED, S.DISCONTINUED) and order.claimed_by_id:
        order.claimed_by, order.claimed_at = None, None
        fields += ["claimed_by", "claimed_at"]
    order.save(update_fields=fields)
    if to_status in _STEP_STATUS_FOR:
        order.steps.filter(status__in=_OPEN_STEP_STATUSES).update(status=_STEP_STATUS_FOR[to_status])
    OrderStatusChange.objects.create(order=order, from_status=from_status, to_status=to_status, at=now, user=user,
                                     actor=actor, channel=channel, reason=reason)
    if to_status == S.COMPLETED:
        order = reading.assign(order)
    _audit(order, "U", actor=actor, channel=channel, user=user, status=to_status, previous_status=from_status,
           **({"reason": reason} if reason else {}))
    events.order_changed(order)
    return order


def turnaround(order):
    """Seconds between the order's transitions, by target status: {'completed': ..., 'final': ...} measured
    from its creation (the first `requested`)."""
    changes = list(order.status_changes.all())
    if not changes:
        return {}
    origin = changes[0].at
    return {change.to_status: (change.at - origin).total_seconds() for change in changes[1:]}


# ---------------------------------------------------------------------------------------------------------

def _locked(order):
    """The order's row, read again under a row lock: every change starts from the committed state. Only the order
    row is locked (`of`), not the patient and procedure joined in, which other orders share."""
    return Order.objects.select_for_update(of=("self",)).select_related("procedure", "patient").get(pk=order.pk)


def _new_step_id(order, first=False):
    number = 1 if first else order.steps.count() + 1
    candidate = f"{order.accession_number}.{number}"
    if len(candidate) <= 16 and not ScheduledProcedureStep.objects.filter(step_id=candidate).exists():
        return candidate
    return uuid.uuid4().hex[:16].upper()


def _dicom_name(user):
    return "^".join(filter(None, [user.last_name, user.first_name])) or user.get_username()


def _audit(order, action, *, actor, channel, user, **detail):
    record_audit_event(AuditEventCode.ORDER_RECORD, action=action, channel=channel, actor=actor, user=user,
                       patient=order.patient, object_type="order", object_id=order.accession_number, **detail)


def _prefetch_priors(order):
    """Ask the nodes marked for prefetch for this patient's priors, in the background (never on the caller's
    request path: a C-FIND to a slow archive can take seconds)."""
    from archive.models import DicomNode
    from archive.tasks import prefetch_priors_for_patient

    node_ids = list(DicomNode.objects.filter(prefetch_priors=True).values_list("pk", flat=True))
    if node_ids:
        prefetch_priors_for_patient.delay(order.patient_id, node_ids,
                                          modality=order.procedure.modality, body_part=order.procedure.body_part)
