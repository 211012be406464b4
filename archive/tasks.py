"""Background tasks of the archive: running transfer jobs (send, pull), forwarding routed series, prefetching.

A TransferJob is the record of the work; `run_transfer` may run it more than once (Celery retries, a person
re-running it from the admin, a redelivered message after a worker died) and each run does only what is left:
a done job is left alone, a partial send sends only the instances that were not delivered.

Which instances are still outstanding is kept in the job's `undelivered` field (SOP Instance UID → reason), and
for a person reading the job also in its `error` text under a fixed heading. The next run reads the field only
when some instances were delivered already; otherwise it sends everything.
"""
import logging
import time
from collections import namedtuple
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from pynetdicom.status import QR_MOVE_SERVICE_CLASS_STATUS

from archive import routing, scu
from archive import status as dicom_status
from archive.choices import TransferKind, TransferStatus
from archive.models import DicomNode, Instance, Study, TransferJob
from archive.prefetch import prefetch_priors
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import Patient

logger = logging.getLogger(__name__)

OUTSTANDING_HEADING = "Not delivered (SOP Instance UID: reason):"
# Longest wait between two attempts, whatever the doubling says.
MAX_RETRY_SECONDS = 3600
# A running job whose record has not moved for this long belongs to a worker that died; it may be taken over.
# Running sends write their progress every PROGRESS_SECONDS, so a live job never looks this old.
STALE_RUNNING_SECONDS = 900
PROGRESS_SECONDS = 1.0

# undelivered: {SOP Instance UID: reason} to keep for the next run; None leaves the job's list as it is.
Outcome = namedtuple("Outcome", "status completed failed error undelivered", defaults=(None,))


@shared_task(bind=True, ignore_result=True)
def run_transfer(self, job_id):
    """Run a TransferJob; retried with exponential back-off while the node is unavailable."""
    job = _claim(job_id)
    if job is None:
        return
    try:
        outcome = _send(job) if job.kind == TransferKind.SEND else _pull(job)
    except scu.PeerUnavailable as exc:
        _retry_or_give_up(self, job, exc)
        return
    except scu.RequestRefused as exc:
        outcome = Outcome(TransferStatus.FAILED, job.completed, job.failed, _with_summary(job.error, str(exc)))
    except Exception as exc:
        _save(job, status=TransferStatus.FAILED, error=f"internal error: {exc}")
        raise
    _finish(job, outcome)


@shared_task(ignore_result=True)
def forward_series(job_id):
    """Start a routed send once its series has stopped arriving (see archive/routing.py)."""
    wait = routing.seconds_until_series_settled(job_id)
    if wait is None:
        return
    if wait > 0:
        forward_series.apply_async(args=[job_id], countdown=wait)
        return
    run_transfer.delay(job_id)


@shared_task(ignore_result=True)
def prefetch_priors_for_patient(patient_id, node_ids, modality="", body_part=""):
    """`archive.prefetch.prefetch_priors` off the request path, for callers that must not wait on C-FINDs."""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is not None:
        prefetch_priors(patient, list(DicomNode.objects.filter(pk__in=node_ids)), modality=modality,
                        body_part=body_part)


# --- Claiming and recording -----------------------------------------------------------------------------------


def _claim(job_id):
    """Mark the job running if no one else is running it and it is not done (a conditional UPDATE, so two
    workers never run one job). Returns the job, or None."""
    now = timezone.now()
    claimable = (Q(status__in=[TransferStatus.QUEUED, TransferStatus.PARTIAL, TransferStatus.FAILED])
                 | Q(status=TransferStatus.RUNNING, updated_at__lt=now - timedelta(seconds=STALE_RUNNING_SECONDS)))
    claimed = TransferJob.objects.filter(claimable, pk=job_id).update(
        status=TransferStatus.RUNNING, attempts=F("attempts") + 1, updated_at=now)
    if not claimed:
        logger.info("transfer job %s is done, running elsewhere or gone: nothing to do", job_id)
        return None
    return TransferJob.objects.select_related("node").get(pk=job_id)


