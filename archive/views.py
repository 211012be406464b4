"""The archive's portal pages: study search, a study with its series, thumbnails, send, download, transfers."""
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import get_conditional_response, patch_cache_control, quote_etag
from django.views.decorators.http import require_GET, require_POST

from archive.choices import TransferStatus
from archive.forms import SendStudyForm, StudySearchForm
from archive.models import Series, Study, TransferJob
from archive.rendering import RenderError, thumbnail_etag, thumbnail_png
from archive.storage import archive_storage
from archive.studies import middle_instance, search_studies, series_of, zip_entries, zip_stream
from archive.transfers import request_send
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode
from radiology.streaming import streaming_response

logger = logging.getLogger(__name__)

STUDIES_PER_PAGE = 25
TRANSFERS_PER_PAGE = 25
THUMBNAIL_SIZE = 128


@login_required
@permission_required("archive.view_study", raise_exception=True)
@require_GET
def study_list(request):
    # Clinicians see every study for now; "only the patients of my orders" comes with the RIS access policy.
    form = StudySearchForm(request.GET or None)
    studies, patient = Study.objects.none(), None
    if form.is_valid():
        criteria = form.cleaned_data
        patient = criteria["patient"]
        studies = search_studies(
            patient_name=criteria["patient_name"], patient_id=criteria["patient_id"],
            accession_number=criteria["accession_number"], date_from=criteria["date_from"],
            date_to=criteria["date_to"], modality=criteria["modality"], patient=patient)
    elif not form.is_bound:
        studies = search_studies()  # no criteria yet: the newest studies
    page = Paginator(studies, STUDIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "archive/study_list.html", {
        "form": form, "page": page, "patient": patient, "query": _query_without_page(request)})


@login_required
@permission_required("archive.view_study", raise_exception=True)
@require_GET
def study_detail(request, pk):
    study = get_object_or_404(Study.objects.select_related("patient"), pk=pk)
    return _study_page(request, study, SendStudyForm())


@login_required
@permission_required("archive.add_transferjob", raise_exception=True)
@require_POST
def study_send(request, pk):
    study = get_object_or_404(Study.objects.select_related("patient"), pk=pk)
    form = SendStudyForm(request.POST)
    if not form.is_valid():
        return _study_page(request, study, form, status=400)
    node = form.cleaned_data["node"]
    job = request_send(node, study.study_instance_uid, user=request.user, reason="manual")
    messages.success(request, f"Sending the study to {node.name} ({node.ae_title}): transfer {job.pk} is queued.")
    return redirect("archive:study-detail", pk=study.pk)


@login_required
@permission_required("archive.view_instance", raise_exception=True)
@require_GET
def series_thumbnail(request, pk, series_pk):
    series = get_object_or_404(Series, pk=series_pk, study_id=pk)
    instance = middle_instance(series)
    if instance is None:
        return _text(404, "This series has no images.")
    etag = quote_etag(thumbnail_etag(instance.sha256, THUMBNAIL_SIZE))
    response = get_conditional_response(request, etag=etag)
    if response is None:
        try:
            response = HttpResponse(thumbnail_png(instance, THUMBNAIL_SIZE), content_type="image/png")
        except RenderError as exc:
            logger.warning("no thumbnail for instance %s: %s", instance.sop_instance_uid, exc)
            return _text(422, f"Cannot render this image: {exc}")
        except FileNotFoundError:
            logger.error("stored file missing for instance %s (%s)", instance.sop_instance_uid, instance.storage_key)
            return _text(404, "The stored file of this image is missing.")
    response["ETag"] = etag
    # Private: patient data never sits in shared caches. no-cache: the series' middle image changes while
    # images arrive, so the browser asks again each time and mostly gets a 304.
    patch_cache_control(response, private=True, no_cache=True)
    return response


@login_required
@permission_required("archive.view_instance", raise_exception=True)
@require_GET
def study_download(request, pk):
    study = get_object_or_404(Study.objects.select_related("patient"), pk=pk)
    entries = zip_entries(study)
    storage = archive_storage()
    missing = [entry for entry in entries if not storage.exists(entry.storage_key)]
    if missing:
        # Found before streaming starts: once the first byte is sent, an error can no longer be reported.
        logger.error("study %s: %d stored file(s) missing, e.g. instance %s", study.study_instance_uid,
                     len(missing), missing[0].sop_instance_uid)
        return _text(500, f"{len(missing)} stored file(s) of this study are missing; nothing was downloaded.")
    _audit(request, AuditEventCode.EXPORT, study, instances=len(entries),
           bytes=sum(entry.file_size for entry in entries), media="zip")
    response = streaming_response(request, zip_stream(entries, storage), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}.zip"'
    patch_cache_control(response, private=True, no_store=True)
    return response


@login_required
@permission_required("archive.view_transferjob", raise_exception=True)
@require_GET
def transfer_list(request):
    transfers = TransferJob.objects.select_related("node", "requested_by").order_by("-created_at", "-pk")
    study = None
    if request.GET.get("study", "").isdigit():
        study = get_object_or_404(Study, pk=request.GET["study"])
        transfers = transfers.filter(study_instance_uid=study.study_instance_uid)
    page = Paginator(transfers, TRANSFERS_PER_PAGE).get_page(request.GET.get("page"))
    study_pks = dict(Study.objects.filter(study_instance_uid__in={job.study_instance_uid for job in page})
                     .values_list("study_instance_uid", "pk"))
    for job in page:
        job.study_pk = study_pks.get(job.study_instance_uid)
    return render(request, "archive/transfer_list.html", {
        "page": page, "study": study, "query": _query_without_page(request),
        "in_progress": any(job.status in (TransferStatus.QUEUED, TransferStatus.RUNNING) for job in page)})


def _study_page(request, study, send_form, status=200):
    _audit(request, AuditEventCode.DICOM_INSTANCES_ACCESSED, study)
    return render(request, "archive/study_detail.html", {
        "study": study, "series_list": series_of(study), "send_form": send_form}, status=status)


def _audit(request, code, study, **detail):
    record_audit_event(
        code, action="R", channel=AuditChannel.WEB, actor=request.user.get_username(), user=request.user,
        source_address=request.META.get("REMOTE_ADDR", ""), patient=study.patient, object_type="study",
        object_id=study.study_instance_uid, **detail)


def _text(status, message):
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _query_without_page(request):
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
