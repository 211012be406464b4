"""Asking for studies to be sent to, or pulled from, remote DICOM nodes.

The portal, the admin, routing rules and the RIS call these; each creates a TransferJob (its state visible in
the portal and admin) and queues the Celery task that does the DICOM work (archive/tasks.py) after commit.
"""
from django.db import transaction

from archive.choices import TransferKind
from archive.models import TransferJob


def request_send(node, study_instance_uid, *, series_instance_uid="", user=None, reason="manual"):
    """Queue a C-STORE of a study (or one series of it) to `node`."""
    job = TransferJob.objects.create(
        kind=TransferKind.SEND, node=node, study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid, requested_by=user, reason=reason)
    _queue(job)
    return job


def request_pull(node, study_instance_uid, *, user=None, reason="manual"):
    """Queue a C-MOVE of a study from `node` to this archive."""
    job = TransferJob.objects.create(
        kind=TransferKind.PULL, node=node, study_instance_uid=study_instance_uid, requested_by=user, reason=reason)
    _queue(job)
    return job


def _queue(job):
    from archive.tasks import run_transfer

    transaction.on_commit(lambda: run_transfer.delay(job.pk))
