"""The technologists' pages: the day's schedule per station with the step actions (arrived, start, complete),
booking requested orders, and a station's week calendar that refuses double booking.

Every change goes through worklist.orders; a refusal (illegal transition, booking conflict) is shown as a
message and changes nothing.
"""
import datetime
import math
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Case, IntegerField, Value, When
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from worklist import orders
from worklist.choices import PRIORITY_RANK, OrderStatus, StepStatus
from worklist.forms import STEP_ACTIONS, BookingForm, CalendarBookingForm, CalendarForm, ScheduleFilterForm, \
    StepActionForm
from worklist.models import Order, ScheduledProcedureStep, Station
from worklist.views import SCHEDULE_PERMISSIONS, acting_as, safe_next

REQUESTED_ORDERS_SHOWN = 50
SLOT_MINUTES = 15
# The calendar shows at least these hours; steps outside them widen the grid.
DAY_FIRST_HOUR, DAY_LAST_HOUR = 7, 19


@login_required
@permission_required(SCHEDULE_PERMISSIONS, raise_exception=True)
def schedule(request):
    form = ScheduleFilterForm(request.GET or None)
    station, day = None, timezone.localdate()
    if form.is_valid():
        station = form.cleaned_data["station"]
        day = form.cleaned_data["date"] or day
    active_stations = list(Station.objects.filter(active=True))
    steps = (ScheduledProcedureStep.objects.filter(start__date=day)
             .exclude(order__status=OrderStatus.CANCELLED)
             .select_related("order__patient", "order__procedure", "station").order_by("start"))
    if station:
        steps = steps.filter(station=station)
    # Every station shown, even when nothing is booked; a step on a retired station still shows under it.
    by_station = {s.pk: (s, []) for s in ([station] if station else active_stations)}
    unassigned = []
    for step in steps:
        step.actions = _actions_for(step)
        if step.station_id is None:
            unassigned.append(step)
        else:
            by_station.setdefault(step.station_id, (step.station, []))[1].append(step)
    requested = _requested_orders(station)
    for order in requested:
        order.stations = [s for s in active_stations if s.modality == order.procedure.modality]
    return render(request, "worklist/schedule.html", {
        "form": form, "day": day, "station": station, "groups": list(by_station.values()),
        "unassigned": unassigned, "requested": requested, "default_start": _default_start(day),
        "next": request.get_full_path(), "is_today": day == timezone.localdate()})


def _actions_for(step):
    """The step actions the state machine allows for the step's order now, as (status, label)."""
    if step.status not in (StepStatus.SCHEDULED, StepStatus.ARRIVED, StepStatus.STARTED):
        return []
    allowed = orders.TRANSITIONS[OrderStatus(step.order.status)]
    return [(status, label) for status, label in STEP_ACTIONS if status in allowed]


def _requested_orders(station):
    """Orders waiting for a booking: STAT first, then the oldest."""
    rank = Case(*[When(priority=p, then=Value(r)) for p, r in PRIORITY_RANK.items()],
                output_field=IntegerField())
    requested = (Order.objects.filter(status=OrderStatus.REQUESTED).select_related("patient", "procedure")
                 .annotate(rank=rank).order_by("rank", "created_at"))
    if station:
        requested = requested.filter(procedure__modality=station.modality)
    return list(requested[:REQUESTED_ORDERS_SHOWN])


def _default_start(day):
    """The booking form's suggestion: the next full hour today, 08:00 on another day."""
    now = timezone.localtime()
    if day == now.date():
        return (now + datetime.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(8)))


@login_required
@permission_required(SCHEDULE_PERMISSIONS, raise_exception=True)
@require_POST
def order_status(request, pk):
    """Arrived / Start / Complete from the schedule page."""
    order = get_object_or_404(Order, pk=pk)
    form = StepActionForm(request.POST)
    back = safe_next(request, request.POST.get("next"), reverse("worklist:schedule"))
    if not form.is_valid():
        messages.error(request, "Unknown action: choose Arrived, Start or Complete.")
        return redirect(back)
    to_status = OrderStatus(form.cleaned_data["to_status"])
    try:
        order = orders.change_status(order, to_status, **acting_as(request))
    except orders.OrderError as exc:
        messages.error(request, f"Nothing changed: {exc}.")
    else:
        messages.success(request, f"Order {order.accession_number} ({order.patient.display_name}) is now "
                                  f"{order.get_status_display().lower()}.")
    return redirect(back)


@login_required
@permission_required(SCHEDULE_PERMISSIONS, raise_exception=True)
@require_POST
def order_book(request, pk):
    """Book a requested order (or move a scheduled one) on a station at a start time."""
    order = get_object_or_404(Order, pk=pk)
    form = BookingForm(request.POST)
    back = safe_next(request, request.POST.get("next"), reverse("worklist:schedule"))
    if not form.is_valid():
        messages.error(request, f"Order {order.accession_number} was not booked: {_form_errors(form)}")
        return redirect(back)
    _book(request, order, form.cleaned_data["station"], form.cleaned_data["start"])
    return redirect(back)


