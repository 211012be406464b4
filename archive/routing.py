"""Routing rules: forward arriving instances to other nodes.

Connected to `instance_stored` (archive/apps.py). A rule matches when each of its non-empty conditions does:
calling AE and called AE (exact, PS3.5 6.2 leading/trailing spaces not significant), modality (case-insensitive)
and the description pattern (a regular expression searched case-insensitively in the study description and in
the series description).

Work is one send job per (series, destination), not per instance: the first instance of a series creates a
queued job, the next ones find it and add nothing. The job starts once the series has been quiet for
ROUTING_DELAY_SECONDS (`forward_series` re-checks and waits again while instances keep arriving), so a series
normally travels in one association. An instance that arrives after its series' job has started gets a new job;
that one sends the whole series again, which the destination acknowledges as duplicates for the instances it has.
"""
import logging
import math
import re

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from archive.choices import TransferKind, TransferStatus
from archive.models import Instance, RoutingRule, TransferJob

logger = logging.getLogger(__name__)


def route_instance(sender, instance, calling_ae="", called_ae="", **kwargs):
    """`instance_stored` receiver. The instance is stored and committed whatever happens here, so a routing
    problem is logged, never raised into the path that answered the C-STORE."""
    try:
        for node, rule_names in destinations_for(instance, calling_ae=calling_ae, called_ae=called_ae).items():
            queue_series_forward(instance.series, node, reason="routing: " + ", ".join(rule_names))
    except Exception:
        logger.exception("routing instance %s failed", instance.sop_instance_uid)


def destinations_for(instance, *, calling_ae="", called_ae=""):
    """{node: [names of the rules that send this instance there]} for the enabled rules that match."""
    series = instance.series
    study = series.study
    destinations = {}
    for rule in RoutingRule.objects.filter(enabled=True).prefetch_related("destinations"):
        if not rule_matches(rule, calling_ae=calling_ae, called_ae=called_ae, modality=series.modality,
                            study_description=study.study_description,
                            series_description=series.series_description):
            continue
        for node in rule.destinations.all():
            # Never back to where it came from: that node has it already.
            if node.ae_title == (calling_ae or "").strip():
                continue
            destinations.setdefault(node, []).append(rule.name)
    return destinations


def rule_matches(rule, *, calling_ae, called_ae, modality, study_description, series_description):
    if rule.calling_ae.strip() and rule.calling_ae.strip() != (calling_ae or "").strip():
        return False
    if rule.called_ae.strip() and rule.called_ae.strip() != (called_ae or "").strip():
        return False
    if rule.modality.strip() and rule.modality.strip().upper() != (modality or "").strip().upper():
        return False
    if rule.description_pattern:
        try:
            pattern = re.compile(rule.description_pattern, re.IGNORECASE)
        except re.error as exc:
            logger.error("routing rule %r has an invalid description pattern: %s", rule.name, exc)
            return False
        if not (pattern.search(study_description or "") or pattern.search(series_description or "")):
            return False
    return True


def queue_series_forward(series, node, *, reason):
    """The queued send job of `series` to `node`: an existing one that has not started yet, or a new one."""
    job = TransferJob.objects.filter(
        kind=TransferKind.SEND, node=node, series_instance_uid=series.series_instance_uid,
        status=TransferStatus.QUEUED, attempts=0).first()
    if job is not None:
        return job
    job = TransferJob.objects.create(
        kind=TransferKind.SEND, node=node, study_instance_uid=series.study.study_instance_uid,
        series_instance_uid=series.series_instance_uid, reason=reason[:100])
    transaction.on_commit(lambda: _queue_forward(job.pk))
    return job


def _queue_forward(job_id):
    from archive.tasks import forward_series

    forward_series.apply_async(args=[job_id], countdown=settings.ROUTING_DELAY_SECONDS)


def seconds_until_series_settled(job_id):
    """How long a routed job should still wait for its series to stop arriving: 0 to go now, None when the job
    is no longer waiting (it started, or was removed)."""
    job = TransferJob.objects.filter(pk=job_id, status=TransferStatus.QUEUED, attempts=0).first()
    if job is None:
        return None
    last_arrival = Instance.objects.filter(
        series__series_instance_uid=job.series_instance_uid).aggregate(last=Max("received_at"))["last"]
    if last_arrival is None:
        return 0
    quiet_for = (timezone.now() - last_arrival).total_seconds()
    return max(0, math.ceil(settings.ROUTING_DELAY_SECONDS - quiet_for))
