from django.contrib import admin

from archive.models import DicomNode, IngestEvent, Instance, RoutingRule, Series, Study, TransferJob


@admin.register(DicomNode)
class DicomNodeAdmin(admin.ModelAdmin):
    list_display = ["ae_title", "name", "host", "port", "allow_store", "allow_query", "prefetch_priors", "updated_at"]
    list_filter = ["allow_store", "allow_query", "prefetch_priors"]
    search_fields = ["ae_title", "name", "host"]


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ["series_number", "modality", "series_description", "body_part_examined", "number_of_instances",
              "series_instance_uid"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["patient_name", "dicom_patient_id", "study_date", "modalities_in_study", "study_description",
                    "accession_number", "number_of_series", "number_of_instances"]
    list_filter = ["modalities_in_study", "study_date"]
    search_fields = ["patient_name", "dicom_patient_id", "accession_number", "study_instance_uid"]
    raw_id_fields = ["patient"]
    readonly_fields = ["study_instance_uid", "number_of_series", "number_of_instances", "size_bytes", "created_at",
                       "updated_at"]
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ["series_instance_uid", "study", "modality", "series_number", "series_description",
                    "number_of_instances"]
    list_filter = ["modality"]
    search_fields = ["series_instance_uid", "study__study_instance_uid", "series_description"]
    raw_id_fields = ["study"]
    list_select_related = ["study"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    """Read-only: instances change only through ingest."""

    list_display = ["sop_instance_uid", "instance_number", "sop_class_uid", "transfer_syntax_uid", "file_size",
                    "received_from", "received_at"]
    list_filter = ["transfer_syntax_uid", "received_from"]
    search_fields = ["sop_instance_uid", "series__series_instance_uid", "series__study__study_instance_uid"]
    raw_id_fields = ["series"]
    exclude = ["header"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IngestEvent)
class IngestEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "sop_instance_uid", "study_instance_uid", "patient", "source", "resolved"]
    list_filter = ["kind", "resolved", "source"]
    search_fields = ["sop_instance_uid", "study_instance_uid", "patient__mrn"]
    readonly_fields = ["kind", "sop_instance_uid", "study_instance_uid", "patient", "detail", "source", "created_at"]
    actions = ["mark_resolved"]

    @admin.action(description="Mark selected events as resolved")
    def mark_resolved(self, request, queryset):
        queryset.update(resolved=True)

    def has_add_permission(self, request):
        return False


@admin.register(TransferJob)
class TransferJobAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "node", "study_instance_uid", "status", "completed", "failed", "attempts",
                    "reason", "requested_by"]
    list_filter = ["kind", "status", "node"]
    search_fields = ["study_instance_uid", "series_instance_uid", "error"]
    readonly_fields = ["kind", "node", "study_instance_uid", "series_instance_uid", "status", "completed", "failed",
                       "attempts", "error", "requested_by", "reason", "created_at", "updated_at"]
    list_select_related = ["node", "requested_by"]

    def has_add_permission(self, request):
        return False


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "calling_ae", "called_ae", "modality", "description_pattern"]
    list_filter = ["enabled"]
    filter_horizontal = ["destinations"]
