"""Live order events for open pages (reading worklist, "my orders", technologist schedule).

Sent to one channel-layer group after the transaction commits, so a page never shows a change that was rolled
back. Consumers (worklist/consumers.py) decide per connection which events that user may see, by the
referring physician and patient carried in the event.
"""
from radiology.events import publish_after_commit

ORDER_EVENTS_GROUP = "worklist-orders"


def order_event(order):
    return {
        "type": "order.changed",
        "order_id": order.pk,
        "accession_number": order.accession_number,
        "status": order.status,
        "status_label": order.get_status_display(),
        "priority": order.priority,
        "patient_id": order.patient_id,
        "referring_physician_id": order.referring_physician_id,
        "claimed_by_id": order.claimed_by_id,
        "claimed_by": order.claimed_by.get_full_name() or order.claimed_by.get_username()
        if order.claimed_by_id else "",
    }


def order_changed(order):
    """Announce the order's current state once the surrounding transaction commits."""
    publish_after_commit(ORDER_EVENTS_GROUP, order_event(order))
