"""REST resources of the RIS. The viewsets only translate HTTP to the services of worklist.orders and
worklist.reading: a refusal of the order rules (OrderError, ClaimRefused) is a 409 with {"detail": why}."""
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from radiology.choices import AuditChannel, Role
from radiology.roles import user_role
from worklist import orders, reading
from worklist.access import sees_only_referred_orders, visible_orders
from worklist.api.filtersets import OrderFilterSet, ProcedureTypeFilterSet
from worklist.api.permissions import ActionPermissions
from worklist.api.serializers import (
    CancelSerializer, DetailSerializer, OrderCreateSerializer, OrderSerializer, ProcedureTypeSerializer,
    ReadingCaseSerializer, ReadingWorklistQuerySerializer, ScheduleSerializer,
)
from worklist.choices import OrderStatus
from worklist.models import Order, OrderStatusChange, ProcedureType, ScheduledProcedureStep

# Running the schedule (booking, arrival, start, completion, cancellation) is the technologists' work; the
# permission to change scheduled procedure steps is what their role holds and radiologists' does not.
RUN_SCHEDULE = ["worklist.change_order", "worklist.change_scheduledprocedurestep"]
REFUSED = {409: OpenApiResponse(DetailSerializer, description="Refused by the order rules; `detail` says why.")}


class ProcedureTypeViewSet(viewsets.ModelViewSet):
    """The procedure catalogue. Everyone with an order role reads it; administrators also edit it here."""

    queryset = ProcedureType.objects.all()
    serializer_class = ProcedureTypeSerializer
    filterset_class = ProcedureTypeFilterSet
    # Procedures of past orders are kept (PROTECT); retire one with `active: false`.
    http_method_names = ["get", "post", "put", "patch", "head", "options"]


class OrderCursorPagination(CursorPagination):
    """Newest first. A cursor, unlike an offset, neither skips nor repeats orders while new ones arrive."""

    ordering = ("-created_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def order_queryset():
    return Order.objects.select_related(
        "patient", "procedure", "study", "claimed_by", "assigned_group",
    ).prefetch_related(
        Prefetch("steps", queryset=ScheduledProcedureStep.objects.select_related("station")),
        Prefetch("status_changes", queryset=OrderStatusChange.objects.order_by("at", "pk")),
    )


def refused(exc):
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


@extend_schema_view(
    create=extend_schema(request=OrderCreateSerializer, responses={201: OrderSerializer, **REFUSED}),
)
class OrderViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   viewsets.GenericViewSet):
    """Imaging orders. Clinicians see the orders they referred; the actions move an order through its states."""

    queryset = order_queryset()
    serializer_class = OrderSerializer
    filterset_class = OrderFilterSet
    pagination_class = OrderCursorPagination
    permission_classes = [ActionPermissions]
    action_permissions = {name: RUN_SCHEDULE for name in ("schedule", "arrive", "start", "complete", "cancel")}

    def get_queryset(self):
        return visible_orders(self.request.user, super().get_queryset())

    def create(self, request, *args, **kwargs):
        form = OrderCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        if sees_only_referred_orders(request.user):
            # A clinician orders in their own name, and so keeps seeing the order.
            data["referring_physician"], data["referring_physician_name"] = request.user, ""
        try:
            order = orders.create_order(**data, **self._who())
        except orders.OrderError as exc:
            return refused(exc)
        return Response(self._show(order), status=status.HTTP_201_CREATED)

    @extend_schema(request=ScheduleSerializer, responses={200: OrderSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def schedule(self, request, pk=None):
        """Book the order's procedure step at `start` (on `station`, by AE title); moves a booked one."""
        form = ScheduleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._apply(orders.schedule_order, start=form.validated_data["start"],
                           station=form.validated_data.get("station"))

    @extend_schema(request=None, responses={200: OrderSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def arrive(self, request, pk=None):
        """The patient has arrived for the procedure."""
        return self._apply(orders.change_status, OrderStatus.ARRIVED)

    @extend_schema(request=None, responses={200: OrderSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """The procedure has begun."""
        return self._apply(orders.change_status, OrderStatus.IN_PROGRESS)

    @extend_schema(request=None, responses={200: OrderSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """The procedure is done and its images are available."""
        return self._apply(orders.change_status, OrderStatus.COMPLETED)

    @extend_schema(request=CancelSerializer, responses={200: OrderSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an order that was not performed; it leaves the Modality Worklist at once."""
        form = CancelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._apply(orders.cancel_order, reason=form.validated_data["reason"])

    def _apply(self, service, *args, **kwargs):
        order = self.get_object()
        try:
            order = service(order, *args, **kwargs, **self._who())
        except orders.OrderError as exc:
            return refused(exc)
        return Response(self._show(order))

    def _who(self):
        return {"actor": self.request.user.get_username(), "channel": AuditChannel.API, "user": self.request.user}

    def _show(self, order):
        return OrderSerializer(order_queryset().get(pk=order.pk), context=self.get_serializer_context()).data


@extend_schema_view(list=extend_schema(parameters=[ReadingWorklistQuerySerializer]))
class ReadingWorklistViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's reading worklist: cases whose images are available and whose report is not final, STAT
    first then oldest; a radiologist sees the cases of their groups and those no rule assigned."""

    queryset = Order.objects.none()
    serializer_class = ReadingCaseSerializer
    filterset_class = None
    filter_backends = []
    permission_classes = [ActionPermissions]
    action_permissions = {"claim": ["worklist.change_order"], "release": ["worklist.change_order"]}

    def get_queryset(self):
        user = self.request.user
        if self.action in ("claim", "release"):
            # Claims and releases look the order up among all the caller may see, so that a case that has left
            # the worklist gets the reading rules' reason (409), not a bare 404.
            return visible_orders(user, order_queryset())
        query = ReadingWorklistQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        group_ids = None
        if user_role(user) == Role.RADIOLOGIST:
            group_ids = list(user.groups.values_list("pk", flat=True))
        cases = reading.reading_worklist(
            modality=filters["modality"], body_part=filters["body_part"], subspecialty=filters["subspecialty"],
            claimed_by=user if filters["mine"] else None, unclaimed_only=filters["unclaimed"], group_ids=group_ids)
        return visible_orders(user, cases)

    @extend_schema(request=None, responses={200: ReadingCaseSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        """Take the case; refused (409) when someone else holds it or it is not on the worklist."""
        return self._apply(reading.claim)

    @extend_schema(request=None, responses={200: ReadingCaseSerializer, **REFUSED})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Give the case back to the list (its holder, or an administrator)."""
        return self._apply(reading.release)

    def _apply(self, service):
        order = self.get_object()
        try:
            service(order, self.request.user, channel=AuditChannel.API)
        except reading.ClaimRefused as exc:
            return refused(exc)
        return Response(ReadingCaseSerializer(order_queryset().get(pk=order.pk)).data)
