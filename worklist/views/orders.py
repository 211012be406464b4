"""Order entry, "my orders" and an order's page with its status history and cancelling.

Clinicians see only the orders they referred (worklist.access). The referring user and those who run the
schedule (technologists, administrators) may cancel an order until it is performed.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Min, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from radiology.audit import record_audit_event
from radiology.choices import AuditEventCode
from radiology.patients import search_patients
from worklist import orders
from worklist.access import visible_orders
from worklist.choices import OrderStatus, StepStatus
from worklist.forms import CancelOrderForm, OrderForm
from worklist.models import Order
from worklist.views import SCHEDULE_PERMISSIONS, acting_as

ORDERS_PER_PAGE = 50
# Patients offered by the order form's search; more matches ask for a longer name.
PATIENT_MATCHES_SHOWN = 20


def _visible_orders(user):
    return visible_orders(user, Order.objects.select_related("patient", "procedure", "study", "referring_physician"))


def _may_cancel(user, order):
    return user.has_perms(SCHEDULE_PERMISSIONS) or (
        order.referring_physician_id == user.pk and user.has_perm("worklist.add_order"))


def can_cancel(user, order):
    """The referring user and the schedulers may cancel, while the procedure is not yet performed."""
    return _may_cancel(user, order) and OrderStatus.CANCELLED in orders.TRANSITIONS[OrderStatus(order.status)]


@login_required
@permission_required("worklist.add_order", raise_exception=True)
def order_create(request):
    query = (request.POST.get("q") if request.method == "POST" else request.GET.get("q", "")) or ""
    query = query.strip()[:200]
    if request.method == "POST":
        form = OrderForm(request.POST)
        if form.is_valid():
            order = _create(request, form)
            if order is not None:
                messages.success(request, f"Order {order.accession_number} for {order.procedure.name} "
                                          f"is placed ({order.get_priority_display().lower()}).")
                return redirect("worklist:order-detail", pk=order.pk)
    else:
        form = OrderForm(initial={"patient": request.GET.get("patient") or None})
    matches, more = _patient_matches(query)
    chosen = _chosen_patient(form)
    if chosen is not None and chosen not in matches:
        matches.insert(0, chosen)
    return render(request, "worklist/order_form.html", {
        "form": form, "query": query, "matches": matches, "more_matches": more,
        "chosen_pk": chosen.pk if chosen else None}, status=400 if form.is_bound else 200)


def _create(request, form):
    data = form.cleaned_data
    reason = data["reason"].strip()
    if data["preferred_date"]:
        # The order has no field for a wish date; the scheduler reads it with the reason for exam.
        reason = f"{reason}\nPreferred date: {data['preferred_date']:%Y-%m-%d}"
    try:
        return orders.create_order(patient=data["patient"], procedure=data["procedure"], priority=data["priority"],
                                   reason=reason, referring_physician=request.user, **acting_as(request))
    except orders.OrderError as exc:
        form.add_error(None, str(exc))
        return None


def _patient_matches(query):
    if not query:
        return [], False
    patients = list(search_patients(text=query).order_by("family_name", "given_name", "mrn")
                    [:PATIENT_MATCHES_SHOWN + 1])
    return patients[:PATIENT_MATCHES_SHOWN], len(patients) > PATIENT_MATCHES_SHOWN


def _chosen_patient(form):
    value = form["patient"].value()
    if not value or not str(value).isdigit():
        return None
    return search_patients().filter(pk=value).first()


@login_required
@permission_required("worklist.view_order", raise_exception=True)
def my_orders(request):
    """The orders the signed-in user referred, newest first; their status cells follow live events."""
    referred = (Order.objects.filter(referring_physician=request.user)
                .select_related("patient", "procedure", "study")
                .annotate(scheduled_start=Min("steps__start",
                                              filter=~Q(steps__status=StepStatus.DISCONTINUED)))
                .order_by("-created_at", "-pk"))
    page = Paginator(referred, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "worklist/my_orders.html", {"page": page})


@login_required
@permission_required("worklist.view_order", raise_exception=True)
def order_detail(request, pk):
    order = get_object_or_404(_visible_orders(request.user), pk=pk)
    _audit_read(request, order)
    return _detail_page(request, order, CancelOrderForm())


@login_required
@permission_required("worklist.view_order", raise_exception=True)
@require_POST
def order_cancel(request, pk):
    order = get_object_or_404(_visible_orders(request.user), pk=pk)
    if not _may_cancel(request.user, order):
        raise PermissionDenied
    if not can_cancel(request.user, order):
        messages.error(request, f"Order {order.accession_number} is {order.get_status_display().lower()}; "
                                f"it can no longer be cancelled.")
        return redirect("worklist:order-detail", pk=order.pk)
    form = CancelOrderForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, order, form, status=400)
    try:
        orders.cancel_order(order, reason=form.cleaned_data["reason"], **acting_as(request))
    except orders.OrderError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Order {order.accession_number} is cancelled.")
    return redirect("worklist:order-detail", pk=order.pk)


def _detail_page(request, order, cancel_form, status=200):
    return render(request, "worklist/order_detail.html", {
        "order": order,
        "history": order.status_changes.select_related("user"),
        "steps": order.steps.select_related("station"),
        "can_cancel": can_cancel(request.user, order),
        "cancel_form": cancel_form,
    }, status=status)


def _audit_read(request, order):
    record_audit_event(
        AuditEventCode.ORDER_RECORD, action="R", channel=acting_as(request)["channel"],
        actor=request.user.get_username(), user=request.user, source_address=request.META.get("REMOTE_ADDR", ""),
        patient=order.patient, object_type="order", object_id=order.accession_number)
