"""The radiologists' reading worklist page: cases whose images are available and whose report is not final,
STAT first then oldest (worklist.reading), with claim and release.

Administrators may look at it and release anyone's claim. The page keeps itself current over /ws/worklist/
(static/js/reading-worklist.js): a claim that changes is updated in its row, and when a case becomes readable or
leaves the list the rows are fetched again from `reading_rows`, which renders them with the page's filters.
"""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from radiology.choices import AuditChannel, Role
from radiology.roles import user_role
from worklist import reading
from worklist.models import Order, ProcedureType
from worklist.views import safe_next

# Who may open the page: radiologists read; administrators look after the list.
READING_ROLES = (Role.RADIOLOGIST, Role.ADMINISTRATOR)
# More than this many open cases is a list to filter, not to scroll.
CASES_SHOWN = 200
SHOW_CHOICES = [("", "All cases"), ("mine", "Mine"), ("unclaimed", "Unclaimed")]


class ReadingFilterForm(forms.Form):
    modality = forms.ChoiceField(required=False)
    body_part = forms.ChoiceField(label="Body part", required=False)
    subspecialty = forms.ChoiceField(required=False)
    show = forms.ChoiceField(choices=SHOW_CHOICES, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The catalogue's values: a filter offers only what a case can have.
        for name, everything in (("modality", "Any modality"), ("body_part", "Any body part"),
                                 ("subspecialty", "Any subspecialty")):
            values = ProcedureType.objects.exclude(**{name: ""}).values_list(name, flat=True).distinct()
            self.fields[name].choices = [("", everything)] + [(value, value) for value in sorted(set(values))]


def reads_cases(user):
    return user.is_superuser or user_role(user) in READING_ROLES


def _reader(view):
    def check(request, *args, **kwargs):
        if not reads_cases(request.user):
            raise PermissionDenied("The reading worklist is for radiologists.")
        return view(request, *args, **kwargs)
    check.__name__, check.__doc__ = view.__name__, view.__doc__
    return login_required(check)


@_reader
@require_GET
def reading_list(request):
    return render(request, "worklist/reading_worklist.html", _context(request))


@_reader
@require_GET
def reading_rows(request):
    """The rows alone, for the page to fetch again when cases arrive or leave."""
    return render(request, "worklist/reading_rows.html", _context(request))


@_reader
@require_POST
def reading_claim(request, pk):
    order = get_object_or_404(Order, pk=pk)
    try:
        order = reading.claim(order, request.user, channel=AuditChannel.WEB)
    except reading.ClaimRefused as refusal:
        messages.error(request, f"Not claimed: {refusal}.")
    else:
        messages.success(request, f"You are reading order {order.accession_number} "
                                  f"({order.patient.display_name}).")
    return redirect(safe_next(request, request.POST.get("next"), reverse("worklist:reading")))


@_reader
@require_POST
def reading_release(request, pk):
    order = get_object_or_404(Order, pk=pk)
    try:
        order = reading.release(order, request.user, channel=AuditChannel.WEB)
    except reading.ClaimRefused as refusal:
        messages.error(request, f"Not released: {refusal}.")
    else:
        messages.success(request, f"Order {order.accession_number} is back on the list.")
    return redirect(safe_next(request, request.POST.get("next"), reverse("worklist:reading")))


def _context(request):
    form = ReadingFilterForm(request.GET or None)
    criteria = form.cleaned_data if form.is_valid() else {}
    is_administrator = request.user.is_superuser or user_role(request.user) == Role.ADMINISTRATOR
    show = criteria.get("show", "")
    cases = reading.reading_worklist(
        modality=criteria.get("modality", ""), body_part=criteria.get("body_part", ""),
        subspecialty=criteria.get("subspecialty", ""),
        claimed_by=request.user if show == "mine" else None, unclaimed_only=show == "unclaimed",
        # Radiologists see the cases of their groups and those no rule assigned; administrators see all.
        group_ids=None if is_administrator else list(request.user.groups.values_list("pk", flat=True)))
    query = request.GET.urlencode() if form.is_valid() else ""
    page_url = reverse("worklist:reading") + (f"?{query}" if query else "")
    return {"form": form, "cases": list(cases[:CASES_SHOWN]), "total": cases.count(), "shown": CASES_SHOWN,
            "show": show, "page_url": page_url, "releases_any": is_administrator}
