from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reporting import reports
from reporting.models import Addendum, Report, ReportTemplate, ReportVersion
from worklist.models import Order


def _name(user):
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


class AddendumSerializer(serializers.ModelSerializer):
    author_name = serializers.SerializerMethodField()

    class Meta:
        model = Addendum
        fields = ["id", "author", "author_name", "text", "signed_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_author_name(self, addendum):
        return _name(addendum.author)


class ReportSerializer(serializers.ModelSerializer):
    """A report as the API shows it: its sections and template fields, status and version (send the version
    back with every change), who signed it, its addenda, and the whole text as the clinician reads it."""

    accession_number = serializers.CharField(source="order.accession_number", read_only=True)
    patient_mrn = serializers.CharField(source="order.patient.mrn", read_only=True)
    patient_name = serializers.CharField(source="order.patient.display_name", read_only=True)
    procedure = serializers.CharField(source="order.procedure.name", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    author_name = serializers.SerializerMethodField()
    signed_by_name = serializers.SerializerMethodField()
    addenda = AddendumSerializer(many=True, read_only=True)
    text = serializers.SerializerMethodField(help_text="The report as plain text: sections, then addenda.")

    class Meta:
        model = Report
        fields = ["id", "order", "accession_number", "patient_mrn", "patient_name", "procedure", "status",
                  "status_label", "template", "author", "author_name", "sections", "fields", "version",
                  "preliminary_at", "signed_by", "signed_by_name", "signed_at", "cancelled_reason", "addenda",
                  "text", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_author_name(self, report):
        return _name(report.author)

    @extend_schema_field(OpenApiTypes.STR)
    def get_signed_by_name(self, report):
        return _name(report.signed_by)

    @extend_schema_field(OpenApiTypes.STR)
    def get_text(self, report):
        return reports.full_text(report)


class ReportVersionSerializer(serializers.ModelSerializer):
    saved_by_name = serializers.SerializerMethodField()

    class Meta:
        model = ReportVersion
        fields = ["version", "status", "sections", "fields", "saved_by", "saved_by_name", "saved_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_saved_by_name(self, version):
        return _name(version.saved_by)


class ReportStartSerializer(serializers.Serializer):
    """Start the report on an order (or get the one already started): the case is claimed for the caller."""

    order = serializers.PrimaryKeyRelatedField(queryset=Order.objects.all(), help_text="Order id.")
    template = serializers.PrimaryKeyRelatedField(
        queryset=ReportTemplate.objects.filter(active=True), required=False, allow_null=True,
        help_text="Template id; by default the template for the order's procedure, else its modality.")


def _check_field_values(values):
    for key, value in values.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise serializers.ValidationError(f"field {key}: a value is text, a number, true/false or null")
    return values


class ReportDraftSerializer(serializers.Serializer):
    """A save of the editor: the version it was loaded at, and the sections and fields that changed."""

    version = serializers.IntegerField(min_value=1, help_text="The report version the editor started from.")
    sections = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False),
                                     required=False, help_text="Section key → text.")
    fields = serializers.DictField(required=False, help_text="Template field key → value.",
                                   validators=[_check_field_values])


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The report version the editor started from.")


class SignSerializer(VersionSerializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False,
                                     help_text="The signer's password again (step-up).")


class AddendumCreateSerializer(serializers.Serializer):
    text = serializers.CharField()
    password = serializers.CharField(write_only=True, trim_whitespace=False,
                                     help_text="The signer's password again (step-up).")


class EnteredInErrorSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the report is withdrawn; kept with it.")


class RefusalSerializer(serializers.Serializer):
    """Why a request was refused; `version` is the report's current version when the refusal is a conflict."""

    detail = serializers.CharField()
    version = serializers.IntegerField(required=False)
