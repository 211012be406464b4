from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from radiology.models import AuditEvent, Patient, ServiceHeartbeat

User = get_user_model()


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records the platform writes and nobody edits by hand (audit trail, reports, received messages):
    listed and viewable, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["mrn", "issuer", "family_name", "given_name", "birth_date", "sex", "merged_into", "updated_at"]
    list_filter = ["sex", "issuer"]
    search_fields = ["mrn", "family_name", "given_name"]
    date_hierarchy = "birth_date"
    raw_id_fields = ["merged_into"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["component", "hostname", "pid", "detail", "last_seen"]
    list_filter = ["component", "hostname"]
    readonly_fields = ["component", "hostname", "pid", "detail", "last_seen"]

    def has_add_permission(self, request):
        return False


admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Users with their role (group) in the list, filterable by role."""

    list_display = ["username", "email", "first_name", "last_name", "roles", "is_active", "last_login"]
    list_filter = ["groups", "is_active", "is_staff"]

    @admin.display(description="Role")
    def roles(self, user):
        return ", ".join(group.name for group in user.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is written by the platform, never edited."""

    list_display = ["created_at", "code", "action", "outcome", "channel", "actor", "source_address", "patient",
                    "object_type", "object_id"]
    list_filter = ["code", "channel", "outcome", "action"]
    search_fields = ["actor", "object_id", "patient__mrn", "source_address"]
    date_hierarchy = "created_at"
    list_select_related = ["patient"]
