"""The exceptions list: archived studies that matched no order, and linking one to its order by hand.

Linking makes the study's index and stored headers carry the order's patient and accession number
(archive.identity.correct_study_identity) and links it to the order (worklist.reconciliation.link_study), in one
transaction: a refusal or a failure changes neither.
"""
from django.db.models import OuterRef, Q, Subquery

from archive.identity import correct_study_identity
from archive.models import Instance, Series
from worklist.choices import OrderStatus
from worklist.models import Order, UnmatchedStudy
from worklist.reconciliation import link_study

# Orders whose images may still be linked: not cancelled, discontinued or reported final.
LINKABLE_STATUSES = (OrderStatus.REQUESTED, OrderStatus.SCHEDULED, OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS,
                     OrderStatus.COMPLETED)
ORDERS_FOUND_LIMIT = 25


class LinkRefused(Exception):
    """The study cannot be linked to that order; the message says why. Nothing was changed."""


def unresolved_studies():
    """The open exceptions, newest first, each study with `thumbnail_series_id`: its first series with images."""
    with_images = Series.objects.filter(study=OuterRef("study"), pk__in=Instance.objects.filter(
        rows__isnull=False).values("series")).order_by("series_number", "pk").values("pk")[:1]
    return (UnmatchedStudy.objects.filter(resolved_at__isnull=True).select_related("study__patient")
            .annotate(thumbnail_series_id=Subquery(with_images)).order_by("-created_at", "-pk"))


def find_orders_to_link(query):
    """Orders a study may be linked to, found by accession number, MRN or patient name (family name first, as
    "Family, Given" or the start of either), newest first."""
    query = query.strip()
    if not query:
        return Order.objects.none()
    family, _, given = (part.strip() for part in query.partition(","))
    by_name = Q(patient__family_name__istartswith=family)
    if given:
        by_name &= Q(patient__given_name__istartswith=given)
    orders = (Order.objects.filter(status__in=LINKABLE_STATUSES, study__isnull=True)
              .filter(Q(accession_number__iexact=query) | Q(patient__mrn__iexact=query) | by_name)
              .select_related("patient", "procedure"))
    return orders.order_by("-created_at", "-pk")[:ORDERS_FOUND_LIMIT]


def check_linkable(unmatched, order):
    """Raise LinkRefused unless the exception is open and the order may take the study."""
    if unmatched.resolved_at is not None:
        raise LinkRefused(f"the study was already linked to order "
                          f"{unmatched.order.accession_number if unmatched.order else '(deleted)'}")
    if order.status not in LINKABLE_STATUSES:
        raise LinkRefused(f"order {order.accession_number} is {order.get_status_display().lower()}; "
                          f"images can no longer be linked to it")
    if order.study_id is not None and order.study_id != unmatched.study_id:
        raise LinkRefused(f"order {order.accession_number} already has the images of study "
                          f"{order.study.study_instance_uid}")


def link_to_order(unmatched, order, *, user, channel):
    """Give the unmatched study the order's patient and accession number, link it, and close the exception.
    Returns the order as it is afterwards."""
    check_linkable(unmatched, order)
    linked = {}

    def link(study):
        # Checked again with the rows locked: the order may have been cancelled or linked meanwhile.
        locked = Order.objects.select_for_update(of=("self",)).select_related("patient", "study").get(pk=order.pk)
        current = UnmatchedStudy.objects.select_for_update(of=("self",)).select_related("order").get(pk=unmatched.pk)
        check_linkable(current, locked)
        linked["order"] = link_study(locked, study, actor=user.get_username(), channel=channel, user=user)

    correct_study_identity(unmatched.study, patient=order.patient, accession_number=order.accession_number,
                           user=user, channel=channel, then=link)
    return linked["order"]
