"""The RIS portal pages, under /worklist/."""
from django.urls import path

from worklist.views import exceptions, orders, reading, schedule

app_name = "worklist"

urlpatterns = [
    # Order entry and "my orders" (referring clinicians, technologists, administrators).
    path("orders/", orders.my_orders, name="my-orders"),
    path("orders/new/", orders.order_create, name="order-create"),
    path("orders/<int:pk>/", orders.order_detail, name="order-detail"),
    path("orders/<int:pk>/cancel/", orders.order_cancel, name="order-cancel"),
    # The technologists' day: the schedule per station, the actions on each step, the station calendar.
    path("schedule/", schedule.schedule, name="schedule"),
    path("orders/<int:pk>/status/", schedule.order_status, name="order-status"),
    path("orders/<int:pk>/book/", schedule.order_book, name="order-book"),
    path("calendar/", schedule.calendar, name="calendar"),
    # The radiologists' reading worklist: the page, its rows for live refreshes, claim and release.
    path("reading/", reading.reading_list, name="reading"),
    path("reading/rows/", reading.reading_rows, name="reading-rows"),
    path("reading/<int:pk>/claim/", reading.reading_claim, name="reading-claim"),
    path("reading/<int:pk>/release/", reading.reading_release, name="reading-release"),
    # Studies that matched no order, and linking one to its order.
    path("exceptions/", exceptions.exception_list, name="exceptions"),
    path("exceptions/<int:pk>/", exceptions.exception_detail, name="exception-detail"),
    path("exceptions/<int:pk>/link/", exceptions.exception_link, name="exception-link"),
]
