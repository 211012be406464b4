"""Django admin for the RIS: the catalogue, stations and reading assignment rules are set up here; orders,
steps and MPPS are shown for support (status changes go through the portal, API and HL7, which use the state
machine); inbound HL7 messages are listed by worklist/hl7 admin actions."""
from django.contrib import admin

from worklist.models import (
    Order, OrderStatusChange, PerformedProcedureStep, ProcedureType, ReadingAssignmentRule, ScheduledProcedureStep,
    Station, UnmatchedStudy,
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
