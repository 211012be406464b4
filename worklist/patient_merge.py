"""Merging two patient records (HL7 ADT^A40, IHE Patient Information Reconciliation): the EHR found that two
MRNs are one person. The merged record's orders and archived studies move to the survivor, the merged record
keeps its row with `merged_into` set (searches and the portal leave it out, and a study that still arrives
under the old MRN is shown with the survivor's), and the merge is audited as a Patient Record event on both.

Studies keep their DICOM patient attributes as received (the stored files are not rewritten): the index row's
`patient` link is what the portal, the worklist and reconciliation follow. Audit events and ingest events stay
with the record they were written for: they are history.
"""
from django.db import transaction

from archive.models import Study
from radiology.audit import record_audit_event
from radiology.choices import AuditEventCode
from radiology.models import Patient
from worklist import events
from worklist.models import Order, UnmatchedStudy
from worklist.orders import OrderError


@transaction.atomic
def merge_patients(*, survivor, merged, actor, channel, user=None, source_address=""):
    """Fold `merged` into `survivor`. Returns a dict of what moved: {"orders": [accession numbers],
    "studies": [Study Instance UIDs]}. Merging a record already merged into the survivor changes nothing."""
    survivor, merged = (Patient.objects.select_for_update().get(pk=patient.pk) for patient in (survivor, merged))
    if survivor.pk == merged.pk:
        raise OrderError(f"patient MRN {survivor.mrn} cannot be merged into itself")
    if survivor.merged_into_id:
        raise OrderError(f"surviving patient MRN {survivor.mrn} was itself merged into another record")
    if merged.merged_into_id == survivor.pk:
        return {"orders": [], "studies": []}
    if merged.merged_into_id:
        raise OrderError(f"patient MRN {merged.mrn} was already merged into another record")

    moved_orders = list(Order.objects.select_for_update().filter(patient=merged))
    moved_studies = list(Study.objects.select_for_update().filter(patient=merged))
    Order.objects.filter(pk__in=[order.pk for order in moved_orders]).update(patient=survivor)
    Study.objects.filter(pk__in=[study.pk for study in moved_studies]).update(patient=survivor)
    # Records merged into the merged one earlier now point at the survivor directly: one hop, always.
    Patient.objects.filter(merged_into=merged).update(merged_into=survivor)
    merged.merged_into = survivor
    merged.save(update_fields=["merged_into", "updated_at"])

    moved = {"orders": [order.accession_number for order in moved_orders],
             "studies": [study.study_instance_uid for study in moved_studies]}
    for patient, other in ((survivor, merged), (merged, survivor)):
        record_audit_event(AuditEventCode.PATIENT_RECORD, action="U", channel=channel, actor=actor, user=user,
                           source_address=source_address, patient=patient, object_type="patient",
                           object_id=patient.mrn, merge="survivor" if patient is survivor else "merged",
                           survivor_mrn=survivor.mrn, merged_mrn=merged.mrn, other_issuer=other.issuer, **moved)
    for order in moved_orders:
        order.patient = survivor
        events.order_changed(order)
    _reconcile_unmatched(moved_studies, actor=actor)
    return moved


def _reconcile_unmatched(studies, *, actor):
    """A study left unmatched because its accession number belonged to the other record's order may match now
    that both are the survivor's."""
    from worklist.reconciliation import reconcile_study

    waiting = UnmatchedStudy.objects.filter(study__in=studies, resolved_at__isnull=True).select_related("study")
    for unmatched in list(waiting):
        reconcile_study(unmatched.study, actor=actor)
