"""The exceptions list: studies that matched no order, and linking one to its order (technologists and
administrators). Linking is worklist.unmatched.link_to_order; a refusal is shown on the page and changes nothing.
"""
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from archive.identity import IdentityCorrectionError
from radiology.choices import AuditChannel
from worklist import unmatched
from worklist.models import Order, UnmatchedStudy

logger = logging.getLogger(__name__)


@login_required
@permission_required("worklist.view_unmatchedstudy", raise_exception=True)
@require_GET
def exception_list(request):
    return render(request, "worklist/exceptions.html", {"exceptions": unmatched.unresolved_studies()})


@login_required
@permission_required("worklist.view_unmatchedstudy", raise_exception=True)
@require_GET
def exception_detail(request, pk):
    exception = _exception(pk)
    return _detail_page(request, exception, request.GET.get("q", ""))


@login_required
@permission_required("worklist.change_unmatchedstudy", raise_exception=True)
@require_POST
def exception_link(request, pk):
    exception = _exception(pk)
    query = request.POST.get("q", "")
    if not request.POST.get("order", "").isdigit():
        return _detail_page(request, exception, query, error="Choose the order to link the study to.", status=400)
    order = get_object_or_404(Order.objects.select_related("patient", "study"), pk=request.POST["order"])
    try:
        order = unmatched.link_to_order(exception, order, user=request.user, channel=AuditChannel.WEB)
    except unmatched.LinkRefused as refusal:
        return _detail_page(request, exception, query, error=f"Not linked: {refusal}.", status=409)
    except IdentityCorrectionError as failure:
        logger.error("linking study %s to order %s failed: %s", exception.study.study_instance_uid,
                     order.accession_number, failure)
        return _detail_page(request, exception, query, error=f"Not linked: {failure}.", status=500)
    messages.success(request, f"The study is now order {order.accession_number} of {order.patient.display_name} "
                              f"({order.patient.mrn}); the order is {order.get_status_display().lower()}.")
    return redirect("worklist:exceptions")


def _exception(pk):
    return get_object_or_404(UnmatchedStudy.objects.select_related("study__patient", "order"), pk=pk)


def _detail_page(request, exception, query, *, error="", status=200):
    return render(request, "worklist/exception_detail.html", {
        "exception": exception, "study": exception.study, "query": query,
        "orders": unmatched.find_orders_to_link(query), "error": error}, status=status)