def _save(job, **fields):
    fields["updated_at"] = timezone.now()
    TransferJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def _finish(job, outcome):
    fields = {"undelivered": outcome.undelivered} if outcome.undelivered is not None else {}
    _save(job, status=outcome.status, completed=outcome.completed, failed=outcome.failed, error=outcome.error,
          **fields)
    logger.info("transfer job %s (%s %s, %s): %s, %s completed, %s failed", job.pk, job.kind,
                job.study_instance_uid, job.node.ae_title, outcome.status, outcome.completed, outcome.failed)
    _audit(job)


def _retry_or_give_up(task, job, exc):
    """Exponential back-off: TRANSFER_RETRY_SECONDS, then twice that, and so on, TRANSFER_MAX_RETRIES times."""
    retries = task.request.retries
    max_retries = settings.TRANSFER_MAX_RETRIES
    if retries >= max_retries:
        summary = f"{exc} (gave up after {job.attempts} attempts)"
        _finish(job, Outcome(TransferStatus.FAILED, job.completed, job.failed, _with_summary(job.error, summary)))
        return
    countdown = min(settings.TRANSFER_RETRY_SECONDS * 2 ** retries, MAX_RETRY_SECONDS)
    summary = f"{exc} (attempt {job.attempts}; retrying in {countdown} s)"
    _save(job, status=TransferStatus.QUEUED, error=_with_summary(job.error, summary))
    logger.warning("transfer job %s: %s", job.pk, summary)
    raise task.retry(exc=exc, countdown=countdown, max_retries=max_retries)


def _audit(job):
    """PS3.15 A.5.3.2 DICOM Instances Transferred: the sender records a Read (R), the receiver a Create (C)."""
    study = Study.objects.filter(study_instance_uid=job.study_instance_uid).select_related("patient").first()
    outcome = {TransferStatus.DONE: AuditOutcome.SUCCESS, TransferStatus.PARTIAL: AuditOutcome.MINOR_FAILURE}.get(
        job.status, AuditOutcome.SERIOUS_FAILURE)
    record_audit_event(
        AuditEventCode.DICOM_INSTANCES_TRANSFERRED, action="R" if job.kind == TransferKind.SEND else "C",
        channel=AuditChannel.DICOM, actor=settings.DICOM_AET, user=job.requested_by,
        patient=study.patient if study else None, object_type="study", object_id=job.study_instance_uid,
        outcome=outcome, node=job.node.ae_title, direction=job.kind, series=job.series_instance_uid,
        completed=job.completed, failed=job.failed, reason=job.reason)


# --- Send -----------------------------------------------------------------------------------------------------


def _send(job):
    outstanding = list(job.undelivered) if job.completed else []
    resuming = bool(outstanding)
    instances, missing = _instances_to_send(job, outstanding)
    if not instances and not missing:
        what = f"series {job.series_instance_uid}" if job.series_instance_uid else "this study"
        return Outcome(TransferStatus.FAILED, 0, 0, f"no instances of {what} in the archive", {})

    already = job.completed if resuming else 0
    progress = _ProgressWriter(job, already)
    try:
        counts = scu.send_instances(job.node, instances, on_progress=progress)
    except scu.PeerUnavailable as exc:
        counts = exc.counts or scu.StoreCounts()
        completed = already + counts.completed
        not_delivered = {**_missing_reasons(missing), **counts.failures}
        if completed:
            # Only then does the next run need the list: with nothing delivered it sends everything anyway.
            not_delivered.update({uid: "not sent" for uid in counts.unsent})
        _save(job, completed=completed, failed=counts.failed + len(missing),
              error=_error_text(str(exc), not_delivered), undelivered=not_delivered)
        raise

    counts.failures.update(_missing_reasons(missing))
    failed = counts.failed + len(missing)
    completed = already + counts.completed
    total = len(instances) + len(missing)
    if not failed:
        return Outcome(TransferStatus.DONE, completed, 0, _warning_note(counts), {})
    summary = f"{failed} of {total} instances were not stored by {job.node.ae_title}"
    status = TransferStatus.PARTIAL if completed else TransferStatus.FAILED
    return Outcome(status, completed, failed, _error_text(summary, counts.failures), counts.failures)


