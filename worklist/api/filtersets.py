import django_filters

from worklist.choices import OrderStatus, Priority
from worklist.models import Order, ProcedureType


class ProcedureTypeFilterSet(django_filters.FilterSet):
    class Meta:
        model = ProcedureType
        fields = ["code", "modality", "body_part", "subspecialty", "active"]


class OrderFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices,
                                                 help_text="Repeat for several: ?status=scheduled&status=arrived")
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices)
    patient_mrn = django_filters.CharFilter(field_name="patient__mrn")
    patient_issuer = django_filters.CharFilter(field_name="patient__issuer")
    accession_number = django_filters.CharFilter()
    modality = django_filters.CharFilter(field_name="procedure__modality")
    procedure = django_filters.CharFilter(field_name="procedure__code", help_text="Procedure code.")
    referring_physician = django_filters.NumberFilter(help_text="User id of the referring physician.")
    referring_physician_name = django_filters.CharFilter(lookup_expr="icontains")
    station = django_filters.CharFilter(field_name="steps__station_ae_title", distinct=True,
                                        help_text="AE title of a station the order is booked on.")
    scheduled = django_filters.IsoDateTimeFromToRangeFilter(
        field_name="steps__start", distinct=True,
        help_text="Orders with a procedure step starting in this range: scheduled_after=…&scheduled_before=… "
                  "(ISO 8601 date-times, both inclusive).")
    scheduled_date = django_filters.DateFromToRangeFilter(
        field_name="steps__start__date", distinct=True,
        help_text="Scheduled day range: scheduled_date_after=YYYY-MM-DD&scheduled_date_before=YYYY-MM-DD "
                  "(both inclusive).")

    class Meta:
        model = Order
        fields = ["status", "priority", "patient_mrn", "patient_issuer", "accession_number", "modality",
                  "procedure", "referring_physician", "referring_physician_name", "station", "scheduled",
                  "scheduled_date"]
