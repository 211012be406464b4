"""The radiologists' reading worklist: orders whose images are available and whose report is not final, STAT
first then oldest, with atomic claims and the assignment rules of the admin.

The page, the REST API and the WebSocket consumer all use these functions. A claim is one conditional UPDATE
(`claimed_by IS NULL`), so of two radiologists claiming the same case at the same moment exactly one wins,
on SQLite and on PostgreSQL alike.
"""
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.utils import timezone

from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, Role
from worklist import events
from worklist.choices import PRIORITY_RANK, READING_STATUSES
from worklist.models import Order, ReadingAssignmentRule


class ClaimRefused(Exception):
    """A claim or release the rules refuse; the message says why."""


def reading_worklist(*, modality="", body_part="", subspecialty="", claimed_by=None, unclaimed_only=False,
                     group_ids=None):
    """The reading worklist, STAT first then oldest. `group_ids` keeps the cases assigned to those groups and
    those no rule assigned."""
    cases = Order.objects.filter(status__in=READING_STATUSES, study__isnull=False).select_related(
        "patient", "procedure", "study", "claimed_by", "assigned_group")
    if modality:
        cases = cases.filter(procedure__modality=modality)
    if body_part:
        cases = cases.filter(procedure__body_part=body_part)
    if subspecialty:
        cases = cases.filter(procedure__subspecialty=subspecialty)
    if claimed_by is not None:
        cases = cases.filter(claimed_by=claimed_by)
    if unclaimed_only:
        cases = cases.filter(claimed_by__isnull=True)
    if group_ids is not None:
        cases = cases.filter(Q(assigned_group__isnull=True) | Q(assigned_group__in=group_ids))
    rank = Case(*[When(priority=priority, then=Value(value)) for priority, value in PRIORITY_RANK.items()],
                output_field=IntegerField())
    return cases.annotate(priority_rank=rank).order_by("priority_rank", "images_available_at", "pk")


def claim(order, user, *, channel):
    """Give the case to `user`, unless someone already holds it (ClaimRefused says who)."""
    if not _is_radiologist(user):
        raise ClaimRefused("only radiologists claim cases")
    with transaction.atomic():
        won = Order.objects.filter(pk=order.pk, status__in=READING_STATUSES, claimed_by__isnull=True).update(
            claimed_by=user, claimed_at=timezone.now(), updated_at=timezone.now())
        order = Order.objects.select_related("claimed_by", "patient").get(pk=order.pk)
        if not won:
            if order.claimed_by_id == user.pk:
                return order
            if order.status not in READING_STATUSES:
                raise ClaimRefused(f"order {order.accession_number} is {order.get_status_display().lower()}; "
                                   f"it is not on the reading worklist")
            holder = order.claimed_by.get_full_name() or order.claimed_by.get_username()
            raise ClaimRefused(f"order {order.accession_number} is already claimed by {holder}")
        _audit(order, user, channel, "claimed")
        events.order_changed(order)
    return order


def release(order, user, *, channel):
    """Give the case back to the list. Its holder may release it; an administrator may release anyone's."""
    with transaction.atomic():
        holder_filter = {} if _is_administrator(user) else {"claimed_by": user}
        released = Order.objects.filter(pk=order.pk, claimed_by__isnull=False, **holder_filter).update(
            claimed_by=None, claimed_at=None, updated_at=timezone.now())
        order = Order.objects.select_related("patient").get(pk=order.pk)
        if not released:
            if order.claimed_by_id is None:
                return order
            raise ClaimRefused(f"order {order.accession_number} is claimed by someone else")
        _audit(order, user, channel, "released")
        events.order_changed(order)
    return order


def assign(order):
    """Apply the first matching assignment rule to a case that just became readable: set its group and, when
    the rule says so, claim it for the group member holding the fewest open cases. Called by the state machine's
    listeners when an order reaches completed."""
    procedure = order.procedure
    for rule in ReadingAssignmentRule.objects.select_related("group"):
        if all(not wanted or wanted == actual for wanted, actual in [
                (rule.modality, procedure.modality), (rule.body_part, procedure.body_part),
                (rule.subspecialty, procedure.subspecialty)]):
            break
    else:
        return order
    Order.objects.filter(pk=order.pk).update(assigned_group=rule.group)
    order.assigned_group = rule.group
    if rule.auto_assign and order.claimed_by_id is None:
        least_loaded = (rule.group.user_set.filter(is_active=True)
                        .annotate(open_cases=Count("claimed_orders", filter=Q(
                            claimed_orders__status__in=READING_STATUSES)))
                        .order_by("open_cases", "pk").first())
        if least_loaded is not None and _is_radiologist(least_loaded):
            Order.objects.filter(pk=order.pk, claimed_by__isnull=True).update(
                claimed_by=least_loaded, claimed_at=timezone.now())
            order.refresh_from_db()
            _audit(order, least_loaded, AuditChannel.SYSTEM, "auto-assigned")
    return order


def _is_radiologist(user):
    return user.groups.filter(name=Role.RADIOLOGIST).exists()


def _is_administrator(user):
    return user.is_superuser or user.groups.filter(name=Role.ADMINISTRATOR).exists()


def _audit(order, user, channel, what):
    record_audit_event(AuditEventCode.ORDER_RECORD, action="U", channel=channel, actor=user.get_username(),
                       user=user, patient=order.patient, object_type="order", object_id=order.accession_number,
                       reading=what)
