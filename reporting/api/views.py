"""/api/reports/: the report lifecycle over REST. The viewset only translates HTTP to reporting.reports:
a refusal of the report rules is a 409 with {"detail": why} (a conflict also gives the current `version`), a
wrong step-up password a 403, a malformed request a 400."""
import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from radiology.choices import AuditChannel
from radiology.step_up import StepUpFailed
from reporting import reports
from reporting.access import visible_reports
from reporting.api.serializers import (
    AddendumCreateSerializer, EnteredInErrorSerializer, RefusalSerializer, ReportDraftSerializer,
    ReportSerializer, ReportStartSerializer, ReportVersionSerializer, SignSerializer, VersionSerializer,
)
from reporting.choices import ReportStatus
from reporting.models import Report
from worklist.access import visible_orders
from worklist.api.permissions import ActionPermissions
from worklist.reading import ClaimRefused

CHANGE = ["reporting.change_report"]
REFUSED = {409: OpenApiResponse(RefusalSerializer, description="Refused by the report rules; `detail` says why.")}
STEP_UP_FAILED = {403: OpenApiResponse(RefusalSerializer, description="The password given again is not right.")}


class ReportFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ReportStatus.choices)
    accession_number = django_filters.CharFilter(field_name="order__accession_number")
    patient_mrn = django_filters.CharFilter(field_name="order__patient__mrn")

    class Meta:
        model = Report
        fields = ["status", "order", "accession_number", "patient_mrn", "author"]


def report_queryset():
    return Report.objects.select_related(
        "order__patient", "order__procedure", "author", "signed_by").prefetch_related("addenda__author")


def refused(exc, report=None):
    body = {"detail": str(exc)}
    if isinstance(exc, reports.ReportConflict) and report is not None:
        body["version"] = Report.objects.filter(pk=report.pk).values_list("version", flat=True).first()
    return Response(body, status=status.HTTP_409_CONFLICT)


@extend_schema_view(
    create=extend_schema(request=ReportStartSerializer, responses={201: ReportSerializer, 200: ReportSerializer,
                                                                   **REFUSED}),
    partial_update=extend_schema(request=ReportDraftSerializer, responses={200: ReportSerializer, **REFUSED}),
)
class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Reports. Radiologists write them (draft → preliminary → signed; addenda after signing); clinicians read
    the released reports of the orders they referred."""

    queryset = report_queryset()
    serializer_class = ReportSerializer
    filterset_class = ReportFilterSet
    permission_classes = [ActionPermissions]
    action_permissions = {"preliminary": CHANGE, "sign": CHANGE, "entered_in_error": CHANGE,
                          "addenda": ["reporting.add_addendum"], "versions": ["reporting.view_reportversion"]}
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return visible_reports(self.request.user, super().get_queryset())

    def create(self, request, *args, **kwargs):
        """Start the report on an order (the case is claimed for you), or get the one already started."""
        form = ReportStartSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        order = form.validated_data["order"]
        if not visible_orders(request.user).filter(pk=order.pk).exists():
            return Response({"order": [f'Invalid pk "{order.pk}" - object does not exist.']},
                            status=status.HTTP_400_BAD_REQUEST)
        existed = Report.objects.filter(order=order).exists()
        try:
            report = reports.start_report(order, request.user, channel=AuditChannel.API,
                                          template=form.validated_data.get("template"))
        except (reports.ReportError, ClaimRefused) as exc:
            return refused(exc)
        return self._show(report, status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        """Save the editor's text; refused (409) when the report changed since `version` or is signed."""
        report = self.get_object()
        form = ReportDraftSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            report = reports.save_draft(report, request.user, version=data["version"], channel=AuditChannel.API,
                                        sections=data.get("sections"), fields=data.get("fields"))
        except reports.ReportError as exc:
            return refused(exc, report)
        return self._show(report)

    @extend_schema(request=VersionSerializer, responses={200: ReportSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def preliminary(self, request, pk=None):
        """Release the draft as preliminary: the referring clinician sees it, marked PRELIMINARY."""
        report = self.get_object()
        form = VersionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            report = reports.make_preliminary(report, request.user, version=form.validated_data["version"],
                                              channel=AuditChannel.API)
        except reports.ReportError as exc:
            return refused(exc, report)
        return self._show(report)

    @extend_schema(request=SignSerializer, responses={200: ReportSerializer, **REFUSED, **STEP_UP_FAILED})
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        """Sign: the report becomes final and never changes again. Needs your password again."""
        report = self.get_object()
        form = SignSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            report = reports.sign(report, request.user, version=form.validated_data["version"],
                                  password=form.validated_data["password"], channel=AuditChannel.API)
        except StepUpFailed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except reports.ReportError as exc:
            return refused(exc, report)
        return self._show(report)

    @extend_schema(request=AddendumCreateSerializer, responses={201: ReportSerializer, **REFUSED, **STEP_UP_FAILED})
    @action(detail=True, methods=["post"])
    def addenda(self, request, pk=None):
        """Add a signed addendum to a final report; the report as signed stays as it was."""
        report = self.get_object()
        form = AddendumCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            reports.add_addendum(report, request.user, text=form.validated_data["text"],
                                 password=form.validated_data["password"], channel=AuditChannel.API)
        except StepUpFailed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except reports.ReportError as exc:
            return refused(exc, report)
        return self._show(report, status.HTTP_201_CREATED)

    @extend_schema(request=EnteredInErrorSerializer, responses={200: ReportSerializer, **REFUSED})
    @action(detail=True, methods=["post"], url_path="entered-in-error")
    def entered_in_error(self, request, pk=None):
        """Withdraw an unsigned report written on the wrong order, with the reason."""
        report = self.get_object()
        form = EnteredInErrorSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            report = reports.mark_entered_in_error(report, request.user, reason=form.validated_data["reason"],
                                                   channel=AuditChannel.API)
        except reports.ReportError as exc:
            return refused(exc, report)
        return self._show(report)

    @extend_schema(request=None, responses={200: ReportVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        """Every saved version of the report, oldest first."""
        report = self.get_object()
        versions = report.versions.select_related("saved_by").order_by("version")
        return Response(ReportVersionSerializer(versions, many=True).data)

    def _show(self, report, code=status.HTTP_200_OK):
        report = report_queryset().get(pk=report.pk)
        return Response(ReportSerializer(report, context=self.get_serializer_context()).data, status=code)
