"""Who sees which orders: the one rule the REST API, the live order stream and the portal pages share.

Clinicians see the orders on which they are the referring physician (DESIGN.md §4); every other role with the
`worklist.view_order` permission sees the whole order book.
"""
from radiology.choices import Role
from radiology.roles import user_role
from worklist.models import Order


def sees_only_referred_orders(user):
    return user_role(user) == Role.CLINICIAN


def visible_orders(user, orders=None):
    """`orders` (all orders by default) narrowed to what `user` may see."""
    orders = Order.objects.all() if orders is None else orders
    if sees_only_referred_orders(user):
        return orders.filter(referring_physician=user)
    return orders
