"""Celery task of critical results: the periodic escalation of unacknowledged ones (radiology/celery.py runs it
every minute), a thin wrapper over reporting/critical.py."""
from celery import shared_task

from reporting import critical


@shared_task(ignore_result=True)
def escalate_overdue_critical_results():
    critical.escalate_overdue()
