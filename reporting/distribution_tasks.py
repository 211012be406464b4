"""Celery tasks of result distribution: thin wrappers over reporting/outbound.py.

`deliver_outbound_message` is sent after the commit that queued a message (and again, with a countdown, after a
failed attempt); `deliver_due_outbound_messages` runs periodically (radiology/celery.py) and sends whatever is due,
so a message whose task was lost (worker restart, broker down) is still delivered.
"""
from celery import shared_task

from reporting import outbound


@shared_task(ignore_result=True)
def deliver_outbound_message(message_id):
    outbound.deliver(message_id)


@shared_task(ignore_result=True)
def deliver_due_outbound_messages():
    outbound.deliver_due()