def _instances_to_send(job, outstanding):
    """The instances this run sends: the outstanding ones when resuming, else all of the study or series.
    Returns (instances, outstanding UIDs no longer in the archive)."""
    instances = Instance.objects.filter(series__study__study_instance_uid=job.study_instance_uid)
    if job.series_instance_uid:
        instances = instances.filter(series__series_instance_uid=job.series_instance_uid)
    instances = list(instances.only("sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "storage_key")
                     .order_by("series__series_number", "series_id", "instance_number", "pk"))
    if not outstanding:
        return instances, []
    wanted = set(outstanding)
    chosen = [instance for instance in instances if instance.sop_instance_uid in wanted]
    missing = sorted(wanted - {instance.sop_instance_uid for instance in chosen})
    return chosen, missing


def _missing_reasons(missing):
    return {uid: "no longer in the archive" for uid in missing}


def _warning_note(counts):
    if not counts.warnings:
        return ""
    parts = ", ".join(f"{number} with {scu.describe_status(code)}"
                      for code, number in sorted(counts.warning_statuses.items()))
    return f"stored with warnings: {parts}"


class _ProgressWriter:
    """Writes the running counts to the job at most once a second, for the portal and the stale-job check."""

    def __init__(self, job, already):
        self.job = job
        self.already = already
        self.last = time.monotonic()

    def __call__(self, counts):
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        TransferJob.objects.filter(pk=self.job.pk).update(
            completed=self.already + counts.completed, failed=counts.failed, updated_at=timezone.now())


# --- Pull -----------------------------------------------------------------------------------------------------


def _pull(job):
    """C-MOVE the whole study to our own AE title; the instances arrive through the DICOM listener. A re-run
    moves the whole study again: the ones already here are answered as duplicates and not stored twice."""
    counts = scu.move_study(job.node, job.study_instance_uid, settings.DICOM_AET)
    completed = counts.completed + counts.warnings
    status_text = scu.describe_status(counts.status, QR_MOVE_SERVICE_CLASS_STATUS)
    finished = counts.status == dicom_status.SUCCESS or dicom_status.is_warning(counts.status)
    if finished and not counts.failed and completed:
        return Outcome(TransferStatus.DONE, completed, 0, "", {})
    if not counts.failed and not completed:
        return Outcome(TransferStatus.FAILED, 0, 0,
                       f"{job.node.ae_title} sent no instances of this study ({status_text})", {})
    if counts.failed:
        summary = f"{counts.failed} of {counts.failed + completed} instances were not moved ({status_text})"
    else:
        # Cancelled, or a failure status after some sub-operations: the rest of the study did not come.
        summary = f"C-MOVE ended with {status_text} after {completed} instances"
    failures = {uid: "failed sub-operation" for uid in counts.failed_sop_instance_uids}
    status = TransferStatus.PARTIAL if completed else TransferStatus.FAILED
    return Outcome(status, completed, counts.failed, _error_text(summary, failures), failures)


# --- The job's error text -------------------------------------------------------------------------------------


def _error_text(summary, not_delivered):
    if not not_delivered:
        return summary
    lines = [summary, OUTSTANDING_HEADING] + [f"{uid}: {reason}" for uid, reason in not_delivered.items()]
    return "\n".join(lines)


def _split_error(error):
    summary, heading, listing = error.partition("\n" + OUTSTANDING_HEADING + "\n")
    return summary, listing if heading else ""


def _with_summary(error, summary):
    """The error text with a new first part and the same outstanding instances."""
    _, listing = _split_error(error)
    return f"{summary}\n{OUTSTANDING_HEADING}\n{listing}" if listing else summary

