"""Django admin for the RIS: the catalogue, stations and reading assignment rules are set up here; orders,
steps and MPPS are shown for support (status changes go through the portal, API and HL7, which use the state
machine); inbound HL7 messages are listed read-only, with a reprocess action."""
from django.contrib import admin, messages
from django.utils.html import format_html

from radiology.admin import ReadOnlyAdmin
from worklist.models import (
    InboundMessage, Order, OrderStatusChange, PerformedProcedureStep, ProcedureType, ReadingAssignmentRule,
    ScheduledProcedureStep, Station, UnmatchedStudy,
)


@admin.register(ProcedureType)
class ProcedureTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "modality", "body_part", "subspecialty", "default_duration_minutes", "active"]
    list_filter = ["modality", "subspecialty", "active"]
    search_fields = ["code", "name"]


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = ["name", "ae_title", "modality", "location", "active"]
    list_filter = ["modality", "location", "active"]
    search_fields = ["name", "ae_title"]


@admin.register(ReadingAssignmentRule)
class ReadingAssignmentRuleAdmin(admin.ModelAdmin):
    list_display = ["priority", "modality", "body_part", "subspecialty", "group", "auto_assign"]
    list_editable = ["auto_assign"]
    list_display_links = ["priority"]


class ScheduledProcedureStepInline(admin.TabularInline):
    model = ScheduledProcedureStep
    fields = ["step_id", "station", "modality", "start", "end", "status"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class OrderStatusChangeInline(admin.TabularInline):
    model = OrderStatusChange
    fields = ["at", "from_status", "to_status", "actor", "channel", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["accession_number", "patient", "procedure", "priority", "status", "status_changed_at",
                    "claimed_by"]
    list_filter = ["status", "priority", "procedure__modality"]
    search_fields = ["accession_number", "placer_order_number", "patient__mrn", "patient__family_name"]
    raw_id_fields = ["patient", "study", "referring_physician", "claimed_by"]
    # The status moves only through the state machine (worklist/orders.py), which audits every change.
    readonly_fields = ["status", "status_changed_at", "images_available_at", "study_instance_uid", "claimed_at",
                       "created_at", "updated_at"]
    inlines = [ScheduledProcedureStepInline, OrderStatusChangeInline]


@admin.register(PerformedProcedureStep)
class PerformedProcedureStepAdmin(admin.ModelAdmin):
    list_display = ["sop_instance_uid", "order", "status", "performing_ae_title", "updated_at"]
    list_filter = ["status"]
    search_fields = ["sop_instance_uid", "order__accession_number"]
    readonly_fields = ["sop_instance_uid", "order", "status", "performing_ae_title", "attributes", "created_at",
                       "updated_at"]


@admin.register(UnmatchedStudy)
class UnmatchedStudyAdmin(admin.ModelAdmin):
    list_display = ["study", "reason", "created_at", "resolved_at", "order"]
    raw_id_fields = ["study", "order", "resolved_by"]


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    """Every HL7 message as received, with its acknowledgement code and error. Read-only; "reprocess" runs a
    message's handler again once the cause of its error is fixed (e.g. the procedure added to the catalogue)."""

    list_display = ["received_at", "message_type", "control_id", "sending_application", "sending_facility",
                    "outcome", "applied", "error"]
    list_filter = ["outcome", "applied", "message_type", "sending_application"]
    search_fields = ["control_id", "sending_application", "error"]
    date_hierarchy = "received_at"
    fields = ["received_at", "processed_at", "peer_address", "sending_application", "sending_facility",
              "message_type", "control_id", "outcome", "applied", "error", "message"]
    readonly_fields = fields
    actions = ["reprocess"]

    @admin.display(description="Message as received")
    def message(self, inbound):
        # Segments end with CR; one per line. format_html escapes the text.
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', inbound.raw.replace("\r", "\n"))
    # The raw messages are the record of what the EHR sent: kept as received.

    @admin.action(description="Reprocess the selected HL7 messages", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        from worklist.hl7.inbound import reprocess
        from worklist.hl7.messages import MessageError

        for inbound in queryset.order_by("received_at", "pk"):
            label = f"{inbound.message_type} {inbound.control_id or inbound.pk}"
            try:
                reprocess(inbound, user=request.user)
            except MessageError as exc:
                self.message_user(request, f"{label}: not reprocessed: {exc}", messages.WARNING)
                continue
            if inbound.applied:
                self.message_user(request, f"{label}: applied ({inbound.outcome})", messages.SUCCESS)
            else:
                self.message_user(request, f"{label}: {inbound.outcome}: {inbound.error}", messages.ERROR)

    def has_reprocess_permission(self, request):
        return request.user.has_perm("worklist.change_inboundmessage")
