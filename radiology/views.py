from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from radiology.forms import PatientSearchForm
from radiology.health import platform_health
from radiology.patients import search_patients
from radiology.roles import user_role

PATIENTS_PER_PAGE = 25


@login_required
def home(request):
    """Each role's start page; for now every role starts from the patient search."""
    form = PatientSearchForm(request.GET or None)
    page = None
    if form.is_valid() and any(form.cleaned_data.values()):
        patients = search_patients(text=form.cleaned_data["q"], birth_date=form.cleaned_data["birth_date"])
        page = Paginator(patients, PATIENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "home.html", {"form": form, "page": page, "role": user_role(request.user)})


class SignInView(LoginView):
    redirect_authenticated_user = True


@never_cache
@require_GET
def healthz(request):
    """Readiness for load balancers and operators: 200 when every component is ok, else 503."""
    health = platform_health()
    return JsonResponse(health, status=200 if health["status"] == "ok" else 503)
