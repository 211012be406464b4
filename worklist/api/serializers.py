from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from radiology.models import Patient
from worklist.choices import Priority
from worklist.models import Order, OrderStatusChange, ProcedureType, ScheduledProcedureStep, Station


class ProcedureTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProcedureType
        fields = ["id", "code", "coding_scheme", "name", "modality", "body_part", "subspecialty",
                  "default_duration_minutes", "active"]


class OrderPatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "issuer", "family_name", "given_name", "birth_date", "sex"]
        read_only_fields = fields


class OrderProcedureSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProcedureType
        fields = ["code", "name", "modality", "body_part", "subspecialty"]
        read_only_fields = fields


class ScheduledProcedureStepSerializer(serializers.ModelSerializer):
    station_name = serializers.CharField(source="station.name", default="", read_only=True)

    class Meta:
        model = ScheduledProcedureStep
        fields = ["step_id", "station_ae_title", "station_name", "modality", "description", "start", "end",
                  "status"]
        read_only_fields = fields


class StatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderStatusChange
        fields = ["from_status", "to_status", "at", "actor", "channel", "reason"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    """An order as the API shows it: what was ordered, for whom, its steps, its status history (the
    transitions with their timestamps) and the archived study once reconciled."""

    patient = OrderPatientSerializer(read_only=True)
    procedure = OrderProcedureSerializer(read_only=True)
    priority_label = serializers.CharField(source="get_priority_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    linked_study_instance_uid = serializers.CharField(
        source="study.study_instance_uid", default=None, read_only=True, allow_null=True,
        help_text="Study Instance UID of the archived study linked to the order; null until images arrive.")
    claimed_by_name = serializers.SerializerMethodField()
    assigned_group = serializers.CharField(source="assigned_group.name", default=None, read_only=True,
                                           allow_null=True)
    steps = ScheduledProcedureStepSerializer(many=True, read_only=True)
    status_history = StatusChangeSerializer(source="status_changes", many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "accession_number", "placer_order_number", "filler_order_number", "patient", "procedure",
                  "requested_procedure_id", "priority", "priority_label", "reason", "referring_physician",
                  "referring_physician_name", "study_instance_uid", "linked_study_instance_uid", "status",
                  "status_label", "status_changed_at", "images_available_at", "claimed_by", "claimed_by_name",
                  "claimed_at", "assigned_group", "steps", "status_history", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_claimed_by_name(self, order):
        if order.claimed_by_id is None:
            return ""
        return order.claimed_by.get_full_name() or order.claimed_by.get_username()


class ReadingCaseSerializer(OrderSerializer):
    """A case of the reading worklist: the order without its history."""

    class Meta(OrderSerializer.Meta):
        fields = ["id", "accession_number", "patient", "procedure", "priority", "priority_label", "reason",
                  "referring_physician_name", "study_instance_uid", "linked_study_instance_uid", "status",
                  "status_label", "images_available_at", "claimed_by", "claimed_by_name", "claimed_at",
                  "assigned_group"]
        read_only_fields = fields


class OrderCreateSerializer(serializers.Serializer):
    """A new order: the patient by id, or by MRN (with the issuer when the MRN alone is ambiguous); the procedure
    by its catalogue code; optionally a start time (and station) to schedule it at once."""

    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), required=False,
                                                 help_text="Patient id; or give patient_mrn.")
    patient_mrn = serializers.CharField(max_length=64, required=False)
    patient_issuer = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                           help_text="Issuer of the MRN; needed when the MRN is not unique.")
    procedure = serializers.SlugRelatedField(slug_field="code", queryset=ProcedureType.objects.all(),
                                             help_text="Procedure code of the catalogue (/api/procedures/).")
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE,
                                       help_text="S stat, A urgent, R routine (the HL7 codes).")
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    placer_order_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    referring_physician = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), required=False, allow_null=True,
        help_text="User id of the referring physician; a clinician's own orders are always referred by them.")
    referring_physician_name = serializers.CharField(max_length=324, required=False, allow_blank=True,
                                                     default="", help_text="DICOM PN, Family^Given.")
    start = serializers.DateTimeField(required=False, help_text="Schedule at once for this time.")
    station = serializers.SlugRelatedField(slug_field="ae_title", queryset=Station.objects.filter(active=True),
                                           required=False, help_text="AE title of the station to book.")

    def validate(self, data):
        by_id, mrn = data.get("patient"), data.pop("patient_mrn", None)
        issuer = data.pop("patient_issuer", None)
        if (by_id is None) == (mrn is None):
            raise serializers.ValidationError({"patient": "give either patient (id) or patient_mrn"})
        if mrn is not None:
            data["patient"] = _patient_by_mrn(mrn, issuer)
        if "station" in data and "start" not in data:
            raise serializers.ValidationError({"start": "a station is booked for a start time; give start"})
        return data


def _patient_by_mrn(mrn, issuer):
    candidates = Patient.objects.filter(mrn=mrn)
    if issuer is not None:
        candidates = candidates.filter(issuer=issuer)
    found = list(candidates[:2])
    if not found:
        where = f" of issuer {issuer!r}" if issuer else ""
        raise serializers.ValidationError({"patient_mrn": f"no patient with MRN {mrn!r}{where}"})
    if len(found) > 1:
        raise serializers.ValidationError(
            {"patient_issuer": f"several patients have MRN {mrn!r}; give the issuer of the MRN"})
    return found[0]


class ScheduleSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    station = serializers.SlugRelatedField(slug_field="ae_title", queryset=Station.objects.filter(active=True),
                                           required=False, allow_null=True, help_text="AE title of the station.")


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the order is cancelled; kept in its status history.")


class DetailSerializer(serializers.Serializer):
    """Why a request was refused."""

    detail = serializers.CharField()


class ReadingWorklistQuerySerializer(serializers.Serializer):
    """The filters of GET /api/worklist/."""

    modality = serializers.CharField(required=False, allow_blank=True, default="")
    body_part = serializers.CharField(required=False, allow_blank=True, default="")
    subspecialty = serializers.CharField(required=False, allow_blank=True, default="")
    mine = serializers.BooleanField(required=False, default=False, help_text="Only the cases I hold.")
    unclaimed = serializers.BooleanField(required=False, default=False, help_text="Only cases no one holds.")
