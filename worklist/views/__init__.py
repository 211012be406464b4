"""The RIS portal pages, one module per page family: orders.py (order entry, "my orders", an order's page),
schedule.py (the technologists' schedule, step actions and station calendar); the reading worklist and the
unmatched-studies exceptions have their own modules."""
from django.utils.http import url_has_allowed_host_and_scheme

from radiology.choices import AuditChannel

# Running the department's schedule: moving orders (worklist.change_order, which radiologists also hold to claim
# cases) and booking their procedure steps, which only technologists and administrators do.
SCHEDULE_PERMISSIONS = ("worklist.change_order", "worklist.change_scheduledprocedurestep")


def acting_as(request):
    """Who changes an order from the portal, as the order services record it."""
    return {"actor": request.user.get_username(), "channel": AuditChannel.WEB, "user": request.user}


def safe_next(request, value, default):
    """Where to go back to after a POST: a page of this site only (never an address from outside)."""
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return default