def _book(request, order, station, start):
    try:
        order = orders.schedule_order(order, start=start, station=station, **acting_as(request))
    except orders.OrderError as exc:
        messages.error(request, f"Not booked: {exc}.")
        return False
    messages.success(request, f"Order {order.accession_number} ({order.patient.display_name}) is booked on "
                              f"{station.name} at {timezone.localtime(start):%Y-%m-%d %H:%M}.")
    return True


def _form_errors(form):
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


# ---------------------------------------------------------------------------------------------------------
# The station calendar

@dataclass
class CalendarCell:
    """One cell of the week grid: a block of booked steps spanning `rowspan` slots, or a free slot."""

    start: datetime.datetime
    rowspan: int = 1
    steps: list = field(default_factory=list)
    bookable: bool = False


@login_required
@permission_required(SCHEDULE_PERMISSIONS, raise_exception=True)
def calendar(request):
    form = CalendarForm(request.GET or None)
    station, day = None, timezone.localdate()
    if form.is_valid():
        station = form.cleaned_data["station"]
        day = form.cleaned_data["week"] or day
    station = station or Station.objects.filter(active=True).first()
    monday = day - datetime.timedelta(days=day.weekday())
    if station is None:
        return render(request, "worklist/calendar.html", {"form": form, "station": None})
    booking = CalendarBookingForm(request.POST or None, station=station, initial={
        "station": station.pk, "start": _initial_slot(request.GET.get("start"))})
    if request.method == "POST":
        if booking.is_valid():
            data = booking.cleaned_data
            back = _calendar_url(data["station"], monday)
            if not _book(request, data["order"], data["station"], data["start"]):
                # Refused: the form comes back with the start time asked for, to pick another slot near it.
                back += f"&start={timezone.localtime(data['start']):%Y-%m-%dT%H:%M}"
            return redirect(back)
        status = 400
    else:
        status = 200
    days = [monday + datetime.timedelta(days=n) for n in range(7)]
    rows = _week_grid(station, days)
    return render(request, "worklist/calendar.html", {
        "form": form, "station": station, "days": days, "rows": rows, "booking": booking,
        "previous_week": _calendar_url(station, monday - datetime.timedelta(days=7)),
        "next_week": _calendar_url(station, monday + datetime.timedelta(days=7)),
        "this_url": _calendar_url(station, monday)}, status=status)


def _calendar_url(station, monday):
    query = QueryDict(mutable=True)
    query.update({"station": station.pk, "week": monday.isoformat()})
    return f"{reverse('worklist:calendar')}?{query.urlencode()}"


def _initial_slot(value):
    """A slot link's start (?start=2026-11-30T09:15) for the booking form, if it parses."""
    try:
        return datetime.datetime.strptime(value or "", "%Y-%m-%dT%H:%M")
    except ValueError:
        return None


def _week_grid(station, days):
    """Rows of (slot time, [cell or None per day]) for a table: a booked block is one cell with a rowspan over
    its slots (None marks the slots it covers); steps whose slots touch share one block."""
    tz = timezone.get_current_timezone()
    week_start = timezone.make_aware(datetime.datetime.combine(days[0], datetime.time()), tz)
    week_end = week_start + datetime.timedelta(days=7)
    steps = list(ScheduledProcedureStep.objects.filter(station=station, start__lt=week_end, end__gt=week_start)
                 .exclude(status=StepStatus.DISCONTINUED)
                 .select_related("order__patient", "order__procedure").order_by("start"))
    first_hour, last_hour = DAY_FIRST_HOUR, DAY_LAST_HOUR
    for step in steps:
        start, end = timezone.localtime(step.start, tz), timezone.localtime(step.end, tz)
        first_hour = min(first_hour, start.hour)
        last_hour = max(last_hour, 24 if end.date() > start.date() else math.ceil(end.hour + end.minute / 60))
    slots = (last_hour - first_hour) * 60 // SLOT_MINUTES
    now = timezone.now()
    columns = []
    for day in days:
        day_start = timezone.make_aware(datetime.datetime.combine(day, datetime.time(first_hour)), tz)
        column = [CalendarCell(start=day_start + datetime.timedelta(minutes=SLOT_MINUTES * i)) for i in range(slots)]
        for cell in column:
            cell.bookable = cell.start >= now
        blocks = []  # [first slot, end slot, steps]
        for step in steps:
            first = math.floor((step.start - day_start).total_seconds() / 60 / SLOT_MINUTES)
            end = math.ceil((step.end - day_start).total_seconds() / 60 / SLOT_MINUTES)
            first, end = max(first, 0), min(end, slots)
            if end <= first:  # another day's step
                continue
            if blocks and first < blocks[-1][1]:
                blocks[-1][1] = max(blocks[-1][1], end)
                blocks[-1][2].append(step)
            else:
                blocks.append([first, end, [step]])
        for first, end, block_steps in blocks:
            column[first].rowspan, column[first].steps = end - first, block_steps
            for covered in range(first + 1, end):
                column[covered] = None
        columns.append(column)
    first_slot = datetime.datetime.combine(days[0], datetime.time(first_hour))
    return [((first_slot + datetime.timedelta(minutes=SLOT_MINUTES * i)).time(), [column[i] for column in columns])
            for i in range(slots)]
