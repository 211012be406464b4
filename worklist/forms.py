"""Forms of the RIS portal pages: order entry, cancelling, the technologist's step actions and bookings."""
import datetime

from django import forms
from django.utils import timezone

from radiology.models import Patient
from worklist.choices import OrderStatus, Priority
from worklist.models import Order, ProcedureType, Station

# The portal offers the least urgent priority first, so that "stat" is a deliberate choice.
PRIORITY_CHOICES = [(Priority.ROUTINE, "Routine"), (Priority.URGENT, "Urgent"), (Priority.STAT, "Stat")]
# What a technologist does to a step from the schedule page: the patient is here, scanning, done.
STEP_ACTIONS = [(OrderStatus.ARRIVED, "Arrived"), (OrderStatus.IN_PROGRESS, "Start"),
                (OrderStatus.COMPLETED, "Complete")]
# <input type="datetime-local"> sends minutes, and seconds when the user typed them.
LOCAL_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


class OrderForm(forms.Form):
    """A clinician's imaging order. The patient comes from the patient search shown above the form."""

    patient = forms.ModelChoiceField(
        queryset=Patient.objects.filter(merged_into__isnull=True),
        error_messages={"required": "Choose the patient: search by name or MRN, then pick one.",
                        "invalid_choice": "That patient record no longer exists or was merged; search again."})
    procedure = forms.ModelChoiceField(
        queryset=ProcedureType.objects.filter(active=True), empty_label="— choose a procedure —",
        error_messages={"invalid_choice": "That procedure is not in the active catalogue."})
    priority = forms.ChoiceField(choices=PRIORITY_CHOICES, initial=Priority.ROUTINE, widget=forms.RadioSelect)
    reason = forms.CharField(label="Reason for exam", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    preferred_date = forms.DateField(label="Preferred date", required=False,
                                     widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["procedure"].label_from_instance = lambda procedure: f"{procedure.name} ({procedure.code})"

    def clean_preferred_date(self):
        preferred = self.cleaned_data["preferred_date"]
        if preferred and preferred < timezone.localdate():
            raise forms.ValidationError("The preferred date has passed.")
        return preferred


class CancelOrderForm(forms.Form):
    reason = forms.CharField(label="Reason for cancelling", max_length=255,
                             error_messages={"required": "Say why the order is cancelled."})


class StepActionForm(forms.Form):
    to_status = forms.ChoiceField(choices=STEP_ACTIONS)
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class BookingForm(forms.Form):
    """Book an order's procedure step on a station at a start time (schedule page and station calendar)."""

    station = forms.ModelChoiceField(queryset=Station.objects.filter(active=True),
                                     error_messages={"required": "Choose a station."})
    start = forms.DateTimeField(input_formats=LOCAL_DATETIME_FORMATS,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                           format="%Y-%m-%dT%H:%M"),
                                error_messages={"required": "Give the start time.",
                                                "invalid": "Give the start time as a date and time."})
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_start(self):
        start = self.cleaned_data["start"]
        # A minute's grace: the page may have been filled in just before the slot began.
        if start < timezone.now() - datetime.timedelta(minutes=1):
            raise forms.ValidationError("That start time has passed; book a time to come.")
        return start


class CalendarBookingForm(BookingForm):
    """The station calendar's booking: which order goes into the chosen slot of the station shown."""

    order = forms.ModelChoiceField(
        queryset=Order.objects.none(), empty_label="— choose an order —",
        error_messages={"required": "Choose the order to book.",
                        "invalid_choice": "That order can no longer be booked here (cancelled, already performed, "
                                          "or for another modality)."})
    field_order = ["order", "start", "station", "next"]

    def __init__(self, *args, station=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["station"].widget = forms.HiddenInput()
        orders = Order.objects.filter(status__in=[OrderStatus.REQUESTED, OrderStatus.SCHEDULED])
        if station is not None:
            orders = orders.filter(procedure__modality=station.modality)
        self.fields["order"].queryset = orders.select_related("patient", "procedure").order_by("created_at")
        self.fields["order"].label_from_instance = _order_label

    def clean(self):
        cleaned = super().clean()
        order, station = cleaned.get("order"), cleaned.get("station")
        if order and station and order.procedure.modality != station.modality:
            self.add_error("order", f"{order.procedure.name} needs a {order.procedure.modality} station.")
        return cleaned


def _order_label(order):
    scheduled = " (scheduled: moves it)" if order.status == OrderStatus.SCHEDULED else ""
    return (f"{order.accession_number} · {order.get_priority_display()} · {order.patient.display_name} · "
            f"{order.procedure.name}{scheduled}")


class ScheduleFilterForm(forms.Form):
    station = forms.ModelChoiceField(queryset=Station.objects.filter(active=True), required=False,
                                     empty_label="All stations")
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class CalendarForm(forms.Form):
    station = forms.ModelChoiceField(queryset=Station.objects.filter(active=True), required=False,
                                     empty_label=None)
    week = forms.DateField(label="Week of", required=False, widget=forms.DateInput(attrs={"type": "date"}))
