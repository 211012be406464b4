"""Matching archived studies to their orders (IHE Scheduled Workflow: the Image Manager tells the Order Filler).

Connected to archive.signals.instance_stored (worklist/apps.py) and called for the first instance of each new
study. A study matches the order whose accession number it carries, or whose assigned Study Instance UID it
uses; the order is linked and moves to completed (images available). A study that matches nothing goes to the
exceptions list, unless it is one the archive pulled on purpose (priors, retrieves): those have no order here.
"""
import logging

from django.db import transaction
from django.utils import timezone

from archive.choices import TransferKind
from archive.models import TransferJob
from radiology.choices import AuditChannel
from worklist import orders
from worklist.choices import OrderStatus
from worklist.models import Order, UnmatchedStudy

logger = logging.getLogger(__name__)

# Orders that images may still complete.
_AWAITING_IMAGES = (OrderStatus.REQUESTED, OrderStatus.SCHEDULED, OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS)


def reconcile_new_study(sender, instance, created_study, calling_ae="", **kwargs):
    """`instance_stored` receiver. The instance is stored whatever happens here; a failure is logged."""
    if not created_study:
        return
    try:
        reconcile_study(instance.series.study, actor=calling_ae or "archive")
    except Exception:  # noqa: BLE001 - the images are safe; the study stays unlinked and is logged
        logger.exception("reconciling study %s failed", instance.series.study_id)


@transaction.atomic
def reconcile_study(study, *, actor):
    """Link `study` to its order, or list it as an exception. Returns the order or None."""
    order = find_order_for(study)
    if order is None:
        if not _pulled_on_purpose(study):
            reason = (f"no order with accession number {study.accession_number}" if study.accession_number
                      else "no accession number")
            UnmatchedStudy.objects.get_or_create(study=study, defaults={"reason": reason})
        return None
    if order.patient_id != study.patient_id:
        UnmatchedStudy.objects.get_or_create(study=study, defaults={
            "reason": f"accession number {order.accession_number} belongs to patient {order.patient.mrn}, "
                      f"the images to {study.dicom_patient_id or 'no patient ID'}"})
        return None
    return link_study(order, study, actor=actor, channel=AuditChannel.DICOM)


def find_order_for(study):
    candidates = Order.objects.exclude(status=OrderStatus.CANCELLED).select_related("patient")
    if study.accession_number:
        order = candidates.filter(accession_number=study.accession_number).first()
        if order is not None:
            return order
    return candidates.filter(study_instance_uid=study.study_instance_uid).first()


@transaction.atomic
def link_study(order, study, *, actor, channel, user=None):
    """Make `study` the order's images and move the order to completed when it was waiting for them."""
    Order.objects.filter(pk=order.pk).update(study=study)
    order.study = study
    # The exception, if the study was one, is kept as resolved: who linked it to which order, and when.
    UnmatchedStudy.objects.filter(study=study, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=user, order=order)
    if order.status in _AWAITING_IMAGES:
        return orders.change_status(order, OrderStatus.COMPLETED, actor=actor, channel=channel, user=user,
                                    reason=f"images of study {study.study_instance_uid} arrived")
    return order


def _pulled_on_purpose(study):
    return TransferJob.objects.filter(kind=TransferKind.PULL, study_instance_uid=study.study_instance_uid).exists()
